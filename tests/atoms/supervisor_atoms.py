"""Atoms shared by the supervision tests (and the watch tests), and ``spec``."""

from __future__ import annotations

from typing import Any

import trio

from radon_actors import Atom, ChildSpec, Restart, handler

# Every lifecycle event of every test atom, in order: ("start"/"stop", label).
EVENTS: list[tuple[str, str]] = []


class Worker(Atom):
    """Counts; fails on demand; records its starts and stops in EVENTS."""

    def __init__(self, label: str = "w", start_value: int = 0) -> None:
        self.label = label
        self.value = start_value

    def on_start(self) -> None:
        EVENTS.append(("start", self.label))

    def on_stop(self) -> None:
        EVENTS.append(("stop", self.label))

    @handler
    def incr(self) -> int:
        self.value += 1
        return self.value

    @handler
    def get(self) -> int:
        return self.value

    @handler
    def fail(self, exc: BaseException) -> None:
        raise exc

    @handler
    async def afail(self, exc: BaseException) -> None:
        await trio.lowlevel.checkpoint()
        raise exc

    @handler
    async def block(self, gate: trio.Event) -> None:
        await gate.wait()

    @handler
    def quit(self) -> None:
        self.stop()

    @handler
    def args(self) -> tuple[Any, ...]:
        return (self.label, self.value)


def events_of(kind: str) -> list[str]:
    return [label for k, label in EVENTS if k == kind]


class Boom(Exception):
    """The failure the tests inject."""


class Fatal(Exception):
    """A second failure type, for per-exception directives."""


def spec(label: str, restart: Restart = Restart.PERMANENT, **kw: object) -> ChildSpec:
    """A child spec of a ``Worker`` labelled and registered as ``label``."""
    return ChildSpec(Worker, args=(label,), name=label, restart=restart, **kw)  # type: ignore[arg-type]
