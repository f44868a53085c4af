"""Wire protocol and authentication: refused peers never reach pickle."""

from __future__ import annotations

import pickle
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import pytest
import structlog
import trio
import trio.testing

from radon_actors import AuthenticationFailed, HostDown, ProtocolError, open_system
from radon_actors.placement import _wire
from radon_actors.placement._node import Node
from radon_actors.runtime._system import System
from radon_actors.testing import node_of

SECRET = b"s" * 32
unpickled: list[str] = []


def _record(tag: str) -> str:
    unpickled.append(tag)
    return tag


class Evil:
    """A payload whose unpickling has a visible side effect."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record, ("pwned",))


def _evil_frame() -> bytes:
    data = pickle.dumps(("tell", "x.1", "h", Evil()))
    return len(data).to_bytes(4, "big") + data


@asynccontextmanager
async def serving(
    secret: bytes = SECRET, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[System, Node, str]]:
    async with open_system() as system:
        node = Node(system, secret, name="server")
        node.ssl_server = ssl_context
        system.install_placement(node)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        node.address = f"127.0.0.1:{port}"
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(trio.serve_listeners, node.handle_stream, listeners))
            yield system, node, node.address
            nursery.cancel_scope.cancel()


async def _connect(address: str) -> trio.SocketStream:
    host, _, port = address.rpartition(":")
    return await trio.open_tcp_stream(host, int(port))


async def _until_closed(stream: trio.SocketStream) -> bytes:
    received = b""
    with trio.fail_after(5):
        while True:
            try:
                data = await stream.receive_some()
            except trio.BrokenResourceError:
                return received
            if not data:
                return received
            received += data


async def test_no_handshake_is_refused_before_unpickling() -> None:
    unpickled.clear()
    async with serving() as (_, _, address):
        with structlog.testing.capture_logs() as logs:
            stream = await _connect(address)
            # A frame straight away, no handshake: the server must not unpickle it.
            await stream.send_all(_evil_frame() + b"\0" * 64)
            await _until_closed(stream)
            await stream.aclose()
        refused = [e for e in logs if e["event"] == "placement.auth_refused"]
    assert refused, logs
    assert "magic" in refused[0]["reason"]
    assert unpickled == []


async def test_wrong_secret_is_refused_before_unpickling() -> None:
    unpickled.clear()
    async with serving() as (_, _, address):
        with structlog.testing.capture_logs() as logs:
            stream = await _connect(address)
            await stream.send_all(_wire.MAGIC + _wire.VERSION.to_bytes(2, "big") + b"n" * 32)
            answer = await _wire._receive_exactly(stream, 10 + 32 + 32)
            assert answer[:8] == _wire.MAGIC
            # A proof made with the wrong secret, then a payload.
            server_nonce = answer[10:42]
            bad = _wire._mac(b"wrong" * 8, b"radon-client", server_nonce, b"n" * 32)
            await stream.send_all(bad + _evil_frame())
            await _until_closed(stream)
            await stream.aclose()
        refused = [e for e in logs if e["event"] == "placement.auth_refused"]
    assert refused
    assert "secret" in refused[0]["reason"]
    assert unpickled == []


async def test_version_mismatch_is_refused_with_a_clear_reason() -> None:
    async with serving() as (_, _, address):
        with structlog.testing.capture_logs() as logs:
            stream = await _connect(address)
            await stream.send_all(_wire.MAGIC + (99).to_bytes(2, "big") + b"n" * 32)
            await _until_closed(stream)
            await stream.aclose()
    refused = [e for e in logs if e["event"] == "placement.auth_refused"]
    assert refused
    assert "version 99" in refused[0]["reason"]


async def test_client_refuses_a_server_with_another_secret() -> None:
    async with serving() as (_, _, address), open_system() as client:
        node = Node(client, b"other-secret-0123456789", name="client")
        client.install_placement(node)
        with pytest.raises(AuthenticationFailed, match="secret"):
            await node.dial(address)


async def test_right_secret_connects_and_delivers() -> None:
    from placement_atoms import Counter

    async with serving() as (_server, _, address), open_system() as client:
        node = Node(client, SECRET, name="client")
        client.install_placement(node)
        peer = await node.dial(address)
        assert peer.name == "server"
        node.names["server"] = peer.node_id
        ref = await client.spawn(Counter, 3, host="server")
        assert await ref.ask(Counter.incr, 2) == 5
        assert await ref.ask(Counter.aincr) == 6


async def test_client_handshake_rejects_a_non_radon_server() -> None:
    async def fake(stream: trio.SocketStream) -> None:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\n" + b"x" * 80)
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, fake, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        with pytest.raises(ProtocolError, match="magic"):
            await _wire.client_handshake(stream, SECRET)
        await stream.aclose()
        nursery.cancel_scope.cancel()


def test_frames_split_and_batched() -> None:
    frames = [("tell", "a.1", "h", b"x" * n) for n in (0, 1, 1000, 70000)]
    data = b"".join(_wire.encode(f) for f in frames)
    reader = _wire.FrameReader()
    out = []
    for i in range(0, len(data), 333):
        out.extend(reader.feed(data[i : i + 333]))
    assert out == frames
    big = (_wire.MAX_FRAME + 1).to_bytes(4, "big")
    with pytest.raises(ProtocolError, match="exceeds"):
        _wire.FrameReader().feed(big)


async def test_tls_wraps_the_connection_and_plain_peers_are_refused() -> None:
    trustme = pytest.importorskip("trustme")
    from placement_atoms import Counter

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    async with serving(ssl_context=server_ctx) as (_server, _, address):
        async with open_system() as client:
            name = await client.connect_host(address, secret=SECRET, ssl_context=client_ctx)
            ref = await client.spawn(Counter, 1, host=name)
            assert await ref.ask(Counter.incr) == 2
            assert node_of(client).peer_by_name(name).fd == -1  # no raw writes under TLS
            # a local worker started afterwards is still reached over plain TCP
            await client.start_host("w1")
            try:
                worker_atom = await client.spawn(Counter, 5, host="w1")
                assert await worker_atom.ask(Counter.incr) == 6
            finally:
                node_of(client).processes[node_of(client).names["w1"]].kill()
        with structlog.testing.capture_logs() as logs:
            async with open_system() as plain:
                with pytest.raises(ProtocolError):
                    await plain.connect_host(address, secret=SECRET)
        assert any(e["event"] == "placement.auth_refused" for e in logs)


async def test_a_malformed_frame_drops_the_peer_not_the_system() -> None:
    async with serving() as (server, node, address):
        with structlog.testing.capture_logs() as logs:
            async with open_system() as client:
                cnode = Node(client, SECRET, name="client")
                client.install_placement(cnode)
                peer = await cnode.dial(address)
                peer.send(("tell",))  # authenticated but malformed
                with trio.fail_after(5), pytest.raises(HostDown):
                    # the server drops the connection, so this request fails
                    await cnode.request(peer, ("load",))
        assert any(e["event"] == "placement.bad_frame" for e in logs)
        # the server itself is still up: a fresh connection works
        async with open_system() as client:
            cnode = Node(client, SECRET, name="client")
            client.install_placement(cnode)
            assert (await cnode.dial(address)).name == "server"
        assert node_of(server) is node


async def test_an_unknown_request_is_answered_with_an_error_not_silence() -> None:
    async with serving() as (_server, _, address), open_system() as client:
        cnode = Node(client, SECRET, name="client")
        client.install_placement(cnode)
        peer = await cnode.dial(address)
        with trio.fail_after(5), pytest.raises(ProtocolError, match="does not know"):
            await cnode.request(peer, ("no-such-request", 1, 2))


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj)
    return len(data).to_bytes(4, "big") + data


@pytest.mark.parametrize(
    "first",
    [
        _frame(42),  # not a tuple
        _frame(()),
        _frame(("hello",)),  # too short
        _frame(("hello", ["not", "hashable"], "n", None, "3.11")),
        _frame(("hello", "id", 7, None, "3.11")),
        _frame(("hello", "id", "n", None, "3.11", "extra")),
        _frame(("ping",)),  # a frame, but not a hello
        (_wire.MAX_FRAME + 1).to_bytes(4, "big") + b"x" * 100,  # over the size limit
        b"\x00\x00\x00\x05nope!",  # not a pickle
    ],
    ids=[
        "int",
        "empty",
        "short",
        "list-id",
        "int-name",
        "long",
        "ping",
        "oversized",
        "garbage",
    ],
)
async def test_a_malformed_hello_closes_that_connection_only(first: bytes) -> None:
    """Finding 1 of issue #14: an authenticated peer's malformed first frame
    ended the whole host. Now it closes that connection, with a log line."""
    async with serving() as (server, node, address):
        with structlog.testing.capture_logs() as logs:
            stream = await _connect(address)
            await _wire.client_handshake(stream, SECRET)
            await stream.send_all(first)
            await _until_closed(stream)
        (refused,) = [e for e in logs if e["event"] == "placement.bad_hello"]
        assert refused["remote"].startswith("127.0.0.1:")  # names the peer
        # The host is still up and serves a legitimate peer.
        async with open_system() as client:
            cnode = Node(client, SECRET, name="client")
            client.install_placement(cnode)
            assert (await cnode.dial(address)).name == "server"
        assert node_of(server) is node


async def _idle_from(source: str, address: str) -> trio.SocketStream:
    """A TCP connection to ``address`` from the local address ``source`` that
    never starts the handshake."""
    host, _, port = address.rpartition(":")
    sock = trio.socket.socket()
    await sock.bind((source, 0))
    await sock.connect((host, int(port)))
    return trio.SocketStream(sock)


async def test_idle_connections_cannot_lock_out_a_real_peer() -> None:
    """Finding 5 of issue #14: 19,000 idle connections took the host to 18,506
    open files and a legitimate client timed out. Past the per-address limit
    new connections are closed at once; a peer from elsewhere gets in."""
    from radon_actors.placement._handshake import MAX_HANDSHAKES_PER_ADDRESS

    async with serving() as (_server, node, address):
        with structlog.testing.capture_logs() as logs:
            idle = [await _idle_from("127.0.0.2", address) for _ in range(200)]
            await trio.testing.wait_all_tasks_blocked()
            assert node.handshaking == {"127.0.0.2": MAX_HANDSHAKES_PER_ADDRESS}
            assert node.refused_handshakes == 200 - MAX_HANDSHAKES_PER_ADDRESS
            # The refused ones are closed, not held: the host's descriptors stay bounded.
            closed = 0
            for stream in idle[MAX_HANDSHAKES_PER_ADDRESS:]:
                with trio.fail_after(5):
                    closed += await _until_closed(stream) == b""
            assert closed == 200 - MAX_HANDSHAKES_PER_ADDRESS
            async with open_system() as client:
                cnode = Node(client, SECRET, name="client")
                client.install_placement(cnode)
                with trio.fail_after(2):  # not the 5 s handshake deadline
                    assert (await cnode.dial(address)).name == "server"
            for stream in idle:
                await stream.aclose()
        limit = [e for e in logs if e["event"] == "placement.handshake_limit"]
        assert len(limit) == 1 and limit[0]["remote"].startswith("127.0.0.2:")


async def test_a_flood_of_refused_handshakes_is_logged_sparingly() -> None:
    async with serving() as (_server, node, address):
        with structlog.testing.capture_logs() as logs:
            for _ in range(30):
                stream = await _connect(address)
                await stream.send_all(b"not radon at all, no handshake here..............")
                await _until_closed(stream)
                await stream.aclose()
        refused = [e for e in logs if e["event"] == "placement.auth_refused"]
        assert node.refused_auth == 30
        assert [e["refused"] for e in refused] == list(range(1, 11))
