"""On-demand atoms for tests/cluster: each says which process it is active in."""

from __future__ import annotations

import os

from radon_actors import Atom, Ref, handler, state


class Account(Atom):
    """A durable balance; ``deposit`` saves before it answers."""

    durable_type = "cluster-account"
    balance = state(int)

    def __init__(self) -> None:
        self.turns = 0  # messages this activation has handled

    @handler
    async def deposit(self, amount: int) -> tuple[int, int, int]:
        """(balance, turns of this activation, pid of its process)."""
        self.turns += 1
        self.balance.value += amount
        await self.balance.save()
        return self.balance.value, self.turns, os.getpid()

    @handler
    def where(self) -> int:
        return os.getpid()


class Brief(Account):
    """An ``Account`` collected after a tenth of a second idle."""

    durable_type = "cluster-brief"
    collect_after = 0.1


class Driver(Atom):
    """Sends to on-demand atoms from the process it runs in (a member)."""

    @handler
    async def deposit(self, key: str, amount: int) -> tuple[int, int, int]:
        result: tuple[int, int, int] = await self.on_demand(Account, key).ask(
            Account.deposit, amount
        )
        return result

    @handler
    async def deposit_to(self, account: Ref[Account], amount: int) -> tuple[int, int, int]:
        result: tuple[int, int, int] = await account.ask(Account.deposit, amount)
        return result

    @handler
    def pid(self) -> int:
        return os.getpid()


class Faulty(Atom):
    """An on-demand atom that cannot start."""

    durable_type = "cluster-faulty"
    balance = state(int)

    def on_start(self) -> None:
        raise RuntimeError("no start")

    @handler
    def where(self) -> int:
        return os.getpid()
