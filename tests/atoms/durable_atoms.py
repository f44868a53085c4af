"""Durable atoms for tests/durable."""

from __future__ import annotations

from typing import Any

import attrs

from radon_actors import Atom, handler, state


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
