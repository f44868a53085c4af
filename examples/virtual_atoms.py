"""On-demand shopping carts, one per user, kept in a state store.

Each cart is an on-demand atom (``system.get(Cart, user)``): nothing is spawned
until a user adds an item, an idle cart's activation is collected (its state
stays in the store), and a reminder expires a cart its user abandoned, even
though its activation was collected meanwhile. See docs/durability.md.

    python examples/virtual_atoms.py [--users N] [--expire-after SECONDS] [--store URL]

``--store`` takes ``sqlite:///path/to/file`` or ``redis://host:port/db``
(default: a new SQLite file in a temporary directory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import attrs
import trio

from radon_actors import Atom, Ref, SQLiteStore, handler, open_system, state
from radon_actors.durable import StateStore, store_from_url


@attrs.define
class CartState:
    items: list[str] = attrs.Factory(list)


class Ledger(Atom):
    """Counts the carts that expired, and says when all it expects have."""

    def __init__(self, expected: int, done: trio.Event) -> None:
        self.expired: list[tuple[str, int]] = []
        self.expected = expected
        self.done = done

    @handler
    def expired_cart(self, user: str, items: int) -> None:
        self.expired.append((user, items))
        if len(self.expired) >= self.expected:
            self.done.set()

    @handler
    def report(self) -> list[tuple[str, int]]:
        return sorted(self.expired)


class Cart(Atom):
    """A user's cart: on demand, durable, expired by a reminder."""

    durable_type = "example.cart"
    cart = state(CartState)
    collect_after = 0.5  # main() sets it from --expire-after
    expire_after = 2.0

    def __init__(self) -> None:
        global ACTIVATIONS
        ACTIVATIONS += 1

    @handler
    async def add(self, item: str, ledger: Ref[Ledger]) -> list[str]:
        self.cart.value.items.append(item)
        await self.cart.save()
        # Each change pushes the expiry back.
        await self.remind("expire", Cart.expire, ledger, due=self.expire_after)
        return list(self.cart.value.items)

    @handler
    async def checkout(self) -> list[str]:
        items = list(self.cart.value.items)
        await self.forget_reminder("expire")
        await self.cart.clear()
        return items

    @handler
    async def expire(self, ledger: Ref[Ledger]) -> None:
        # self.key: the user this cart belongs to (its on-demand key).
        ledger.tell(Ledger.expired_cart, str(self.key), len(self.cart.value.items))
        await self.cart.clear()


CATALOGUE = ["book", "pen", "tea", "lamp", "mug"]
ACTIVATIONS = 0  # carts activated in this process (an activation builds a Cart)


async def main(users: int, expire_after: float, store: StateStore) -> None:
    Cart.expire_after = expire_after
    Cart.collect_after = expire_after / 4  # collected well before they expire
    buyers = [u for u in range(users) if u % 3 == 0]
    abandoned = users - len(buyers)
    async with open_system(state_store=store) as system:
        done = trio.Event()
        ledger = await system.spawn(Ledger, abandoned, done)
        started = trio.current_time()
        for u in range(users):
            cart = system.get(Cart, f"user-{u}")
            for i in range(1 + u % 3):
                await cart.ask(Cart.add, CATALOGUE[(u + i) % len(CATALOGUE)], ledger)
        for u in buyers:
            items = await system.get(Cart, f"user-{u}").ask(Cart.checkout)
            print(f"user-{u}: checked out {items}")
        print(f"carts: {users} users, {len(buyers)} checked out, {abandoned} abandoned")
        if abandoned:
            await done.wait()
        waited = trio.current_time() - started
        for user, count in await ledger.ask(Ledger.report):
            print(f"{user}: abandoned cart of {count} items expired")
        print(
            f"all {abandoned} abandoned carts expired after {waited:.1f} s "
            f"(expiry {expire_after} s)"
        )
        print(
            f"carts activated {ACTIVATIONS} times for {users} users: idle carts were "
            "collected, and the expiry reminders activated them again"
        )


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=12, help="how many users (default 12)")
    parser.add_argument(
        "--expire-after",
        type=float,
        default=2.0,
        help="seconds after its last change that an abandoned cart expires (default 2)",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="sqlite:///path or redis://host:port/db (default: a temporary SQLite file)",
    )
    args = parser.parse_args(argv)
    if args.users < 0 or args.expire_after <= 0:
        parser.error("--users must be >= 0 and --expire-after > 0")
    if args.store is not None:
        try:
            args.store = store_from_url(args.store)
        except ValueError as exc:
            parser.error(str(exc))
    return args


if __name__ == "__main__":
    args = _parse(sys.argv[1:])
    with tempfile.TemporaryDirectory() as scratch:
        chosen: StateStore = args.store or SQLiteStore(Path(scratch) / "carts.sqlite3")
        trio.run(main, args.users, args.expire_after, chosen)
