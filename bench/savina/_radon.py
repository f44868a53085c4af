"""The Savina workloads on radon-actors, one ``async`` function per benchmark.

Each function runs one iteration the way Savina's ``runIteration`` does: open a
system, spawn the atoms, send the first message, wait until the workload is over,
close the system (so the time includes spawning and stopping), and check the
result. Atoms stop themselves (``self.stop()``) where Savina's actors ``exit()``.

Where Savina's actors rely on unbounded mailboxes to push a flood of messages
(Counting, Fork-Join throughput), the sender ``await``s ``ref.send(...)``, the
radon-actors way to wait for room in a bounded mailbox; everywhere else messages
are ``tell``s, as in Savina. A ``Done`` object (plain Python, shared in-process)
stands in for Savina's ``awaitTermination``: the atoms that finish the workload
report to it, and the driver waits on it before closing the system.
"""

from __future__ import annotations

from typing import Any

import trio

from radon_actors import Atom, Ref, handler, open_system

from ._common import (
    FADED,
    PseudoRandom,
    check,
    complement,
    fib,
    perform_computation,
)


class Done:
    """Counts reports from atoms and wakes the driver after ``expected`` of them."""

    def __init__(self, expected: int = 1) -> None:
        self.left = expected
        self.values: list[Any] = []
        self.event = trio.Event()

    def report(self, value: Any = None) -> None:
        self.values.append(value)
        self.left -= 1
        if self.left == 0:
            self.event.set()
        elif self.left < 0:
            raise AssertionError("more reports than expected")


# -- PingPong -------------------------------------------------------------------
class Ping(Atom):
    def __init__(self, count: int, pong: Ref[Pong]) -> None:
        self.pings_left = count
        self.pong = pong

    @handler
    def start(self) -> None:
        self.pong.tell("send_ping", self.ref)
        self.pings_left -= 1

    @handler
    def ping(self) -> None:
        self.pong.tell("send_ping", self.ref)
        self.pings_left -= 1

    @handler
    def send_pong(self, sender: Ref[Pong]) -> None:
        if self.pings_left > 0:
            self.ref.tell("ping")  # Savina's self-message each round
        else:
            self.pong.tell("stop_")
            self.stop()


class Pong(Atom):
    def __init__(self, done: Done) -> None:
        self.pong_count = 0
        self.done = done

    @handler
    def send_ping(self, sender: Ref[Ping]) -> None:
        sender.tell("send_pong", self.ref)
        self.pong_count += 1

    @handler
    def stop_(self) -> None:  # ``stop`` is reserved on Atom
        self.done.report(self.pong_count)
        self.stop()


async def pingpong(p: dict[str, int]) -> None:
    n = p["n"]
    done = Done()
    async with open_system() as system:
        pong = await system.spawn(Pong, done)
        ping = await system.spawn(Ping, n, pong)
        ping.tell("start")
        await done.event.wait()
    check("PingPong", "pongs", done.values[0], n)


# -- Counting -------------------------------------------------------------------
class Producer(Atom):
    def __init__(self, counter: Ref[Counter], n: int, done: Done) -> None:
        self.counter = counter
        self.n = n
        self.done = done

    @handler
    async def increment(self) -> None:
        counter = self.counter
        for _ in range(self.n):
            await counter.send("increment")
        await counter.send("retrieve", self.ref)

    @handler
    def result(self, result: int) -> None:
        self.done.report(result)
        self.stop()


class Counter(Atom):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def increment(self) -> None:
        self.count += 1

    @handler
    def retrieve(self, sender: Ref[Producer]) -> None:
        sender.tell("result", self.count)
        self.stop()


async def counting(p: dict[str, int]) -> None:
    n = p["n"]
    done = Done()
    async with open_system() as system:
        counter = await system.spawn(Counter)
        producer = await system.spawn(Producer, counter, n, done)
        producer.tell("increment")
        await done.event.wait()
    check("Counting", "count", done.values[0], n)


# -- ThreadRing -----------------------------------------------------------------
class RingAtom(Atom):
    def __init__(self, ident: int, num_in_ring: int, done: Done) -> None:
        self.ident = ident
        self.num_in_ring = num_in_ring
        self.next: Ref[RingAtom] | None = None
        self.done = done
        self.pings = 0

    @handler
    def data(self, next_atom: Ref[RingAtom]) -> None:
        self.next = next_atom

    @handler
    def ping(self, pings_left: int) -> None:
        assert self.next is not None
        self.pings += 1
        if pings_left > 0:
            self.next.tell("ping", pings_left - 1)
        else:
            self.next.tell("exit", self.num_in_ring)

    @handler
    def exit(self, exits_left: int) -> None:
        assert self.next is not None
        if exits_left > 0:
            # The last exit reaches an atom that already stopped: a dead letter,
            # as in Savina (where it goes to Akka's dead letters).
            self.next.tell("exit", exits_left - 1)
        self.done.report(self.pings)
        self.stop()


async def threadring(p: dict[str, int]) -> None:
    n, r = p["n"], p["r"]
    done = Done(n)
    async with open_system() as system:
        ring = [await system.spawn(RingAtom, i, n, done) for i in range(n)]
        for i, atom in enumerate(ring):
            atom.tell("data", ring[(i + 1) % n])
        ring[0].tell("ping", r)
        await done.event.wait()
    check("ThreadRing", "ping hops", sum(done.values), r + 1)


# -- Fork-Join throughput -------------------------------------------------------
class ThroughputAtom(Atom):
    def __init__(self, total: int, done: Done) -> None:
        self.total = total
        self.processed = 0
        self.done = done

    @handler
    def message(self) -> None:
        self.processed += 1
        perform_computation(37.2)
        if self.processed == self.total:
            self.done.report(self.processed)
            self.stop()


async def fjthrput(p: dict[str, int]) -> None:
    n, a = p["n"], p["a"]
    done = Done(a)
    async with open_system() as system:
        atoms = [await system.spawn(ThroughputAtom, n, done) for _ in range(a)]
        for _ in range(n):
            for atom in atoms:
                await atom.send("message")
        await done.event.wait()
    check("Fork-Join throughput", "messages", sum(done.values), n * a)


# -- Fork-Join create -----------------------------------------------------------
class ForkJoinAtom(Atom):
    def __init__(self, done: Done) -> None:
        self.done = done

    @handler
    def message(self) -> None:
        perform_computation(37.2)
        self.done.report()
        self.stop()


async def fjcreate(p: dict[str, int]) -> None:
    n = p["n"]
    done = Done(n)
    async with open_system() as system:
        for _ in range(n):
            ref = await system.spawn(ForkJoinAtom, done)
            ref.tell("message")
        await done.event.wait()
    check("Fork-Join create", "atoms run", len(done.values), n)


# -- Fib ------------------------------------------------------------------------
class FibAtom(Atom):
    def __init__(self, parent: Ref[FibAtom] | None, done: Done) -> None:
        self.parent = parent
        self.done = done
        self.result = 0
        self.resp_received = 0

    @handler
    async def request(self, n: int) -> None:
        if n <= 2:
            self.result = 1
            self._process_result(1)
        else:
            f1 = await self.spawn(FibAtom, self.ref, self.done)
            f1.tell("request", n - 1)
            f2 = await self.spawn(FibAtom, self.ref, self.done)
            f2.tell("request", n - 2)

    @handler
    def response(self, value: int) -> None:
        self.resp_received += 1
        self.result += value
        if self.resp_received == 2:
            self._process_result(self.result)

    def _process_result(self, value: int) -> None:
        if self.parent is not None:
            self.parent.tell("response", value)
        else:
            self.done.report(value)
        self.stop()


async def fibonacci(p: dict[str, int]) -> None:
    n = p["n"]
    done = Done()
    async with open_system() as system:
        root = await system.spawn(FibAtom, None, done)
        root.tell("request", n)
        await done.event.wait()
    check("Fib", "result", done.values[0], fib(n))


# -- Big ------------------------------------------------------------------------
class BigAtom(Atom):
    def __init__(self, ident: int, num_messages: int, sink: Ref[Sink], done: Done) -> None:
        self.ident = ident
        self.num_messages = num_messages
        self.sink = sink
        self.done = done
        self.num_pings = 0
        self.exp_pinger = -1
        self.random = PseudoRandom(ident)
        self.neighbors: list[Ref[BigAtom]] = []
        self.pings_received = 0
        self.errors = 0

    @handler
    def ping(self, sender: int) -> None:
        self.pings_received += 1
        self.neighbors[sender].tell("pong", self.ident)

    @handler
    def pong(self, sender: int) -> None:
        if sender != self.exp_pinger:
            self.errors += 1
        if self.num_pings == self.num_messages:
            self.sink.tell("exit")
        else:
            self._send_ping()
            self.num_pings += 1

    @handler
    def exit(self) -> None:
        self.done.report((self.pings_received, self.errors))
        self.stop()

    @handler
    def neighbor(self, neighbors: list[Ref[BigAtom]]) -> None:
        self.neighbors = neighbors

    def _send_ping(self) -> None:
        target = self.random.next_int(len(self.neighbors))
        self.exp_pinger = target
        self.neighbors[target].tell("ping", self.ident)


class Sink(Atom):
    def __init__(self, num_workers: int) -> None:
        self.num_workers = num_workers
        self.num_messages = 0
        self.neighbors: list[Ref[BigAtom]] = []

    @handler
    def exit(self) -> None:
        self.num_messages += 1
        if self.num_messages == self.num_workers:
            for worker in self.neighbors:
                worker.tell("exit")
            self.stop()

    @handler
    def neighbor(self, neighbors: list[Ref[BigAtom]]) -> None:
        self.neighbors = neighbors


async def big(p: dict[str, int]) -> None:
    n, w = p["n"], p["w"]
    done = Done(w)
    async with open_system() as system:
        sink = await system.spawn(Sink, w)
        atoms = [await system.spawn(BigAtom, i, n, sink, done) for i in range(w)]
        sink.tell("neighbor", atoms)
        for atom in atoms:
            atom.tell("neighbor", atoms)
        for atom in atoms:
            atom.tell("pong", -1)
        await done.event.wait()
    check("Big", "pings", sum(v[0] for v in done.values), n * w)
    check("Big", "out-of-order pongs", sum(v[1] for v in done.values), 0)


# -- Chameneos ------------------------------------------------------------------
class Mall(Atom):
    def __init__(self, n: int, num_chameneos: int, done: Done) -> None:
        self.n = n
        self.num_chameneos = num_chameneos
        self.done = done
        self.waiting: Ref[Chameneo] | None = None
        self.sum_meetings = 0
        self.num_faded = 0

    async def on_start(self) -> None:
        for i in range(self.num_chameneos):
            await self.spawn(Chameneo, self.ref, i % 3, i)

    @handler
    def meeting_count(self, count: int, sender: Ref[Chameneo]) -> None:
        self.num_faded += 1
        self.sum_meetings += count
        if self.num_faded == self.num_chameneos:
            self.done.report(self.sum_meetings)
            self.stop()

    @handler
    def meet(self, color: int, sender: Ref[Chameneo]) -> None:
        if self.n > 0:
            if self.waiting is None:
                self.waiting = sender
            else:
                self.n -= 1
                self.waiting.tell("meet", color, sender)
                self.waiting = None
        else:
            sender.tell("exit", self.ref)


class Chameneo(Atom):
    def __init__(self, mall: Ref[Mall], color: int, ident: int) -> None:
        self.mall = mall
        self.color = color
        self.ident = ident
        self.meetings = 0

    def on_start(self) -> None:
        self.mall.tell("meet", self.color, self.ref)

    @handler
    def meet(self, other_color: int, sender: Ref[Chameneo]) -> None:
        self.color = complement(self.color, other_color)
        self.meetings += 1
        sender.tell("change", self.color, self.ref)
        self.mall.tell("meet", self.color, self.ref)

    @handler
    def change(self, color: int, sender: Ref[Chameneo]) -> None:
        self.color = color
        self.meetings += 1
        self.mall.tell("meet", self.color, self.ref)

    @handler
    def exit(self, sender: Ref[Mall]) -> None:
        self.color = FADED
        sender.tell("meeting_count", self.meetings, self.ref)
        self.stop()


async def chameneos(p: dict[str, int]) -> None:
    meetings, num = p["meetings"], p["chameneos"]
    done = Done()
    async with open_system() as system:
        await system.spawn(Mall, meetings, num, done)
        await done.event.wait()
    check("Chameneos", "sum of meetings", done.values[0], 2 * meetings)
