"""Quickstart: a counter atom, asked and told through its Ref.

python examples/quickstart.py
"""

from __future__ import annotations

import logging
import sys

import structlog
import trio

from radon_actors import AskTimeout, Atom, Ref, handler, open_system


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    async def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    @handler
    def get(self) -> int:  # plain functions are handlers too
        return self.n


class Doubler(Atom):
    """Holds a Ref to another atom (Refs travel inside messages too)."""

    def __init__(self, counter: Ref[Counter]) -> None:
        self.counter = counter

    @handler
    async def double(self) -> int:
        current = await self.counter.ask(Counter.get)
        return await self.counter.ask(Counter.incr, current)

    @handler
    async def slow(self) -> None:
        await trio.sleep(1)


async def main() -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter, 10, name="counter")
        print("incr by 5 ->", await counter.ask("incr", 5))  # by name
        print("incr by 1 ->", await counter.ask(Counter.incr))  # by function: type-checked
        counter.tell(Counter.incr, 4)  # fire and forget
        print("get       ->", await counter.ask(Counter.get))

        doubler = await system.spawn(Doubler, counter)
        print("double    ->", await doubler.ask(Doubler.double))
        print("lookup    ->", system.lookup("counter") == counter)
        try:
            await doubler.ask(Doubler.slow, timeout=0.05)
        except AskTimeout as exc:
            print("timeout   ->", exc)
    print("system closed: every atom stopped")


if __name__ == "__main__":
    # radon-actors logs through structlog (spawn/stop at debug, crashes at error);
    # show info and above.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        trio.run(main)
    except* KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: the system stopped its atoms on the way out
