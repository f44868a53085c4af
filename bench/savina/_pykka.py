"""The Savina workloads on pykka (one thread per actor), for comparison.

Same protocols, parameters and checks as ``_radon``; messages are tuples
``(kind, *fields)`` dispatched in ``on_receive``. Each function runs one
iteration, from creating the actors to every actor having stopped
(``ActorRegistry.stop_all`` in a ``finally`` so a failed run leaves no thread).
pykka raises ``ActorDeadError`` on a tell to a stopped actor where Akka would
drop it into its dead letters; those tells are wrapped accordingly.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pykka

from ._common import (
    FADED,
    BenchmarkFailed,
    PseudoRandom,
    check,
    complement,
    fib,
    perform_computation,
)

Ref = pykka.ActorRef[Any]
_TIMEOUT = 600.0


class Done:
    """Counts reports from actors and wakes the driver after ``expected`` of them."""

    def __init__(self, expected: int = 1) -> None:
        self.left = expected
        self.values: list[Any] = []
        self.lock = threading.Lock()
        self.event = threading.Event()

    def report(self, value: Any = None) -> None:
        with self.lock:
            self.values.append(value)
            self.left -= 1
            if self.left == 0:
                self.event.set()

    def wait(self, name: str) -> None:
        if not self.event.wait(_TIMEOUT):
            raise BenchmarkFailed(f"{name} on pykka did not finish in {_TIMEOUT} s")


def _tell(ref: Ref, msg: Any) -> None:
    with contextlib.suppress(pykka.ActorDeadError):  # a dead letter
        ref.tell(msg)


def _run(body: Any, p: dict[str, int]) -> None:
    try:
        body(p)
    finally:
        pykka.ActorRegistry.stop_all()


# -- PingPong -------------------------------------------------------------------
class Ping(pykka.ThreadingActor):
    def __init__(self, count: int, pong: Ref) -> None:
        super().__init__()
        self.pings_left = count
        self.pong = pong

    def on_receive(self, message: Any) -> Any:
        kind = message[0]
        if kind == "start" or kind == "ping":
            self.pong.tell(("send_ping", self.actor_ref))
            self.pings_left -= 1
        elif kind == "send_pong":
            if self.pings_left > 0:
                self.actor_ref.tell(("ping",))
            else:
                self.pong.tell(("stop",))
                self.stop()


class Pong(pykka.ThreadingActor):
    def __init__(self, done: Done) -> None:
        super().__init__()
        self.pong_count = 0
        self.done = done

    def on_receive(self, message: Any) -> Any:
        if message[0] == "send_ping":
            message[1].tell(("send_pong", self.actor_ref))
            self.pong_count += 1
        elif message[0] == "stop":
            self.done.report(self.pong_count)
            self.stop()


def pingpong(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        done = Done()
        pong = Pong.start(done)
        ping = Ping.start(p["n"], pong)
        ping.tell(("start",))
        done.wait("PingPong")
        check("PingPong", "pongs", done.values[0], p["n"])

    _run(body, p)


# -- Counting -------------------------------------------------------------------
class Producer(pykka.ThreadingActor):
    def __init__(self, counter: Ref, n: int, done: Done) -> None:
        super().__init__()
        self.counter = counter
        self.n = n
        self.done = done

    def on_receive(self, message: Any) -> Any:
        if message[0] == "increment":
            counter = self.counter
            msg = ("increment",)
            for _ in range(self.n):
                counter.tell(msg)
            counter.tell(("retrieve", self.actor_ref))
        elif message[0] == "result":
            self.done.report(message[1])
            self.stop()


class Counter(pykka.ThreadingActor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message[0] == "increment":
            self.count += 1
        elif message[0] == "retrieve":
            message[1].tell(("result", self.count))
            self.stop()


def counting(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        done = Done()
        counter = Counter.start()
        producer = Producer.start(counter, p["n"], done)
        producer.tell(("increment",))
        done.wait("Counting")
        check("Counting", "count", done.values[0], p["n"])

    _run(body, p)


# -- ThreadRing -----------------------------------------------------------------
class RingActor(pykka.ThreadingActor):
    def __init__(self, num_in_ring: int, done: Done) -> None:
        super().__init__()
        self.num_in_ring = num_in_ring
        self.next: Ref | None = None
        self.done = done
        self.pings = 0

    def on_receive(self, message: Any) -> Any:
        kind = message[0]
        if kind == "ping":
            assert self.next is not None
            self.pings += 1
            if message[1] > 0:
                self.next.tell(("ping", message[1] - 1))
            else:
                self.next.tell(("exit", self.num_in_ring))
        elif kind == "exit":
            assert self.next is not None
            if message[1] > 0:
                _tell(self.next, ("exit", message[1] - 1))
            self.done.report(self.pings)
            self.stop()
        elif kind == "data":
            self.next = message[1]


def threadring(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        n, r = p["n"], p["r"]
        done = Done(n)
        ring = [RingActor.start(n, done) for _ in range(n)]
        for i, actor in enumerate(ring):
            actor.tell(("data", ring[(i + 1) % n]))
        ring[0].tell(("ping", r))
        done.wait("ThreadRing")
        check("ThreadRing", "ping hops", sum(done.values), r + 1)

    _run(body, p)


# -- Fork-Join throughput -------------------------------------------------------
class ThroughputActor(pykka.ThreadingActor):
    def __init__(self, total: int, done: Done) -> None:
        super().__init__()
        self.total = total
        self.processed = 0
        self.done = done

    def on_receive(self, message: Any) -> Any:
        self.processed += 1
        perform_computation(37.2)
        if self.processed == self.total:
            self.done.report(self.processed)
            self.stop()


def fjthrput(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        n, a = p["n"], p["a"]
        done = Done(a)
        actors = [ThroughputActor.start(n, done) for _ in range(a)]
        msg = ("message",)
        for _ in range(n):
            for actor in actors:
                actor.tell(msg)
        done.wait("Fork-Join throughput")
        check("Fork-Join throughput", "messages", sum(done.values), n * a)

    _run(body, p)


# -- Fork-Join create -----------------------------------------------------------
class ForkJoinActor(pykka.ThreadingActor):
    def __init__(self, done: Done) -> None:
        super().__init__()
        self.done = done

    def on_receive(self, message: Any) -> Any:
        perform_computation(37.2)
        self.done.report()
        self.stop()


def fjcreate(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        n = p["n"]
        done = Done(n)
        msg = ("message",)
        for _ in range(n):
            ForkJoinActor.start(done).tell(msg)
        done.wait("Fork-Join create")
        check("Fork-Join create", "actors run", len(done.values), n)

    _run(body, p)


# -- Fib ------------------------------------------------------------------------
class FibActor(pykka.ThreadingActor):
    def __init__(self, parent: Ref | None, done: Done) -> None:
        super().__init__()
        self.parent = parent
        self.done = done
        self.result = 0
        self.resp_received = 0

    def on_receive(self, message: Any) -> Any:
        if message[0] == "request":
            n = message[1]
            if n <= 2:
                self.result = 1
                self._process_result(1)
            else:
                FibActor.start(self.actor_ref, self.done).tell(("request", n - 1))
                FibActor.start(self.actor_ref, self.done).tell(("request", n - 2))
        elif message[0] == "response":
            self.resp_received += 1
            self.result += message[1]
            if self.resp_received == 2:
                self._process_result(self.result)

    def _process_result(self, value: int) -> None:
        if self.parent is not None:
            self.parent.tell(("response", value))
        else:
            self.done.report(value)
        self.stop()


def fibonacci(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        done = Done()
        FibActor.start(None, done).tell(("request", p["n"]))
        done.wait("Fib")
        check("Fib", "result", done.values[0], fib(p["n"]))

    _run(body, p)


# -- Big ------------------------------------------------------------------------
class BigActor(pykka.ThreadingActor):
    def __init__(self, ident: int, num_messages: int, sink: Ref, done: Done) -> None:
        super().__init__()
        self.ident = ident
        self.num_messages = num_messages
        self.sink = sink
        self.done = done
        self.num_pings = 0
        self.exp_pinger = -1
        self.random = PseudoRandom(ident)
        self.neighbors: list[Ref] = []
        self.pings_received = 0
        self.errors = 0
        self.my_ping = ("ping", ident)
        self.my_pong = ("pong", ident)

    def on_receive(self, message: Any) -> Any:
        kind = message[0]
        if kind == "ping":
            self.pings_received += 1
            self.neighbors[message[1]].tell(self.my_pong)
        elif kind == "pong":
            if message[1] != self.exp_pinger:
                self.errors += 1
            if self.num_pings == self.num_messages:
                self.sink.tell(("exit",))
            else:
                target = self.random.next_int(len(self.neighbors))
                self.exp_pinger = target
                self.neighbors[target].tell(self.my_ping)
                self.num_pings += 1
        elif kind == "exit":
            self.done.report((self.pings_received, self.errors))
            self.stop()
        elif kind == "neighbor":
            self.neighbors = message[1]


class SinkActor(pykka.ThreadingActor):
    def __init__(self, num_workers: int) -> None:
        super().__init__()
        self.num_workers = num_workers
        self.num_messages = 0
        self.neighbors: list[Ref] = []

    def on_receive(self, message: Any) -> Any:
        if message[0] == "exit":
            self.num_messages += 1
            if self.num_messages == self.num_workers:
                for worker in self.neighbors:
                    worker.tell(("exit",))
                self.stop()
        elif message[0] == "neighbor":
            self.neighbors = message[1]


def big(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        n, w = p["n"], p["w"]
        done = Done(w)
        sink = SinkActor.start(w)
        actors = [BigActor.start(i, n, sink, done) for i in range(w)]
        sink.tell(("neighbor", actors))
        for actor in actors:
            actor.tell(("neighbor", actors))
        for actor in actors:
            actor.tell(("pong", -1))
        done.wait("Big")
        check("Big", "pings", sum(v[0] for v in done.values), n * w)
        check("Big", "out-of-order pongs", sum(v[1] for v in done.values), 0)

    _run(body, p)


# -- Chameneos ------------------------------------------------------------------
class MallActor(pykka.ThreadingActor):
    def __init__(self, n: int, num_chameneos: int, done: Done) -> None:
        super().__init__()
        self.n = n
        self.num_chameneos = num_chameneos
        self.done = done
        self.waiting: Ref | None = None
        self.sum_meetings = 0
        self.num_faded = 0

    def on_start(self) -> None:
        for i in range(self.num_chameneos):
            ChameneoActor.start(self.actor_ref, i % 3, i)

    def on_receive(self, message: Any) -> Any:
        kind = message[0]
        if kind == "meeting_count":
            self.num_faded += 1
            self.sum_meetings += message[1]
            if self.num_faded == self.num_chameneos:
                self.done.report(self.sum_meetings)
                self.stop()
        elif kind == "meet":
            if self.n > 0:
                if self.waiting is None:
                    self.waiting = message[2]
                else:
                    self.n -= 1
                    self.waiting.tell(message)
                    self.waiting = None
            else:
                message[2].tell(("exit", self.actor_ref))


class ChameneoActor(pykka.ThreadingActor):
    def __init__(self, mall: Ref, color: int, ident: int) -> None:
        super().__init__()
        self.mall = mall
        self.color = color
        self.ident = ident
        self.meetings = 0

    def on_start(self) -> None:
        self.mall.tell(("meet", self.color, self.actor_ref))

    def on_receive(self, message: Any) -> Any:
        kind = message[0]
        if kind == "meet":
            self.color = complement(self.color, message[1])
            self.meetings += 1
            message[2].tell(("change", self.color, self.actor_ref))
            self.mall.tell(("meet", self.color, self.actor_ref))
        elif kind == "change":
            self.color = message[1]
            self.meetings += 1
            self.mall.tell(("meet", self.color, self.actor_ref))
        elif kind == "exit":
            self.color = FADED
            message[1].tell(("meeting_count", self.meetings, self.actor_ref))
            self.stop()


def chameneos(p: dict[str, int]) -> None:
    def body(p: dict[str, int]) -> None:
        done = Done()
        MallActor.start(p["meetings"], p["chameneos"], done)
        done.wait("Chameneos")
        check("Chameneos", "sum of meetings", done.values[0], 2 * p["meetings"])

    _run(body, p)
