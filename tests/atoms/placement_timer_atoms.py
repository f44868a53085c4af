"""Atom classes for the timer-migration tests (imported by name on worker hosts)."""

from __future__ import annotations

import os
import time
from typing import Any

from radon_actors import Atom, Timer, handler


class Clock(Atom):
    """Arms named timers and records where (pid) and when (system-wide monotonic
    clock) each firing was handled."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, int]] = []
        self.handles: dict[str, Timer] = {}
        self.armed_at: dict[str, float] = {}
        self.fired_at: dict[str, float] = {}

    @handler
    def after(self, tag: str, delay: float) -> None:
        self.armed_at[tag] = time.monotonic()
        self.handles[tag] = self.send_after(delay, Clock.fire, tag)

    @handler
    def many(self, n: int, spacing: float) -> None:
        """One-shot timers ``"0"`` ... ``str(n - 1)``, due ``spacing`` s apart."""
        for i in range(n):
            self.handles[str(i)] = self.send_after(i * spacing, Clock.fire, str(i))

    @handler
    def every(self, tag: str, interval: float) -> None:
        self.handles[tag] = self.send_every(interval, Clock.fire, tag)

    @handler
    def fire(self, tag: str) -> None:
        self.fired.append((tag, os.getpid()))
        self.fired_at.setdefault(tag, time.monotonic())
        self.unstash_all()

    @handler
    def cancel(self, tag: str) -> tuple[bool, int]:
        """Cancel through the handle kept in the state; (still active?, firings so far)."""
        handle = self.handles[tag]
        handle.cancel()
        return handle.active, len(self.fired)

    @handler
    def active(self, tag: str) -> bool:
        return self.handles[tag].active

    @handler
    def fired_after(self, n: int) -> list[tuple[str, int]]:
        """The firings, once there are at least ``n`` (the ask waits in the stash)."""
        if len(self.fired) < n:
            self.stash()
        return list(self.fired)

    @handler
    def elapsed(self, tag: str) -> float:
        return self.fired_at[tag] - self.armed_at[tag]

    @handler
    def where(self) -> int:
        return os.getpid()

    @handler
    def poison(self) -> None:
        """State that does not pickle: a migration fails (and the atom stays)."""
        self.trap = lambda: None

    @handler
    def state(self) -> dict[str, Any]:
        return {"fired": len(self.fired)}
