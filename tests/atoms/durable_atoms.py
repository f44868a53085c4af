"""Durable atoms for tests/durable."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import attrs
import trio

from radon_actors import Atom, Ref, RoundRobin, handler, state


@attrs.define
class CartState:
    items: list[str] = attrs.Factory(list)
    owner: str = ""


class Cart(Atom):
    durable_type = "cart"
    cart = state(CartState)

    def on_start(self) -> None:
        self.started_with = list(self.cart.value.items)  # loaded before on_start

    @handler
    async def add(self, item: str, *, save: bool = True) -> list[str]:
        self.cart.value.items.append(item)
        if save:
            await self.cart.save()
        return list(self.cart.value.items)

    @handler
    def items(self) -> list[str]:
        return list(self.cart.value.items)

    @handler
    def info(self) -> tuple[str | None, bool, list[str]]:
        return self.cart.etag, self.cart.exists, self.started_with

    @handler
    async def clear(self) -> None:
        await self.cart.clear()

    @handler
    async def reload(self) -> list[str]:
        await self.cart.reload()
        return list(self.cart.value.items)

    @handler
    def crash(self) -> None:
        raise RuntimeError("crash")


class Tally(Atom):
    """A plain value as its state, with a version 2 that upgraded version 1."""

    durable_type = "tally"
    total = state(int, version=2, upgrade=lambda version, value: {"n": value})

    @handler
    async def add(self, n: int) -> Any:
        self.total.value = {"n": self.total.value["n"] + n}
        await self.total.save()
        return self.total.value


class Unkeyed(Atom):
    cart = state(CartState)


class Visits(Atom):
    """An on-demand atom: counts visits per key, collected after 10 s idle."""

    durable_type = "visits"
    collect_after = 10.0
    count = state(int)

    activations = itertools.count(1)

    def __init__(self) -> None:
        # A number per activation (not ``id(self)``: a collected activation's
        # memory, and so its id, can be the next one's).
        self.activation = next(Visits.activations)

    @handler
    async def visit(self) -> int:
        self.count.value += 1
        await self.count.save()
        return self.count.value

    @handler
    def bump(self) -> None:
        self.count.value += 1  # unsaved

    @handler
    def seen(self) -> tuple[int, int]:
        return self.count.value, self.activation

    @handler
    def fail(self) -> None:
        raise ValueError("on-demand failure")

    @handler
    async def slow(self, event: Any) -> int:
        await event.wait()
        return self.count.value


class Keeper(Visits):
    """Never collected."""

    durable_type = "keeper"
    daemon = True


class Stateless(Atom):
    """An on-demand atom without durable state."""

    collect_after = 1.0

    def __init__(self) -> None:
        self.n = 0

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n


class Lingering(Visits):
    """Takes a second (of the test's clock) to stop: messages arrive meanwhile."""

    durable_type = "lingering"

    async def on_stop(self) -> None:
        await trio.sleep(1)


class MemoryStore:
    """A StateStore in a dict, with no threads (so trio's MockClock stays exact)."""

    def __init__(self) -> None:
        self.data: dict[tuple[str, str, str], tuple[str | None, int]] = {}

    @property
    def url(self) -> None:
        return None

    async def read(self, atom_type: str, key: str, name: str) -> tuple[str | None, str] | None:
        await trio.lowlevel.checkpoint()
        found = self.data.get((atom_type, key, name))
        return None if found is None else (found[0], str(found[1]))

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        return await self._put((atom_type, key, name), document, etag)

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        return await self._put((atom_type, key, name), None, etag)

    async def _put(self, k: tuple[str, str, str], document: str | None, etag: str | None) -> str:
        from radon_actors import StateConflict

        await trio.lowlevel.checkpoint()
        found = self.data.get(k)
        if (None if found is None else str(found[1])) != etag:
            raise StateConflict(f"{k} changed")
        revision = 1 if found is None else found[1] + 1
        self.data[k] = (document, revision)
        return str(revision)

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        await trio.lowlevel.checkpoint()
        return [
            (t, k, doc, str(rev))
            for (t, k, n), (doc, rev) in self.data.items()
            if n == name and doc is not None
        ]

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


# Reminder deliveries seen in this process, and an event per expected count
# (tests wait on them instead of polling).
TICKS: list[tuple[str, str]] = []
WAITERS: list[tuple[int, trio.Event]] = []


def _tick(key: str, what: str) -> None:
    TICKS.append((key, what))
    for n, event in WAITERS:
        if len(TICKS) >= n:
            event.set()


def ticks_reached(n: int) -> trio.Event:
    """An event set once ``TICKS`` holds ``n`` deliveries."""
    event = trio.Event()
    if len(TICKS) >= n:
        event.set()
    WAITERS.append((n, event))
    return event


class Reminded(Atom):
    """An on-demand atom with reminders (collected after 10 s idle)."""

    durable_type = "reminded"
    collect_after = 10.0
    fired = state(int)

    def __init__(self) -> None:
        self.failures_left = 0

    @handler
    async def schedule(self, due: float, period: float | None = None, what: str = "tick") -> None:
        await self.remind("r", Reminded.ring, what, due=due, period=period)

    @handler
    async def forget(self) -> bool:
        return await self.forget_reminder("r")

    @handler
    async def ring(self, what: str) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("not now")
        self.fired.value += 1
        await self.fired.save()
        _tick(self.key or "?", what)

    @handler
    def fail_next(self, n: int) -> None:
        self.failures_left = n

    @handler
    def count(self) -> int:
        return self.fired.value


class Caller(Atom):
    """Visits an on-demand atom whose Ref arrives in a message (from another host)."""

    @handler
    async def visits(self, target: Ref[Visits], n: int) -> list[int]:
        seen = []
        for _ in range(n):
            await target.ask(Visits.visit)
            seen.append((await target.ask(Visits.seen))[1])
        return seen

    @handler
    async def visits_by_key(self, key: str, n: int) -> list[int]:
        """The same, with the Ref from ``self.on_demand`` on this atom's own host."""
        return await self.visits(self.on_demand(Visits, key), n)


class Roaming(Visits):
    """An on-demand atom activated on a worker host (the placement policy's pick)."""

    durable_type = "roaming"
    activate_on = RoundRobin(among=["w1", "w2"])

    @handler
    def where(self) -> int:
        import os

        return os.getpid()


class RoamingReminded(Reminded):
    """Reminders asked for by an activation on a worker host."""

    durable_type = "roaming-reminded"
    activate_on = "w1"


class Fussy(Atom):
    """An on-demand atom without state whose constructor fails for keys that
    start with "bad", and whose plain ``on_start`` counts its activations."""

    daemon = True
    started: ClassVar[list[str]] = []

    def __init__(self) -> None:
        key = self.key
        assert key is not None
        if key.startswith("bad"):
            raise ValueError(f"no atom for {key}")
        self.log_: list[str] = []

    def on_start(self) -> None:
        Fussy.started.append(self.key or "")

    @handler
    async def note(self, item: str) -> None:
        await trio.lowlevel.checkpoint()  # suspends: always a queued turn
        self.log_.append(item)

    @handler
    def items(self) -> list[str]:
        return list(self.log_)
