"""``radon member``: run a member of a cluster, serving its on-demand atoms."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

import structlog
import trio

from ..durable import store_from_url
from ..placement import advertised, read_secret
from ._config import LEASE, Cluster

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractAsyncContextManager

    from ..durable import StateStore
    from ..runtime import System

    Opener = Callable[[StateStore, Cluster], AbstractAsyncContextManager[System]]

__all__ = ["add_parser", "run"]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, metavar="NAME", help="the cluster's name")
    parser.add_argument(
        "--secret-file",
        required=True,
        help="file holding the cluster's secret (at least 16 bytes), shared by every member",
    )
    parser.add_argument(
        "--state-store",
        required=True,
        metavar="URL",
        help="the store every member shares: redis://host:port/db, or sqlite:///path for "
        "members on one machine",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:0",
        help="where to listen for the other members, host:port (default 127.0.0.1:0, any "
        "free port)",
    )
    parser.add_argument(
        "--advertise",
        default=None,
        metavar="HOST[:PORT]",
        help="the address the other members reach this one at (default: the --listen "
        "address; needed when listening on 0.0.0.0)",
    )
    parser.add_argument("--name", default=None, help="this member's name in logs and errors")
    parser.add_argument(
        "--lease",
        type=float,
        default=LEASE,
        metavar="SECONDS",
        help=f"how long a membership lasts unrenewed, so how long the keys of a member that "
        f"died wait before another member takes them (default {LEASE:g}; give every member "
        "the same)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow listening on a non-loopback address (members talk without TLS: frames "
        "after the handshake are not protected; logged as a warning)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to put in front of sys.path, where the atoms' modules are imported "
        "from (repeatable; the current directory is searched too)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace, open_member: Opener) -> int:
    """Run ``radon member`` with parsed ``args`` until SIGINT or SIGTERM, then
    leave the cluster (its keys go to the other members at once)."""
    try:
        secret = read_secret(args.secret_file)
    except (OSError, ValueError) as exc:
        print(f"radon member: cannot read the secret file: {exc}", file=sys.stderr)
        return 2
    try:
        cluster = Cluster(
            args.cluster,
            secret,
            listen=args.listen,
            advertise=args.advertise,
            member=args.name,
            lease=args.lease,
        )
        if args.advertise is not None:
            advertised(args.advertise, 0)
        store = store_from_url(args.state_store)
    except ValueError as exc:
        print(f"radon member: {exc}", file=sys.stderr)
        return 2
    host = args.listen.rpartition(":")[0]
    if not _is_loopback(host) and not args.insecure:
        print(
            f"radon member: refusing to listen on {host}: members talk without TLS, so anyone "
            "on the network path could inject messages after the handshake; listen on a "
            "loopback address, or pass --insecure to accept the risk",
            file=sys.stderr,
        )
        return 2
    sys.path[:0] = [os.path.abspath(p) for p in args.path]
    if "" not in sys.path:
        sys.path.insert(0, "")
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, args.log_level.upper())
        ),
    )

    async def serve() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with open_member(store, cluster) as system:
                placement = system.active_placement
                print(f"READY {getattr(placement, 'address', '?')}", flush=True)
                async for _ in signals:
                    break

    try:
        trio.run(serve)
    except OSError as exc:  # the address is taken, say
        print(f"radon member: {exc}", file=sys.stderr)
        return 1
    return 0
