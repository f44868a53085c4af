"""``python bench/latency.py``: the latency suite from the repository's command line.

The suite itself ships with the package (:mod:`radon_actors.bench._suite`,
``radon bench --suite`` wherever radon-actors is installed); this is the
repository's old command line for it, with the same options. The library
prints nothing: the terminal output is this script's.
"""

from __future__ import annotations

import argparse
import json
import sys

from radon_actors.bench._suite import configure_logging, format_table, run_suite, smoke_sizes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=20_000, help="round trips per run")
    parser.add_argument("--messages", type=int, default=200_000, help="messages per throughput run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer frameworks")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.messages, args.repeat = smoke_sizes()
    configure_logging()
    result = run_suite(
        args.iterations,
        args.messages,
        args.repeat,
        peers=[] if args.no_peers else None,
        progress=lambda s: print(f"... {s}", file=sys.stderr, flush=True),
    )
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
