"""Atom classes shared by the tests."""

from __future__ import annotations

from typing import Any

import trio

from radon_actors import Atom, Ref, handler


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    async def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    @handler
    def get(self) -> int:
        return self.n

    @handler
    def fail(self, message: str) -> None:
        raise ValueError(message)

    def not_a_handler(self) -> int:
        return -1


class Gate(Atom):
    """Handlers that block on events the test controls."""

    def __init__(self, open: trio.Event, entered: trio.Event | None = None) -> None:
        self.log_: list[Any] = []
        self.open = open
        self.entered = entered if entered is not None else trio.Event()

    @handler
    async def wait_open(self, tag: Any) -> Any:
        self.log_.append(("start", tag))
        self.entered.set()
        await self.open.wait()
        self.log_.append(("end", tag))
        return tag

    @handler
    def release(self) -> None:
        self.open.set()

    @handler
    def record(self, tag: Any) -> Any:
        self.log_.append(tag)
        return tag

    @handler
    def events(self) -> list[Any]:
        return list(self.log_)


class Recorder(Atom):
    def __init__(self) -> None:
        self.items: list[Any] = []

    @handler
    def add(self, item: Any) -> None:
        self.items.append(item)

    @handler
    def all(self) -> list[Any]:
        return list(self.items)


class Forwarder(Atom):
    """Receives a Ref in a message and uses it."""

    @handler
    async def relay(self, target: Ref[Counter], by: int) -> int:
        return await target.ask(Counter.incr, by)
