"""Checked by ``mypy --strict`` in CI (not run by pytest): the public API's typing.

Lines that must be rejected carry ``# type: ignore[<code>]``; with
``warn_unused_ignores`` (on under --strict) mypy fails if they are accepted.
"""

from __future__ import annotations

from typing import Any, assert_type

import attrs

from radon_actors import (
    Atom,
    ChildSpec,
    Directive,
    ForeignError,
    Record,
    Ref,
    Rejection,
    Restart,
    SQLiteStore,
    State,
    StateConflict,
    Strategy,
    Supervisor,
    System,
    handler,
    open_system,
    portable,
    state,
)


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


class Account(Atom):
    def __init__(self, owner: str, balance: int) -> None:
        self.owner = owner
        self.balance = balance


class Tagged(Atom):
    """A keyword-only parameter: ``ChildSpec(Tagged)`` must still type-check."""

    def __init__(self, start: int = 0, *, label: str = "") -> None:
        self.n = start
        self.label = label


class Parent(Atom):
    @handler
    async def start_children(self) -> Ref[Counter]:
        child = await self.spawn(Counter, 1, name="c")
        assert_type(child, Ref[Counter])
        assert_type(await self.spawn(Account, "ada", 100), Ref[Account])
        await self.spawn(Counter)
        await self.spawn(Account, owner="ada", balance=100)
        await self.spawn(Account, "ada", 100, sandbox=False)
        await self.spawn(Tagged, name="t")
        await self.spawn(Tagged, 1, label="x", name="t")  # keywords beside an option: unchecked

        # Without options: the ParamSpec checks everything.
        await self.spawn(Counter, "ten")  # type: ignore[call-overload]
        await self.spawn(Counter, 1, 2)  # type: ignore[call-overload]
        await self.spawn(Account, "ada")  # type: ignore[call-overload]
        await self.spawn(Tagged, lable="x")  # type: ignore[call-overload]
        # With options: the positional arguments are the whole call.
        await self.spawn(Counter, "ten", name="c")  # type: ignore[arg-type]
        await self.spawn(Counter, 1, 2, sandbox=True)  # type: ignore[arg-type, call-arg]
        await self.spawn(Account, "ada", name="a")  # type: ignore[arg-type]
        await self.spawn(Counter, 1, mailbox_size=10)  # type: ignore[call-arg]  # no such option here
        return child


async def usage(system: System) -> None:
    c = await system.spawn(Counter, 10, name="counter")
    assert_type(c, Ref[Counter])
    assert_type(await c.ask(Counter.incr, 5), int)
    assert_type(await c.ask(Counter.get), int)
    assert_type(await c.ask(Counter.incr, 5, timeout=1.0), int)
    assert_type(await c.ask(Counter.get, timeout=1.0), int)
    assert_type(c.ask_nowait(Counter.incr, 5), int)
    assert_type(c.ask_nowait(Counter.get), int)
    c.ask_nowait(Counter.incr, "five")  # type: ignore[call-overload]
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


async def spawning(system: System, options: dict[str, Any]) -> None:
    assert_type(await system.spawn(Counter), Ref[Counter])
    assert_type(await system.spawn(Account, "ada", 100), Ref[Account])
    await system.spawn(Account, owner="ada", balance=100)
    await system.spawn(Account, "ada", 100, name="ada", mailbox_size=10, sandbox=False, host=None)
    await system.spawn(Account, "ada", 100, **options)  # e.g. host= chosen at run time
    await system.spawn(Tagged, name="t")
    await system.spawn(Tagged, 1, label="x", host="w1")  # keywords beside an option: unchecked
    await system.spawn(Supervisor, [ChildSpec(Counter)], strategy=Strategy.ONE_FOR_ALL, name="s")

    # Without options: the ParamSpec checks everything.
    await system.spawn(Counter, "ten")  # type: ignore[call-overload]
    await system.spawn(Counter, 1, 2)  # type: ignore[call-overload]
    await system.spawn(Account, "ada")  # type: ignore[call-overload]
    await system.spawn(Account, "ada", balance="100")  # type: ignore[arg-type]
    await system.spawn(Tagged, lable="x")  # type: ignore[call-overload]
    await system.spawn(Other, 1)  # type: ignore[call-overload]
    await system.spawn(int)  # type: ignore[call-overload]
    # With options: the positional arguments are checked as the whole call.
    await system.spawn(Counter, "ten", name="c")  # type: ignore[arg-type]
    await system.spawn(Counter, 1, 2, sandbox=True)  # type: ignore[arg-type, call-arg]
    await system.spawn(Account, "ada", name="ada")  # type: ignore[arg-type]
    await system.spawn(Account, 100, "ada", host="w1", mailbox_size=10)  # type: ignore[arg-type, call-arg]
    # The price of that: next to an option, a required parameter passed by
    # keyword is refused (pass it positionally; see System.spawn).
    await system.spawn(Account, "ada", balance=100, name="ada")  # type: ignore[arg-type]


def child_specs() -> None:
    # The form docs/supervision.md shows: a tuple of constructor arguments.
    spec = ChildSpec(Counter, args=(10,), name="counter")
    assert_type(spec.args, tuple[Any, ...])
    ChildSpec(Account, args=("carol", 0))
    ChildSpec(Counter)
    ChildSpec(Tagged)
    ChildSpec(Tagged, args=(1,), restart=Restart.TRANSIENT, shutdown=None, host="w1")
    ChildSpec(cls=Counter, args=())
    ChildSpec(Counter, (10,), {}, "counter")  # all positional: kwargs given, unchecked
    ChildSpec(Account, kwargs={"owner": "carol", "balance": 0})  # a dict: unchecked
    ChildSpec(Tagged, args=(1,), kwargs={"label": "x"}, name="t")
    ChildSpec(Account, args=["carol"])  # a list (a pool template's first arguments): unchecked
    Supervisor.spec([ChildSpec(Counter)], strategy=Strategy.ONE_FOR_ALL, name="workers")
    assert_type(attrs.evolve(spec, args=(11,)), ChildSpec)

    ChildSpec(Counter, args=("ten",))  # type: ignore[arg-type]
    ChildSpec(Counter, args=(1, 2))  # type: ignore[arg-type]
    ChildSpec(Account, args=("carol",), name="carol")  # type: ignore[arg-type]
    ChildSpec(Account, args=("carol", "0"), restart=Restart.TRANSIENT)  # type: ignore[arg-type]
    ChildSpec(Account)  # type: ignore[arg-type]
    ChildSpec(Account, args="carol")  # type: ignore[call-overload]
    ChildSpec(Counter, restart="permanent")  # type: ignore[call-overload]
    ChildSpec(Counter, nmae="counter")  # type: ignore[call-overload]
    ChildSpec(Other, args=(1,))  # type: ignore[arg-type]
    ChildSpec(int)  # type: ignore[arg-type]
    attrs.evolve(spec, args=1)  # type: ignore[arg-type]


@portable
@attrs.frozen
class Move:
    by: int


async def components(system: System) -> None:
    ref = await system.spawn_component("counter.wasm", "Counter", 10, name="c")
    assert_type(ref, Ref[Any])
    await system.spawn_component("0" * 64, "mod:Counter", sandbox=True, host="w1")
    cart = await system.component_class("cart.wasm", "Cart")
    assert_type(cart, type[Any])
    assert_type(system.get(cart, "user-42"), Ref[Any])
    try:
        await ref.ask("incr", Move(1))
    except ForeignError as exc:
        assert_type(exc.type_name, str)
    assert_type(Record("m:T", {}).fields, dict[str, Any])
    ChildSpec(Counter, directives={"mod:Invalid": Directive.RESUME, ValueError: Directive.STOP})


@attrs.define
class Basket:
    items: list[str] = attrs.Factory(list)


class Shop(Atom):
    basket = state(Basket)
    visits = state(int, name="visits", version=2, upgrade=lambda v, body: body)

    @handler
    async def add(self, item: str) -> list[str]:
        assert_type(self.basket, State[Basket])
        assert_type(self.basket.value, Basket)
        assert_type(self.visits.value, int)
        self.basket.value.items.append(item)
        self.visits.value += 1
        try:
            await self.basket.save()
        except StateConflict:
            raise
        assert_type(self.basket.etag, str | None)
        assert_type(self.on_demand(Shop, "other"), Ref[Shop])
        assert_type(self.key, str | None)
        self.basket.value = 3  # type: ignore[assignment]
        return self.basket.value.items


async def durable() -> None:
    async with open_system(state_store=SQLiteStore("s.db")) as system:
        await system.spawn(Shop, name="k")
        cart = system.get(Shop, "user-42")
        assert_type(cart, Ref[Shop])
        assert_type(await cart.ask(Shop.add, "tea"), list[str])
        system.get(Shop, 42)  # type: ignore[arg-type]
