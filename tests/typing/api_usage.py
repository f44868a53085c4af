"""Checked by ``mypy --strict`` in CI (not run by pytest): the public API's typing.

Lines that must be rejected carry ``# type: ignore[call-overload]``; with
``warn_unused_ignores`` (on under --strict) mypy fails if they are accepted.
"""

from __future__ import annotations

from typing import Any, assert_type

from radon_actors import Atom, ChildSpec, Ref, Rejection, System, handler


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

    @handler(raises=KeyError)
    def lookup(self, key: str) -> int:
        if key == "none":
            raise Overdrawn(key)
        return {"n": self.n}[key]


class Overdrawn(Rejection):
    pass


class Other(Atom):
    @handler
    def name(self) -> str:
        return "other"


async def usage(system: System) -> None:
    c = await system.spawn(Counter, 10, name="counter")
    assert_type(c, Ref[Counter])
    assert_type(await c.ask(Counter.incr, 5), int)
    assert_type(await c.ask(Counter.get), int)
    assert_type(await c.ask(Counter.incr, 5, timeout=1.0), int)
    assert_type(await c.ask(Counter.get, timeout=1.0), int)
    c.tell(Counter.incr, 2)
    await c.send(Counter.incr, by=3)
    assert_type(await c.ask(Counter.lookup, "n"), int)  # @handler(raises=...) keeps the type
    await c.ask(Counter.lookup, 1)  # type: ignore[call-overload]
    dynamic = await c.ask("incr", 5)  # a name: dynamic
    del dynamic

    await c.ask(Counter.incr, "five")  # type: ignore[call-overload]
    await c.ask(Counter.incr, 1, 2)  # type: ignore[call-overload]
    c.tell(Counter.incr, by="x")  # type: ignore[call-overload]
    await c.ask(Other.name)  # type: ignore[call-overload]
    x: str = await c.ask(Counter.get)  # type: ignore[call-overload]
    del x


def child_specs() -> None:
    # The form docs/supervision.md shows: a tuple of constructor arguments.
    spec = ChildSpec(Counter, args=(10,), name="counter")
    assert_type(spec.args, tuple[Any, ...])
