"""Move a busy atom between this process and two worker processes, live.

A producer streams numbered messages to a ``Tally`` atom as fast as it can,
while the main task moves the atom around every half second. Each line shows
which host the atom is on, how many messages it handled per second there,
and that none was lost or reordered so far.

    python examples/live_migration.py [--moves 12] [--sandbox]

With ``--sandbox`` the atom runs in WebAssembly: its component is built here
(about 10-60 s the first time, with progress on stderr; cached after), and each
move carries the guest's snapshot of its state. The worker hosts load the
component already compiled from this machine's cache; a host on another
machine would receive it once and compile it there (seconds, cached too).

The atom class lives at the top of this module, which imports only the standard
library and ``radon_actors`` (so the sandbox can package it); the demo, which
needs trio, is in ``main``, run from this file imported under its module name.
"""

from __future__ import annotations

from radon_actors import Atom, handler


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
    def status(self) -> tuple[int, int]:
        return self.expected, self.out_of_order


def _progress(message: str) -> None:
    import sys

    print(f"... {message}", file=sys.stderr, flush=True)


async def main(moves: int, sandbox: bool = False) -> None:
    import trio

    from radon_actors import open_system, prebuild

    if sandbox:
        # The first run on a machine builds the component (10-60 s): show it.
        # Built here, it is found by the worker hosts in this machine's cache.
        await prebuild(Tally, progress=_progress)
    async with open_system() as system:
        hosts = ["local", await system.start_host("w1"), await system.start_host("w2")]
        t0 = trio.current_time()
        tally = await system.spawn(Tally, sandbox=sandbox)
        kind = "sandboxed" if sandbox else "native"
        print(f"spawned a {kind} Tally in {trio.current_time() - t0:.3f} s")
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
            where = "local"
            for move in range(moves):
                # The rate over half a second where the atom is: counted from
                # here, not from before the last move (what queued during a move
                # is handled right after it, and would inflate the rate).
                handled, _ = await tally.ask(Tally.status)
                t0 = trio.current_time()
                await trio.sleep(0.5)
                now, bad = await tally.ask(Tally.status)
                rate = (now - handled) / (trio.current_time() - t0)
                print(f"{where:>6}: {rate:9,.0f} msgs/s, {now:8,} handled, {bad} out of order")
                where = hosts[(move + 1) % len(hosts)]
                t1 = trio.current_time()
                await system.migrate(tally, to=where)
                print(f"  moved to {where} in {(trio.current_time() - t1) * 1000:.1f} ms")
            done.set()
        total, bad = await tally.ask(Tally.status)
        print(f"done: {total:,} messages, {bad} out of order, across {moves} migrations")


if __name__ == "__main__":
    import argparse
    import logging
    import os
    import sys

    import structlog
    import trio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=12)
    parser.add_argument("--sandbox", action="store_true", help="run the atom in WebAssembly")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import live_migration  # this file again, as a module hosts (and the sandbox) can import

    try:
        trio.run(live_migration.main, args.moves, args.sandbox)
    except* KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: the system stopped its atoms on the way out
