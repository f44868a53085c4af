"""DeathStarBench's hotel reservation on atoms: serve it over HTTP, and load it.

    python -m examples.hotel serve [--mode local|hosts|sandboxed] [--hosts 2]
        [--bind 127.0.0.1:5000] [--data-dir DIR]
    python -m examples.hotel load --url http://127.0.0.1:5000 --rate 1000
        [--duration 10] [--warmup 2] [--connections 64] [--seed 1] [--json]

``serve`` runs the services where ``--mode`` says (this process; ``--hosts``
worker host processes; the WebAssembly sandbox) and the HTTP frontend in this
process, with the original's routes: ``/hotels``, ``/recommendations``,
``/user``, ``/reservation``. Bookings are durable: in ``--data-dir`` when
given (kept across runs), else in a temporary directory removed at exit.

``load`` sends the original's mixed workload (search 60%, recommend 39%, login
0.5%, reserve 0.5%) at a fixed rate and reports latency from each request's
intended send time (open loop, as wrk2). See examples/hotel/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import trio

from radon_actors import SQLiteStore, open_system

from ._load import LoadError, run_load
from ._services import MODES

FRONTENDS = 8
"""Frontend atoms (and search and reservation atoms) serving requests at once."""


async def _serve(args: argparse.Namespace) -> None:
    from ._server import serve_hotel  # needs httptools (checked in main)

    with tempfile.TemporaryDirectory(prefix="hotel-") as scratch:
        data_dir = args.data_dir if args.data_dir is not None else Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        store = SQLiteStore(data_dir / "hotel.sqlite3")
        async with open_system(state_store=store) as system:
            hosts = []
            if args.mode == "hosts":
                hosts = [await system.start_host(f"w{i + 1}") for i in range(args.hosts)]
            async with trio.open_nursery() as nursery:
                url = await nursery.start(
                    lambda task_status: serve_hotel(
                        system,
                        mode=args.mode,
                        hosts=hosts,
                        bind=args.bind,
                        frontends=FRONTENDS,
                        task_status=task_status,
                    )
                )
                where = {
                    "local": "in this process",
                    "hosts": f"on {len(hosts)} worker hosts ({', '.join(hosts)})",
                    "sandboxed": "sandboxed in WebAssembly",
                }[args.mode]
                print(f"hotel: serving {url} (services {where})", flush=True)


def _load(args: argparse.Namespace) -> int:
    try:
        result = trio.run(
            lambda: run_load(
                args.url,
                rate=args.rate,
                duration=args.duration,
                warmup=args.warmup,
                connections=args.connections,
                seed=args.seed,
            )
        )
    except LoadError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_dict()))
        return 0
    lat = result.latency_ms
    print(
        f"offered {result.offered:,.0f} req/s, achieved {result.achieved:,.0f} req/s "
        f"({result.completed}/{result.sent} answered, {result.errors} errors)"
    )
    print(
        f"latency from intended send time: p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f} ms, "
        f"p99 {lat['p99']:.2f} ms, p99.9 {lat['p99.9']:.2f} ms, max {lat['max']:.2f} ms"
    )
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(result.by_kind.items()))
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))
    print(f"requests: {kinds}; statuses: {statuses}")
    print(f"load generator CPU: {100 * result.client_cpu:.0f}% of a core")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.hotel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the application over HTTP")
    serve.add_argument("--mode", choices=MODES, default="local", help="where the services run")
    serve.add_argument("--hosts", type=int, help="worker hosts in --mode hosts (2)")
    serve.add_argument(
        "--bind", default="127.0.0.1:5000", help="host:port to serve on (port 0: any free one)"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        help="keep the bookings in DIR/hotel.sqlite3 across runs (default: a temporary one)",
    )
    load = commands.add_parser("load", help="send the mixed workload at a fixed rate")
    load.add_argument("--url", default="http://127.0.0.1:5000", help="the frontend's URL")
    load.add_argument("--rate", type=float, required=True, help="requests per second offered")
    load.add_argument("--duration", type=float, default=10.0, help="seconds measured (10)")
    load.add_argument(
        "--warmup", type=float, default=2.0, help="seconds sent first, not measured (2)"
    )
    load.add_argument("--connections", type=int, default=64, help="HTTP connections (64)")
    load.add_argument("--seed", type=int, default=1, help="seed of the request sequence (1)")
    load.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    if args.command == "serve":
        if args.hosts is not None and args.mode != "hosts":
            parser.error(f"--hosts is for --mode hosts; --mode {args.mode} starts no worker hosts")
        if args.hosts is None:
            args.hosts = 2
        if args.hosts < 1:
            parser.error("--hosts takes a positive number")
        try:
            import httptools  # noqa: F401
        except ImportError:
            print(
                "serve: the hotel's HTTP server parses with httptools, which is not "
                "installed: pip install -e '.[examples]' (or pip install httptools)",
                file=sys.stderr,
            )
            return 1
        interrupted = False
        try:
            trio.run(_serve, args)
        except* KeyboardInterrupt:
            interrupted = True  # Ctrl-C: the system stopped on the way out
        return 130 if interrupted else 0
    for name in ("rate", "duration", "connections"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} takes a positive number")
    if args.warmup < 0:
        parser.error("--warmup takes a number of seconds, 0 or more")
    url = urlsplit(args.url)
    if url.scheme != "http" or not url.hostname:
        parser.error(
            f"--url takes an http:// URL, for example http://127.0.0.1:5000, not {args.url!r}"
        )
    return _load(args)


if __name__ == "__main__":
    sys.exit(main())
