"""The kvstore frontend's poller: client sockets read through one epoll set.

What the poller must keep from trio's own stream: bytes in order and the end of
the stream, a bound on what it buffers for a busy connection, cancellation of a
waiting task, and one slow client never holding up another.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from examples.kvstore import open_store, serve
from examples.kvstore._poller import CHUNK, EPOLL, MAX_UNREAD, Connection, Poller
from radon_actors import open_system

pytestmark = pytest.mark.skipif(not EPOLL, reason="the poller needs epoll (Linux)")


async def _pair(nursery: trio.Nursery) -> tuple[Poller, Connection, trio.SocketStream]:
    """A poller running in ``nursery``, the connection it watches, and the client end."""
    ours, theirs = trio.socket.socketpair()
    poller = Poller()
    nursery.start_soon(poller.run)
    return poller, poller.watch(trio.SocketStream(ours)), trio.SocketStream(theirs)


async def _drain(conn: Connection) -> bytes:
    got = bytearray()
    while data := await conn.receive():
        got += data
    return bytes(got)


async def test_bytes_arrive_in_order_and_the_end_reads_as_empty() -> None:
    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery)
        sent = b"".join(b"%06d" % i for i in range(20_000))

        async def send() -> None:
            for i in range(0, len(sent), 777):
                await client.send_all(sent[i : i + 777])
            await client.aclose()

        nursery.start_soon(send)
        assert await _drain(conn) == sent
        assert await conn.receive() == b""  # and again: the end stays the end
        nursery.cancel_scope.cancel()


async def test_a_busy_connection_holds_a_bounded_amount_then_reads_on() -> None:
    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery)
        sent = bytes(range(256)) * (MAX_UNREAD * 3 // 256)
        done = trio.Event()

        async def send() -> None:
            await client.send_all(sent)
            await client.aclose()
            done.set()

        nursery.start_soon(send)
        # The connection's task is busy (it does not receive): the poller reads
        # up to the bound, then stops, and the client's send blocks.
        await trio.testing.wait_all_tasks_blocked()
        assert not done.is_set()
        assert MAX_UNREAD <= conn._unread < MAX_UNREAD + CHUNK  # type: ignore[attr-defined]
        assert conn._paused  # type: ignore[attr-defined]
        assert await _drain(conn) == sent
        assert done.is_set()
        nursery.cancel_scope.cancel()


async def test_a_waiting_receive_can_be_cancelled_and_the_bytes_wait_for_the_next() -> None:
    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery)
        with trio.move_on_after(0.01) as scope:
            await conn.receive()
        assert scope.cancelled_caught
        await client.send_all(b"after")
        await trio.testing.wait_all_tasks_blocked()  # the poller read it: no one to wake
        assert await conn.receive() == b"after"
        nursery.cancel_scope.cancel()


@pytest.fixture(params=[True, False], ids=["polled", "trio-stream"])
async def port(request: pytest.FixtureRequest) -> AsyncIterator[int]:
    async with (
        open_system() as system,
        open_store(system, shards=2, replicas=2, coordinators=1) as store,
        trio.open_nursery() as nursery,
    ):
        yield await nursery.start(
            functools.partial(serve, store, "127.0.0.1", 0, polled=request.param)
        )
        nursery.cancel_scope.cancel()


async def _command(stream: trio.SocketStream, *args: bytes) -> bytes:
    bulks = b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    await stream.send_all(b"*%d\r\n%s" % (len(args), bulks))
    return await stream.receive_some(65536)


async def test_a_client_that_never_reads_its_replies_holds_up_no_other(port: int) -> None:
    slow = await trio.open_tcp_stream("127.0.0.1", port)
    slow.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    other = await trio.open_tcp_stream("127.0.0.1", port)
    big = b"x" * (1 << 20)
    assert await _command(other, b"SET", b"big", big) == b"+OK\r\n"
    # 64 GETs of a 1 MiB value, never read: the slow client's replies fill its
    # socket, and its connection waits to write them.
    get = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"
    await slow.send_all(get * 64)
    for i in range(50):
        assert await _command(other, b"INCR", b"n") == b":%d\r\n" % (i + 1)
    await slow.aclose()
    await other.aclose()
