"""Move a busy atom between this process and two worker processes, live.

A producer streams numbered messages to a ``Tally`` atom as fast as it can,
while the main task moves the atom around every half second. Each line shows
which process the atom is in, how many messages it handled per second there,
and that none was lost or reordered so far.

    python examples/live_migration.py [--moves 12]
"""

from __future__ import annotations

import argparse
import logging
import os

import structlog
import trio

from radon_actors import Atom, handler, open_system


class Tally(Atom):
    """Counts messages and checks they arrive in order, wherever it runs."""

    def __init__(self) -> None:
        self.expected = 0
        self.out_of_order = 0

    @handler
    def item(self, i: int) -> None:
        if i != self.expected:
            self.out_of_order += 1
        self.expected = i + 1

    @handler
    def status(self) -> tuple[int, int, int]:
        return self.expected, self.out_of_order, os.getpid()


async def main(moves: int) -> None:
    async with open_system() as system:
        hosts = ["local", await system.start_host("w1"), await system.start_host("w2")]
        tally = await system.spawn(Tally)
        done = trio.Event()

        async def produce() -> None:
            i = 0
            while not done.is_set():
                await tally.send(Tally.item, i)
                i += 1
                if i % 500 == 0:  # flow control: stay at most ~500 messages ahead
                    await tally.ask(Tally.status)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            handled, _, _ = await tally.ask(Tally.status)
            for move in range(moves):
                t0 = trio.current_time()
                await trio.sleep(0.5)
                now, bad, pid = await tally.ask(Tally.status)
                rate = (now - handled) / (trio.current_time() - t0)
                where = "this process" if pid == os.getpid() else f"pid {pid}"
                print(f"{where:>14}: {rate:9,.0f} msgs/s, {now:8,} handled, {bad} out of order")
                handled = now
                target = hosts[(move + 1) % len(hosts)]
                t1 = trio.current_time()
                await system.migrate(tally, to=target)
                print(f"  moved to {target} in {(trio.current_time() - t1) * 1000:.1f} ms")
            done.set()
        total, bad, _ = await tally.ask(Tally.status)
        print(f"done: {total:,} messages, {bad} out of order, across {moves} migrations")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    trio.run(main, args.moves)
