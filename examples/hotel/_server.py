"""Run the hotel application: the services where ``mode`` says, and the HTTP
frontend in this process."""

from __future__ import annotations

from collections.abc import Sequence

import trio

from radon_actors import System

from ._http import MAX_CONNECTIONS, HotelHTTP
from ._services import spawn_frontends


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as host and port."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"a bind address is host:port, for example 127.0.0.1:5000, not {bind!r}")
    return host.strip("[]"), int(port)


async def serve_hotel(
    system: System,
    *,
    mode: str = "local",
    hosts: Sequence[str] = (),
    bind: str = "127.0.0.1:5000",
    frontends: int = 8,
    timeout: float = 10.0,
    max_connections: int = MAX_CONNECTIONS,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Spawn the services (:func:`~examples.hotel.spawn_frontends`) and serve
    HTTP on ``bind`` (``host:port``; port 0 picks a free one) until cancelled.
    ``task_status.started`` gets the URL it serves on."""
    host, port = parse_bind(bind)
    refs = await spawn_frontends(system, frontends, mode=mode, hosts=hosts)
    server = HotelHTTP(refs, timeout=timeout, max_connections=max_connections)
    listeners = await trio.open_tcp_listeners(port, host=host)
    address = listeners[0].socket.getsockname()
    shown = f"[{address[0]}]" if ":" in address[0] else address[0]
    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, server.handle, listeners)
        task_status.started(f"http://{shown}:{address[1]}")
