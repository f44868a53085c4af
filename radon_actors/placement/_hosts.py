"""Starting and joining hosts.

* :func:`start_host` runs ``python -m radon_actors._worker`` as a
  child process. The cluster secret goes to it on stdin (never on the command
  line), it listens on loopback only, and it exits when its stdin closes, so a
  worker never outlives the process that started it.
* :func:`connect_host` dials a host started with ``radon host`` on any machine.

(The other side, the body of a host process, is ``_serve``.)
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from typing import TYPE_CHECKING

import trio

from .._logs import get_logger, level_for_workers
from ._errors import NoSuchHost
from ._transport import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["connect_host", "read_secret", "start_host"]

_log = get_logger("radon_actors.placement")
STARTUP_TIMEOUT = 30.0


def _check_name(node: Node, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a host name must be a non-empty str, not {name!r}")
    if name in node.names:
        raise ValueError(f"a host named {name!r} already exists in this system")


async def start_host(
    node: Node,
    name: str,
    *,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
) -> str:
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
            # The worker logs the library's events at this process's level (None: quiet).
            "log_level": level_for_workers(),
            # Durable atoms placed there save to this system's store, and this
            # process is the directory of its on-demand atoms.
            "state_store": node.system.state_store_url(),
            "directory": node.system.prefix,
            # The CAs this node checks TLS hosts against, so that the worker can
            # dial them too (None: the platform's, which the worker has anyway).
            "tls_ca": _ca_pem(node.ssl_client),
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
    node: Node,
    address: str,
    *,
    secret: bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    name: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
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
    if ssl_context is not None and node.ssl_client is None:
        # The hosts this one tells us of are checked as it was.
        node.ssl_client = ssl_context
    if name is not None and name != peer.name:
        _check_name(node, name)
        peer.name = name
    node.names[peer.name] = peer.node_id
    node.announce()
    _log.info("placement.host_connected", host=peer.name, address=address)
    return peer.name


def _ca_pem(context: ssl.SSLContext | None) -> str | None:
    """The CA certificates loaded into ``context``, as PEM (None: none, or no
    context; a context's other settings, such as a client certificate, are
    not carried)."""
    if context is None:
        return None
    certs = context.get_ca_certs(binary_form=True)
    return "".join(ssl.DER_cert_to_PEM_cert(der) for der in certs) or None


def read_secret(path: str | os.PathLike[str]) -> bytes:
    """The cluster secret in ``path``; refused (``ValueError``) if the file can be
    read or written by anyone but its owner, as ssh refuses such keys, or if the
    secret is shorter than 16 bytes."""
    with open(path, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if os.name == "posix" and mode & 0o077:
            raise ValueError(
                f"the cluster secret file {os.fspath(path)!r} is open to group or others "
                f"(mode {mode & 0o777:04o}); anyone who reads it can join the cluster: "
                f"run chmod 600 {os.fspath(path)}"
            )
        secret = f.read().strip()
    if len(secret) < 16:
        raise ValueError(f"the cluster secret in {os.fspath(path)!r} is shorter than 16 bytes")
    return secret
