"""Opening a connection: TLS (optional), the HMAC handshake, then hellos.

Both ways the first frame is a :class:`Hello` (node id, name, address, Python),
sent only once the cluster-secret handshake (``_wire``) has passed, so nothing
from an unauthenticated peer is ever unpickled. After the hellos the connection
belongs to the transport (``_transport``): the side that dialled reads it in a
task of the node's nursery, the side that accepted in the listener's task.

Two hosts may dial each other at once: the first connection to attach becomes
the peer's, and a later one only carries the other side's frames (plus our hello
and heartbeats, so it is not taken for dead).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import trio

from .._logs import get_logger
from ._classes import PYTHON
from ._errors import AuthenticationFailed, ProtocolError
from ._frames import Hello
from ._transport import PING, Peer, read_frames
from ._wire import FrameReader, client_handshake, encode, server_handshake

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["accept", "dial"]

_log = get_logger("radon_actors.placement")

HELLO_TIMEOUT = 5.0
_new = tuple.__new__


def _hello(node: Node) -> bytes:
    return encode(Hello("hello", node.node_id, node.name, node.address, PYTHON))


async def _first_frames(stream: trio.abc.Stream, reader: FrameReader) -> list[tuple[Any, ...]]:
    """The first frames the peer sent (its hello first); [] if it closed."""
    frames: list[tuple[Any, ...]] = []
    with trio.fail_after(HELLO_TIMEOUT):
        while not frames:
            data = await stream.receive_some()
            if not data:
                return []
            frames = reader.feed(data)
    return frames


async def dial(node: Node, address: str, ssl_context: ssl.SSLContext | None = None) -> Peer:
    """Connect to the host at ``host:port``, authenticate, and exchange hellos."""
    host, _, port = address.rpartition(":")
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, int(port))
    reader = FrameReader()
    try:
        if ssl_context is not None:
            stream = trio.SSLStream(stream, ssl_context, server_hostname=host)
            with trio.fail_after(HELLO_TIMEOUT):
                await stream.do_handshake()
        await client_handshake(stream, node.secret)
        await stream.send_all(_hello(node))
        frames = await _first_frames(stream, reader)
        if not frames:
            raise AuthenticationFailed(
                f"host at {address} closed the connection during the handshake"
            )
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    try:
        hello = _check_hello(frames[0], address)
    except ProtocolError:
        await trio.aclose_forcefully(stream)
        raise
    peer = node.add_peer(
        hello.node_id,
        hello.name,
        hello.address or address,
        tls=ssl_context is not None,
        connected=True,
    )
    peer.python = hello.python
    peer.attach(stream)  # else the peer's own dial won: this one only reads
    node.nursery.start_soon(read_frames, peer, stream, reader, frames[1:], node.table)
    return peer


def _check_hello(frame: Any, remote: str) -> Hello:
    """The peer's hello, checked field by field: a malformed one (any shape, any
    types) is a :class:`ProtocolError` for that connection, nothing more."""
    if not (isinstance(frame, tuple) and len(frame) == len(Hello._fields)):
        raise ProtocolError(f"{remote} sent {type(frame).__name__} where a hello was due")
    kind, node_id, name, address, python = frame
    if kind != "hello":
        raise ProtocolError(f"{remote} sent {str(kind)[:40]!r} where a hello was due")
    if not (
        isinstance(node_id, str)
        and isinstance(name, str)
        and (address is None or isinstance(address, str))
        and isinstance(python, str)
        and 0 < len(node_id) <= 200
        and 0 < len(name) <= 200
    ):
        raise ProtocolError(f"{remote} sent a hello with malformed fields")
    return _new(Hello, frame)


MAX_HANDSHAKES = 128
"""Connections a host lets sit in their handshake at once (5 s at most each)."""
MAX_HANDSHAKES_PER_ADDRESS = 16
"""The same, from one remote address: one source cannot take every slot."""


async def accept(node: Node, stream: trio.abc.Stream) -> None:
    """Serve one incoming connection (the listener's handler).

    Nothing a peer sends may end the host: whatever goes wrong on this
    connection (before or after authentication) closes it, with a log line
    naming the peer, and the listener carries on serving the others. A flood
    of connections that never authenticate is closed at once past
    :data:`MAX_HANDSHAKES` (:data:`MAX_HANDSHAKES_PER_ADDRESS` from one address),
    so it cannot exhaust the host's file descriptors or starve real peers."""
    remote = _remote_label(stream)
    source = remote.rpartition(":")[0]
    pending = node.handshaking
    if (
        sum(pending.values()) >= MAX_HANDSHAKES
        or pending.get(source, 0) >= MAX_HANDSHAKES_PER_ADDRESS
    ):
        node.refused_handshakes += 1
        if node.refused_handshakes % 1000 == 1:  # a flood is logged, not echoed
            _log.warning(
                "placement.handshake_limit",
                remote=remote,
                refused=node.refused_handshakes,
                pending=sum(pending.values()),
            )
        await trio.aclose_forcefully(stream)
        return
    try:
        await _accept(node, stream, remote, source)
    except Exception as exc:
        _log.error("placement.connection_failed", remote=remote, error=repr(exc))
        await trio.aclose_forcefully(stream)


async def _accept(node: Node, stream: trio.abc.Stream, remote: str, source: str) -> None:
    pending = node.handshaking
    pending[source] = pending.get(source, 0) + 1
    try:
        if node.ssl_server is not None:
            stream = trio.SSLStream(stream, node.ssl_server, server_side=True)
            with trio.fail_after(HELLO_TIMEOUT):
                await stream.do_handshake()
        await server_handshake(stream, node.secret)
    except (AuthenticationFailed, ProtocolError, trio.TooSlowError) as exc:
        _refused(node, remote, str(exc))
        await trio.aclose_forcefully(stream)
        return
    except (trio.BrokenResourceError, OSError) as exc:
        _refused(node, remote, repr(exc))
        await trio.aclose_forcefully(stream)
        return
    finally:
        left = pending[source] - 1
        if left:
            pending[source] = left
        else:
            del pending[source]
    _log.info("placement.peer_authenticated", remote=remote)
    reader = FrameReader()
    try:
        frames = await _first_frames(stream, reader)
    except (trio.TooSlowError, trio.BrokenResourceError, OSError, ProtocolError) as exc:
        _log.warning("placement.bad_hello", remote=remote, reason=repr(exc))
        await trio.aclose_forcefully(stream)
        return
    if not frames:
        return
    try:
        hello = _check_hello(frames[0], remote)
    except ProtocolError as exc:
        _log.warning("placement.bad_hello", remote=remote, reason=str(exc))
        await trio.aclose_forcefully(stream)
        return
    peer = node.add_peer(hello.node_id, hello.name, hello.address, connected=True)
    peer.python = hello.python
    if not peer.attach(stream, first=_hello(node)):
        node.nursery.start_soon(_idle_writer, node, stream, _hello(node))
    # The listener closes the stream when this returns: read it here.
    await read_frames(peer, stream, reader, frames[1:], node.table)


def _refused(node: Node, remote: str, reason: str) -> None:
    """Log a refused handshake: each of the first ten, then one in a thousand
    with the count, so that a flood from the network does not flood the log."""
    node.refused_auth += 1
    n = node.refused_auth
    if n <= 10 or n % 1000 == 0:
        _log.warning("placement.auth_refused", remote=remote, reason=reason, refused=n)


async def _idle_writer(node: Node, stream: trio.abc.Stream, first: bytes) -> None:
    """The writer of a second connection to a peer (both sides dialled): our
    hello, then heartbeats."""
    try:
        await stream.send_all(first)
        while True:
            await trio.sleep(node.heartbeat_interval)
            await stream.send_all(PING)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        return


def _remote_label(stream: Any) -> str:
    try:
        addr = stream.socket.getpeername()
        return f"{addr[0]}:{addr[1]}"
    except Exception:
        return "?"
