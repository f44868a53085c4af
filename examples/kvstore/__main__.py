"""Run the store: ``python -m examples.kvstore --port 6380 --shards 8 --replicas 2``.

The deployment is a command-line choice: everything in this process (default),
``--hosts N`` (the shards on N worker host processes), or ``--sandbox`` (the
shards sandboxed in WebAssembly). ``--data-dir DIR`` journals every write in DIR
and reads it back at start, in any deployment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import structlog
import trio

from radon_actors import SQLiteStore, open_system

from . import deployment, open_store, serve


async def _main(args: argparse.Namespace) -> None:
    journal = None
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        journal = SQLiteStore(args.data_dir / "kvstore.sqlite3")
    try:
        async with open_system() as system:
            # The deployment is the only difference: where the shards' replicas run.
            hosts = [await system.start_host(f"w{i + 1}") for i in range(args.hosts)]
            options = deployment(hosts or None, sandbox=args.sandbox)
            async with open_store(
                system,
                shards=args.shards,
                replicas=args.replicas,
                coordinators=args.coordinators,
                spawn_options=options,
                journal=journal,
            ) as store:
                await serve(store, args.host, args.port)
    finally:
        if journal is not None:
            with trio.CancelScope(shield=True):
                await journal.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.kvstore", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6380)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--coordinators", type=int, default=4)
    parser.add_argument("--hosts", type=int, default=0, help="run the shards on N worker hosts")
    parser.add_argument("--sandbox", action="store_true", help="run the shards sandboxed")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="journal every write in DIR/kvstore.sqlite3 and read it back at start "
        "(as Redis's appendonly file); default: memory only",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if args.hosts < 0:
        parser.error("--hosts must be 0 (everything in this process) or more")
    if args.hosts and args.sandbox:
        parser.error("--hosts and --sandbox cannot be combined yet; pick one")
    for flag in ("shards", "replicas", "coordinators"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.shards > 255:
        parser.error("--shards must be at most 255 (a SCAN cursor holds the shard in 8 bits)")
    level = getattr(logging, args.log_level.upper())
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))
    try:
        trio.run(_main, args)
    except* KeyboardInterrupt:
        # Ctrl-C: the store closed on the way out; exit as an interrupted program does.
        sys.exit(130)


if __name__ == "__main__":
    main()
