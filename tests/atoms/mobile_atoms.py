"""Atom classes the placement tests run natively and sandboxed, on any host.

This module is packaged into the guest (tests/placement/test_placement_sandbox.py):
it may import only the standard library and the guest-safe part of radon_actors.
The classes mirror the ones of ``placement_atoms`` that the migration tests use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from radon_actors import Atom, Ref, handler, portable


@portable
@dataclass(frozen=True)
class Move:
    """A record of this module, for messages between hosts."""

    by: int


@portable
class Tag(str):
    """A registered subclass of a built-in type (a kind of reply, say)."""


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    @handler
    async def aincr(self, by: int = 1) -> int:
        # async: always a queued turn (never the inline fast path)
        self.n += by
        return self.n

    @handler
    def get(self) -> int:
        return self.n

    @handler
    def shout(self, tag: Tag) -> Tag:
        assert type(tag) is Tag  # rebuilt as itself inside the guest
        return Tag(tag.upper())

    @handler
    def apply(self, move: Move) -> Move:
        self.n += move.by
        return Move(self.n)

    @handler
    def halt(self) -> None:
        self.stop()

    @handler
    def boom(self) -> None:
        raise ValueError(f"boom at {self.n}")

    @handler
    async def wait_on(self, gate: Ref[Any]) -> None:
        await gate.ask("wait")

    @handler
    def me(self) -> Ref[Any]:
        return self.ref

    @handler
    def spin(self, n: int) -> int:
        """CPU work: runs out of a small fuel budget in the sandbox."""
        total = 0
        for i in range(n):
            total = (total + i * i) % 1_000_003
        return total


class SandboxedCounter(Counter):
    """Sandboxed by default (the class attribute), also when an atom spawns it."""

    sandbox = True


class Relay(Atom):
    """Asks another atom (anywhere), whose Ref arrives inside a message."""

    @handler
    async def make_child(self, start: int) -> int:
        child = await self.spawn(SandboxedCounter, start)
        result: int = await child.ask("incr", 1)
        return result

    @handler
    async def relay(self, target: Ref[Any], by: int) -> int:
        result: int = await target.ask("incr", by)
        return result

    @handler
    async def stream(self, target: Ref[Any], sender: str, n: int) -> int:
        for i in range(n):
            target.tell("seq", sender, i)
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
        self.count = 0

    @handler
    def seq(self, sender: str, i: int) -> None:
        self.count += 1
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
    async def wait_on(self, gate: Ref[Any]) -> None:
        await gate.ask("wait")

    @handler
    def report(self) -> tuple[dict[str, int], list[str]]:
        return dict(self.last), list(self.errors)


class Unpicklable(Atom):
    def __init__(self) -> None:
        self.n = 0
        self.fn = lambda: 0  # cannot be pickled: migration must fail cleanly

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n


class Clock(Atom):
    """Arms timers and records their firings (a guest-safe ``placement_timer_atoms.Clock``)."""

    def __init__(self) -> None:
        self.fired: list[str] = []
        self.handles: dict[str, Any] = {}

    @handler
    def after(self, tag: str, delay: float) -> None:
        self.handles[tag] = self.send_after(delay, Clock.fire, tag)

    @handler
    def every(self, tag: str, interval: float) -> None:
        self.handles[tag] = self.send_every(interval, Clock.fire, tag)

    @handler
    def fire(self, tag: str) -> None:
        self.fired.append(tag)
        self.unstash_all()

    @handler
    def cancel(self, tag: str) -> tuple[bool, int]:
        """Cancel through the handle kept in the state; (still active?, firings so far)."""
        handle = self.handles[tag]
        handle.cancel()
        return handle.active, len(self.fired)

    @handler
    def fired_after(self, n: int) -> list[str]:
        """The firings, once there are at least ``n`` (the ask waits in the stash)."""
        if len(self.fired) < n:
            self.stash()
        return list(self.fired)
