"""Atom classes for the supervision-across-hosts tests (imported by name on worker hosts)."""

from __future__ import annotations

import os
from typing import Any

from radon_actors import Atom, Ref, handler


class Recorder(Atom):
    """Collects lifecycle events (runs in the test's process)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    @handler
    def note(self, event: tuple[Any, ...]) -> None:
        self.events.append(event)
        self.unstash_all()

    @handler
    def after(self, n: int) -> list[tuple[Any, ...]]:
        """The events, once there are at least ``n`` (the ask waits in the stash)."""
        if len(self.events) < n:
            self.stash()
        return list(self.events)


class Member(Atom):
    """A child that reports its starts and stops (with its pid and state) to a Recorder."""

    def __init__(self, name: str, recorder: Ref[Recorder], start: int = 0) -> None:
        self.name = name
        self.recorder = recorder
        self.n = start

    def on_start(self) -> None:
        self.recorder.tell(Recorder.note, ("start", self.name, os.getpid()))

    def on_stop(self) -> None:
        self.recorder.tell(Recorder.note, ("stop", self.name, os.getpid(), self.n))

    @handler
    def incr(self, by: int = 1) -> int:
        self.n += by
        self.unstash_all()
        return self.n

    @handler
    def get(self) -> int:
        return self.n

    @handler
    def at_least(self, n: int) -> int:
        """The count, once it is at least ``n`` (the ask waits in the stash)."""
        if self.n < n:
            self.stash()
        return self.n

    @handler
    def boom(self, kind: str = "value") -> None:
        if kind == "key":
            raise KeyError(f"boom at {self.n}")
        raise ValueError(f"boom at {self.n}")

    @handler
    async def wait_on(self, gate: Ref[Any]) -> None:
        await gate.ask("wait")

    @handler
    def where(self) -> int:
        return os.getpid()
