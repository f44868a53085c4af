"""The body of a host process: a worker, or ``radon host``.

A host opens its own system, makes its node before any atom is placed (its
name, secret and heartbeat settings come from whoever started it), listens, and
runs until a ``shutdown`` frame arrives from the process that started it, or,
for a worker, until its stdin closes (its parent is gone).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from .._logs import get_logger
from ._node import Node
from ._transport import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT

if TYPE_CHECKING:
    from ..runtime import System

__all__ = ["SystemOpener", "serve_host"]

_log = get_logger("radon_actors.placement")

SystemOpener = Callable[[], AbstractAsyncContextManager["System"]]
"""How a host process opens its system: ``radon_actors.open_system`` (the entry
points pass it in, since this layer cannot import the composition above it)."""


async def serve_host(
    open_system: SystemOpener,
    host: str,
    port: int,
    secret: bytes,
    name: str,
    *,
    ready: Callable[[str], None],
    watch_stdin: bool = False,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    ssl_client: ssl.SSLContext | None = None,
    advertise: str | None = None,
    stop: trio.Event | None = None,
) -> None:
    """Run a host, in a system from ``open_system()``, until a ``shutdown`` frame
    arrives (or stdin closes).

    With ``ssl_context`` (a server context) every connection is TLS.
    ``ssl_client`` checks the TLS hosts this one dials on its own (other hosts
    of the systems that join it; default: the platform's trusted CAs).
    ``advertise`` is the address others reach this host at, ``host`` or
    ``host:port`` (default: the listening address; a listener on ``0.0.0.0``
    needs one). ``ready`` is given the advertised address. ``stop``, once
    set, stops the host as a ``shutdown`` frame would (``radon host`` sets it
    on SIGINT or SIGTERM).
    """
    async with open_system() as system:
        node = Node(
            system,
            secret,
            name=name,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
        )
        system.install_placement(node)
        node.ssl_server = ssl_context
        node.ssl_client = ssl_client
        node.obeys_shutdown = watch_stdin  # a worker host, whose parent stops it
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound: Any = listeners[0].socket.getsockname()
        node.address = advertised(advertise or host, bound[1])
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.serve_listeners, node.handle_stream, listeners))
            if watch_stdin:
                nursery.start_soon(_until_stdin_closes, node)
            if stop is not None:
                nursery.start_soon(_until_set, stop, node)
            ready(node.address)
            _log.info("placement.host_listening", host=name, address=node.address)
            await node.shutdown_requested.wait()
            nursery.cancel_scope.cancel()


def advertised(address: str, port: int) -> str:
    """``address`` as ``host:port``: given as ``host`` (a bare IPv6 address is a
    host), with the bound ``port``. Raises ``ValueError`` for what is neither
    (empty, spaces, a port that is not a number)."""
    if not address.strip(":") or any(c.isspace() for c in address):
        raise ValueError(f"not a host or host:port: {address!r}")
    if address.startswith("[") and "]:" in address:
        return address
    if address.count(":") == 1:
        if not address.rpartition(":")[2].isdigit():
            raise ValueError(f"the port of {address!r} is not a number")
        return address
    return f"{address}:{port}"


async def _until_set(stop: trio.Event, node: Node) -> None:
    await stop.wait()
    node.shutdown_requested.set()


async def _until_stdin_closes(node: Node) -> None:
    stream = trio.lowlevel.FdStream(os.dup(0))
    try:
        while await stream.receive_some():
            pass
    finally:
        node.shutdown_requested.set()
        await stream.aclose()
