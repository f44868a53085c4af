"""Atom classes for the placement tests (imported by name on worker hosts)."""

from __future__ import annotations

from typing import Any

import trio

from radon_actors import Atom, Ref, Rejection, handler


class Overdrawn(Rejection):
    """A business error: an answer to the asker, not a crash."""


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    @handler
    async def aincr(self, by: int = 1) -> int:
        await trio.lowlevel.checkpoint()
        self.n += by
        return self.n

    @handler
    def get(self) -> int:
        return self.n

    @handler
    def halt(self) -> None:
        self.stop()

    @handler
    def boom(self) -> None:
        raise ValueError(f"boom at {self.n}")

    @handler
    def take(self, n: int) -> int:
        if n > self.n:
            raise Overdrawn(f"cannot take {n} of {self.n}")
        self.n -= n
        return self.n

    @handler
    async def hang(self) -> None:
        await trio.sleep_forever()

    @handler
    async def wait_for(self, event: trio.Event) -> None:
        await event.wait()

    @handler
    async def wait_on(self, gate: Ref[Gate]) -> None:
        await gate.ask(Gate.wait)

    @handler
    def where(self) -> str:
        import os

        return str(os.getpid())


class Relay(Atom):
    """Asks another atom, whose Ref arrives inside a message."""

    @handler
    async def relay(self, target: Ref[Counter], by: int) -> int:
        return await target.ask(Counter.incr, by)

    @handler
    async def stream(self, target: Ref[Any], sender: str, n: int) -> int:
        for i in range(n):
            await target.send("seq", sender, i)
            if i % 100 == 99:  # flow control: bounds the backlog
                await target.ask("handled")
        return n

    @handler
    async def flood(self, target: Ref[Any], sender: str, n: int) -> int:
        """Numbered messages with no flow control but the mailbox's own (``send``)."""
        for i in range(n):
            await target.send("seq", sender, i)
        return n


class Sequencer(Atom):
    """Checks that each sender's numbered messages arrive complete and in order."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.errors: list[str] = []
        self.pids: dict[int, int] = {}
        self.count = 0

    @handler
    def seq(self, sender: str, i: int) -> None:
        import os

        self.count += 1
        self.pids[os.getpid()] = self.pids.get(os.getpid(), 0) + 1
        expected = self.last.get(sender, -1) + 1
        if i != expected:
            self.errors.append(f"{sender}: got {i}, expected {expected}")
        self.last[sender] = i

    @handler
    async def aseq(self, sender: str, i: int) -> int:
        self.seq(sender, i)
        return i

    @handler
    def handled(self) -> int:
        return self.count

    @handler
    async def wait_on(self, gate: Ref[Gate]) -> None:
        await gate.ask(Gate.wait)

    @handler
    def report(self) -> tuple[dict[str, int], list[str], dict[int, int]]:
        return dict(self.last), list(self.errors), dict(self.pids)


class Unpicklable(Atom):
    def __init__(self) -> None:
        self.n = 0
        self.fn = lambda: 0  # cannot be pickled: migration must fail cleanly

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n


def _block_on_unpickle(seconds: float) -> None:
    import time

    time.sleep(seconds)  # freezes the whole host process: it stops answering


class FreezesTarget:
    """A state value whose unpickling freezes the host that unpickles it."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, tuple[float]]:
        return (_block_on_unpickle, (self.seconds,))


class SlowToRestore(Atom):
    """Its state takes ``seconds`` to unpickle on the target of a migration."""

    def __init__(self, seconds: float) -> None:
        self.n = 0
        self.trap = FreezesTarget(seconds)

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n


class Freezer(Atom):
    def __init__(self) -> None:
        self.n = 0
        self.trap = FreezesTarget()

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n


class Gate(Atom):
    """Holds whoever asks ``wait`` until the test sets its (local) event."""

    def __init__(self, event: trio.Event) -> None:
        self.event = event

    @handler
    async def wait(self) -> None:
        await self.event.wait()


class Watcher(Atom):
    """Watches atoms (on any host) and reports the Down notices it got."""

    def __init__(self) -> None:
        self.downs: list[tuple[str, str, bool]] = []

    @handler
    def follow(self, ref: Ref[Any]) -> None:
        self.watch(ref, Watcher.on_down)

    @handler
    def on_down(self, down: Any) -> None:
        self.downs.append((down.ref.id, type(down.reason).__name__, down.stopped))
        self.unstash_all()

    @handler
    def downs_after(self, n: int) -> list[tuple[str, str, bool]]:
        """The notices, once there are at least ``n`` (the ask waits in the stash)."""
        if len(self.downs) < n:
            self.stash()
        return list(self.downs)

    @handler
    async def make(self) -> Ref[Counter]:
        """A Counter spawned here (so this host is its origin)."""
        return await self.spawn(Counter)


class FailsOn(Atom):
    """Cannot start in the process ``pid`` (a host where a restart fails)."""

    def __init__(self, pid: int) -> None:
        import os

        if os.getpid() == pid:
            raise RuntimeError(f"FailsOn cannot start in process {pid}")

    @handler
    def where(self) -> str:
        import os

        return str(os.getpid())


class Doorman(Atom):
    """Stashes the ``seq`` messages of sender ``early`` until ``open_door``."""

    def __init__(self) -> None:
        self.is_open = False
        self.seen: list[tuple[str, int]] = []

    @handler
    def seq(self, sender: str, i: int) -> None:
        if sender == "early" and not self.is_open:
            self.stash()
            return
        self.seen.append((sender, i))

    @handler
    async def wait_on(self, gate: Ref[Gate]) -> None:
        await gate.ask(Gate.wait)

    @handler
    def open_door(self) -> None:
        self.is_open = True
        self.unstash_all()

    @handler
    def report(self) -> list[tuple[str, int]]:
        return list(self.seen)


class Probe(Atom):
    """Reports on the process it runs in (which modules it imported)."""

    @handler
    def imported(self, module: str) -> bool:
        import sys

        return module in sys.modules


# Arrivals at the atoms below, in this process's order (issue #14: a large
# message must not hold up a small one behind it on the same connection).
ARRIVALS: list[str] = []


class Sink(Atom):
    """Takes large messages, and says which arrived (see ``ARRIVALS``)."""

    @handler
    def take(self, label: str, blob: bytes) -> int:
        ARRIVALS.append(label)
        return len(blob)

    @handler
    def arrivals(self) -> list[str]:
        return list(ARRIVALS)


class Burst(Atom):
    """Tells another atom without yielding, until its mailbox pushes back."""

    @handler
    def burst(self, target: Ref[Counter], n: int) -> int:
        from radon_actors import MailboxFull

        for i in range(n):
            try:
                target.tell(Counter.incr)
            except MailboxFull:
                return i
        return n

    @handler
    async def read(self, target: Ref[Counter]) -> int:
        """The count, asked after this host's tells (so behind them)."""
        return await target.ask(Counter.get)

    @handler
    async def trickle(self, target: Ref[Counter], n: int) -> int:
        """Tells, letting other tasks run between them, until ``MailboxFull``."""
        from radon_actors import MailboxFull

        for i in range(n):
            try:
                target.tell(Counter.incr)
            except MailboxFull:
                return i
            await trio.lowlevel.checkpoint()
        return n
