"""The example's one atom (its own module, so that the members import it by
name: a class defined in ``__main__`` could not be activated elsewhere)."""

from __future__ import annotations

import os

from radon_actors import Atom, handler, state


class Account(Atom):
    """A balance kept in the cluster's store, saved on every deposit."""

    durable_type = "example.account"
    balance = state(int)

    @handler
    async def deposit(self, amount: int) -> tuple[int, int]:
        """Add ``amount``; (the new balance, the pid of the member it is active in)."""
        self.balance.value += amount
        await self.balance.save()
        return self.balance.value, os.getpid()
