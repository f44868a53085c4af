"""``radon host``: run a host that other systems join with ``System.connect_host``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence

import structlog
import trio

from ._hosts import read_secret
from ._serve import SystemOpener, advertised, serve_host

__all__ = [
    "add_parser",
    "add_process_options",
    "add_tls_options",
    "is_loopback",
    "main",
    "set_up_process",
    "tls_contexts",
    "until_signalled",
]


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default="127.0.0.1:7700",
        help="address to listen on, host:port (default 127.0.0.1:7700; port 0 picks one)",
    )
    parser.add_argument(
        "--secret-file",
        required=True,
        help="file holding the cluster secret (at least 16 bytes), shared by every host",
    )
    parser.add_argument("--name", default=None, help="host name (default: host-<port>)")
    add_tls_options(parser, "hosts")
    parser.add_argument(
        "--advertise",
        default=None,
        metavar="HOST[:PORT]",
        help="the address systems and other hosts reach this host at (default: the "
        "--listen address; needed when listening on 0.0.0.0); the port defaults to the "
        "listening one",
    )
    add_process_options(
        parser,
        insecure="allow listening on a non-loopback address without TLS (frames after the "
        "handshake are then not protected; logged as a warning)",
    )


def add_tls_options(parser: argparse.ArgumentParser, others: str) -> None:
    """``--tls-cert``, ``--tls-key`` and ``--tls-ca`` (how this process checks
    the ``others`` it dials); :func:`tls_contexts` loads them."""
    parser.add_argument("--tls-cert", default=None, help="serve TLS with this certificate (PEM)")
    parser.add_argument("--tls-key", default=None, help="private key of --tls-cert (PEM)")
    parser.add_argument(
        "--tls-ca",
        default=None,
        metavar="PEM",
        help=f"CA certificates that other {others}' TLS certificates are checked against "
        "when this process connects to them (default: the platform's trusted CAs)",
    )


def tls_contexts(args: argparse.Namespace) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """The server and client contexts :func:`add_tls_options` asked for (None:
    not asked); ``ValueError`` with what went wrong if a file cannot be loaded."""
    server = client = None
    if args.tls_cert:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            server.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load the TLS certificate: {exc}") from exc
    if args.tls_ca:
        try:
            client = ssl.create_default_context(cafile=args.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot load --tls-ca {args.tls_ca}: {exc}") from exc
    return server, client


def add_process_options(parser: argparse.ArgumentParser, *, insecure: str) -> None:
    """The options every process that serves atoms takes (``radon host``,
    ``radon member``): ``--insecure`` (described by ``insecure``),
    ``--log-level`` and ``--path``."""
    parser.add_argument("--insecure", action="store_true", help=insecure)
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to put in front of sys.path, where the atoms' modules are "
        "imported from (repeatable; the current directory is searched too)",
    )


def set_up_process(args: argparse.Namespace) -> None:
    """What :func:`add_process_options` asked for: atom classes arrive by module
    name, so ``--path`` (and the working directory) go on ``sys.path``; logs go
    to stderr at ``--log-level``."""
    sys.path[:0] = [os.path.abspath(p) for p in args.path]
    if "" not in sys.path:
        sys.path.insert(0, "")
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, args.log_level.upper())
        ),
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (a name other than ``localhost``
    may resolve to anything: not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def run(args: argparse.Namespace, open_system: SystemOpener) -> int:
    """Run ``radon host`` with parsed ``args``; ``open_system`` opens the host's system."""
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        print(f"radon host: --listen must be host:port, not {args.listen!r}", file=sys.stderr)
        return 2
    try:
        secret = read_secret(args.secret_file)
    except (OSError, ValueError) as exc:
        print(f"radon host: cannot read the secret file: {exc}", file=sys.stderr)
        return 2
    set_up_process(args)
    exposed = not is_loopback(host) and not args.tls_cert
    if exposed and not args.insecure:
        print(
            f"radon host: refusing to listen on {host} without TLS: after the handshake, "
            "frames are not authenticated, so anyone on the network path could inject "
            "messages; give --tls-cert and --tls-key, listen on a loopback address, or "
            "pass --insecure to accept the risk",
            file=sys.stderr,
        )
        return 2
    if exposed:
        structlog.get_logger("radon_actors.placement").warning(
            "placement.insecure_listen",
            address=args.listen,
            risk="frames after the handshake are not authenticated (--insecure)",
        )
    name = args.name
    try:
        context, client = tls_contexts(args)
    except ValueError as exc:
        print(f"radon host: {exc}", file=sys.stderr)
        return 2
    if args.advertise is not None:
        try:
            advertised(args.advertise, 0)  # checked here, used by serve_host
        except ValueError:
            print(f"radon host: --advertise must be host or host:port, not {args.advertise!r}",
                  file=sys.stderr)  # fmt: skip
            return 2

    def ready(address: str) -> None:
        print(f"READY {address}", flush=True)

    async def serve(stop: trio.Event) -> None:
        await serve_host(
            open_system,
            host,
            int(port),
            secret,
            name or f"host-{port}-{os.getpid()}",
            ready=ready,
            ssl_context=context,
            ssl_client=client,
            advertise=args.advertise,
            stop=stop,
        )

    trio.run(until_signalled, serve)
    return 0


async def until_signalled(work: Callable[[trio.Event], Awaitable[object]]) -> None:
    """Run ``work(stop)``; SIGINT or SIGTERM sets ``stop``, and ``work`` winds
    down (closes its system, as at the end of its block) and returns. A second
    signal cancels it.

    Signals are received as events rather than left to raise KeyboardInterrupt
    wherever the main task happens to be: one raised inside trio's own nursery
    exit once corrupted its task tree (a traceback on Ctrl-C, in CI). Nor does
    the first signal cancel: a system closed by cancellation loses the tasks
    its closing relies on (a cluster member's last store writes, say)."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        try:
            async with trio.open_nursery() as nursery:

                async def on_signals() -> None:
                    async for _ in signals:
                        if stop.is_set():  # asked twice: stop now
                            nursery.cancel_scope.cancel()
                            return
                        stop.set()

                nursery.start_soon(on_signals)
                await work(stop)
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:  # what ``work`` raised, as itself
                raise group.exceptions[0] from None
            raise


def main(open_system: SystemOpener, argv: Sequence[str] | None = None) -> int:
    """``radon host ...`` (``argv`` excludes the ``host`` subcommand itself)."""
    parser = argparse.ArgumentParser(prog="radon host", description=__doc__)
    add_parser(parser)
    return run(parser.parse_args(argv), open_system)
