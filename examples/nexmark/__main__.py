"""Nexmark queries as dataflows of atoms.

    python -m examples.nexmark --query 5 --events 20000 [--mode local|hosts|sandboxed]
        [--parallelism 2] [--hosts 2] [--batch 256] [--rate 10000] [--pregenerate]
        [--check] [--show 5]

Generates ``--events`` events with Beam's Nexmark generator (examples/nexmark/
_generator.py), runs the query over them in the deployment ``--mode`` says, and
prints how many results it produced and how fast. ``--check`` also runs the
single-threaded reference implementation over the same events and compares
the two as multisets (exit status 1 if they differ). See
examples/nexmark/README.md.
"""

from __future__ import annotations

import argparse
import collections
import sys

import trio

from radon_actors import open_system

from ._generator import NexmarkConfig, events
from ._oracle import QUERIES as ORACLE
from ._queries import PLANS
from ._run import MODES, run_query


async def main_async(args: argparse.Namespace) -> int:
    config = NexmarkConfig(first_event_rate=args.rate, next_event_rate=args.rate)
    pregenerated = list(events(config, args.events)) if args.pregenerate else None
    async with open_system() as system:
        hosts: list[str] = []
        if args.mode == "hosts":
            for i in range(args.hosts):
                name = f"w{i + 1}"
                await system.start_host(name)
                hosts.append(name)
        result = await run_query(
            system,
            args.query,
            config,
            args.events,
            mode=args.mode,
            parallelism=args.parallelism,
            batch=args.batch,
            hosts=hosts,
            keep=args.check or args.show > 0,
            pregenerated=pregenerated,
        )
    print(
        f"query {args.query} ({PLANS[args.query].title}), {args.mode}: {args.events} events -> "
        f"{result.count} results in {result.seconds:.2f} s "
        f"({result.events_per_second:,.0f} events/s)"
    )
    for item in result.results[: args.show]:
        print(f"  {item}")
    if not args.check:
        return 0
    expected = ORACLE[args.query](list(events(config, args.events)), config)
    got = collections.Counter(map(repr, result.results))
    want = collections.Counter(map(repr, expected))
    if got == want:
        print(f"check: the {len(expected)} results equal the reference implementation's")
        return 0
    missing = want - got
    extra = got - want
    print(
        f"check FAILED: {sum(missing.values())} results missing, {sum(extra.values())} unexpected",
        file=sys.stderr,
    )
    for label, diff in (("missing", missing), ("unexpected", extra)):
        for item, n in list(diff.items())[:5]:
            print(f"  {label}: {item} (x{n})", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.nexmark", description=__doc__)
    parser.add_argument("--query", type=int, required=True, choices=sorted(PLANS))
    parser.add_argument("--events", type=int, default=10_000, help="events to generate (10000)")
    parser.add_argument("--mode", choices=MODES, default="local", help="deployment (local)")
    parser.add_argument(
        "--parallelism", type=int, default=2, help="partitions of each keyed stage (2)"
    )
    parser.add_argument("--hosts", type=int, default=2, help="worker hosts in --mode hosts (2)")
    parser.add_argument("--batch", type=int, default=256, help="events per message (256)")
    parser.add_argument(
        "--rate",
        type=int,
        default=10_000,
        help="events per second of event time (10000, Beam's default): fewer span more windows",
    )
    parser.add_argument(
        "--pregenerate",
        action="store_true",
        help="generate the events before the run, so that it times the dataflow alone",
    )
    parser.add_argument("--check", action="store_true", help="compare with the reference")
    parser.add_argument("--show", type=int, default=0, help="print the first N results")
    args = parser.parse_args(argv)
    for name in ("events", "parallelism", "hosts", "batch", "rate"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} takes a positive number")
    return trio.run(main_async, args)


if __name__ == "__main__":
    sys.exit(main())
