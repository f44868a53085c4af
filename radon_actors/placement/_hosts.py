"""Starting and joining hosts, and serving as one.

* :func:`start_host` runs ``python -m radon_actors._worker`` as a
  child process. The cluster secret goes to it on stdin (never on the command
  line), it listens on loopback only, and it exits when its stdin closes, so a
  worker never outlives the process that started it.
* :func:`connect_host` dials a host started with ``radon host`` on any machine.
* :func:`serve_host` is the body of a host process (a worker or ``radon host``).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
import trio

from . import _migration  # noqa: F401  (registers the migration requests)
from ._errors import NoSuchHost
from ._node import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Node, get_node

if TYPE_CHECKING:
    from ..runtime import System

__all__ = ["connect_host", "serve_host", "start_host"]

_log = structlog.get_logger("radon_actors.placement")
STARTUP_TIMEOUT = 30.0


def _check_name(node: Node, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a host name must be a non-empty str, not {name!r}")
    if name in node.names:
        raise ValueError(f"a host named {name!r} already exists in this system")


async def start_host(
    system: System,
    name: str,
    *,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
) -> str:
    node = get_node(system)
    _check_name(node, name)
    env = dict(os.environ)
    # The worker can import whatever this process can (atom classes by name).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "radon_actors._worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdin is not None
        assert proc.stdout is not None
        config = {
            "secret": node.secret.hex(),
            "name": name,
            "heartbeat_interval": heartbeat_interval,
            "heartbeat_timeout": heartbeat_timeout,
        }
        await proc.stdin.send_all(json.dumps(config).encode() + b"\n")
        line = b""
        with trio.fail_after(STARTUP_TIMEOUT):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise NoSuchHost(f"worker host {name!r} exited during startup (see its stderr)")
                line += chunk
        kind, _, address = line.decode().strip().partition(" ")
        if kind != "READY":
            raise NoSuchHost(f"worker host {name!r} failed to start: {line!r}")
        peer = await node.dial(address)
        peer.heartbeat_interval = heartbeat_interval
        peer.heartbeat_timeout = heartbeat_timeout
    except BaseException:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
        raise
    node.processes[peer.node_id] = proc
    node.names[name] = peer.node_id
    node.announce()
    node.nursery.start_soon(_watch_process, node, peer.node_id, proc)
    _log.info("placement.host_started", host=name, address=address, pid=proc.pid)
    return name


async def _watch_process(node: Node, node_id: str, proc: trio.Process) -> None:
    try:
        code = await proc.wait()
        peer = node.peers.get(node_id)
        if peer is not None:
            peer.mark_down(f"process exited with code {code}")
    finally:
        if proc.returncode is None:
            proc.kill()


async def connect_host(
    system: System,
    address: str,
    *,
    secret: bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    name: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    node = get_node(system)
    if secret_file is not None:
        secret = read_secret(secret_file)
    if secret is not None and secret != node.secret:
        if node.peers:
            raise ValueError(
                "every host of a system shares one cluster secret; connect hosts started "
                "with the same secret file (or connect them before starting workers)"
            )
        node.secret = secret
    peer = await node.dial(address, ssl_context=ssl_context)
    if name is not None and name != peer.name:
        _check_name(node, name)
        peer.name = name
    node.names[peer.name] = peer.node_id
    node.announce()
    _log.info("placement.host_connected", host=peer.name, address=address)
    return peer.name


def read_secret(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        secret = f.read().strip()
    if len(secret) < 16:
        raise ValueError(f"the cluster secret in {os.fspath(path)!r} is shorter than 16 bytes")
    return secret


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
) -> None:
    """Run a host, in a system from ``open_system()``, until a ``shutdown`` frame
    arrives (or stdin closes).

    With ``ssl_context`` (a server context) every connection is TLS.
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
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound: Any = listeners[0].socket.getsockname()
        node.address = f"{host}:{bound[1]}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.serve_listeners, node.handle_stream, listeners))
            if watch_stdin:
                nursery.start_soon(_until_stdin_closes, node)
            ready(node.address)
            _log.info("placement.host_listening", host=name, address=node.address)
            await node.shutdown_requested.wait()
            nursery.cancel_scope.cancel()


async def _until_stdin_closes(node: Node) -> None:
    stream = trio.lowlevel.FdStream(os.dup(0))
    try:
        while await stream.receive_some():
            pass
    finally:
        node.shutdown_requested.set()
        await stream.aclose()
