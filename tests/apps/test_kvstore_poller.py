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
from examples.kvstore._poller import (
    CHUNK,
    EPOLL,
    MAX_UNREAD,
    ROUND_CALLS,
    Connection,
    Poller,
    Responder,
)
from examples.kvstore._server import NOW_COMMANDS
from radon_actors import open_system

pytestmark = pytest.mark.skipif(not EPOLL, reason="the poller needs epoll (Linux)")


async def _pair(
    nursery: trio.Nursery, respond: Responder | None = None
) -> tuple[Poller, Connection, trio.SocketStream]:
    """A poller running in ``nursery``, the connection it watches, and the client end."""
    ours, theirs = trio.socket.socketpair()
    poller = Poller()
    nursery.start_soon(poller.run)
    return poller, poller.watch(trio.SocketStream(ours), respond), trio.SocketStream(theirs)


async def _receive_exactly(stream: trio.SocketStream, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        data = await stream.receive_some(n - len(got))
        assert data, f"the end after {len(got)} of {n} bytes"
        got += data
    return bytes(got)


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
        # The end of the stream can be read before the sender's task resumes
        # from aclose (which closes, then checkpoints): let it run first.
        await trio.testing.wait_all_tasks_blocked()
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


# The responder: answers in the poller's task while the connection's task is idle.


async def test_a_responder_answers_while_the_task_waits_and_not_while_it_works() -> None:
    calls: list[bytes] = []

    def respond(data: bytes) -> bytes | None:
        calls.append(data)
        return data.upper()

    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery, respond)
        got: list[bytes] = []

        async def task() -> None:
            got.append(await conn.receive())

        nursery.start_soon(task)
        await trio.testing.wait_all_tasks_blocked()
        await client.send_all(b"ping")
        assert await client.receive_some(100) == b"PING"
        # The task never woke: the poller answered.
        await trio.testing.wait_all_tasks_blocked()
        assert got == [] and calls == [b"ping"]
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        calls.clear()
        _, conn, client = await _pair(nursery, respond)
        # No task waits in receive (it is busy): the bytes wait for it.
        await client.send_all(b"busy")
        await trio.testing.wait_all_tasks_blocked()
        assert calls == []
        assert await conn.receive() == b"busy"
        nursery.cancel_scope.cancel()


async def test_a_responder_that_leaves_work_wakes_the_task_with_nothing_read() -> None:
    left: list[bytes] = []

    def respond(data: bytes) -> bytes | None:
        left.append(data)
        return None

    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery, respond)
        await client.send_all(b"hard")
        assert await conn.receive() == b""  # woken: the responder kept the bytes
        assert left == [b"hard"]
        await client.send_all(b"more")
        # The task is not waiting: the next bytes wait for it, in order.
        await trio.testing.wait_all_tasks_blocked()
        assert await conn.receive() == b"more"
        nursery.cancel_scope.cancel()


async def test_a_reply_the_socket_cannot_take_is_finished_by_the_task_in_order() -> None:
    big = b"r" * (4 << 20)  # far more than a socket buffer

    def respond(data: bytes) -> bytes | None:
        return big if data == b"big" else data

    async with trio.open_nursery() as nursery:
        _, conn, client = await _pair(nursery, respond)
        got: list[bytes] = []

        async def task() -> None:
            got.append(await conn.receive())
            await conn.send_all(b"after")

        nursery.start_soon(task)
        await trio.testing.wait_all_tasks_blocked()
        await client.send_all(b"big")
        await trio.testing.wait_all_tasks_blocked()
        # The rest of the reply waits in the task, which is blocked writing it.
        await client.send_all(b"next")
        assert await _receive_exactly(client, len(big)) == big
        # Then the task reads on: "next" came while it was writing.
        assert await _receive_exactly(client, 5) == b"after"
        assert got == [b"next"]
        nursery.cancel_scope.cancel()


async def test_one_pass_calls_a_bounded_number_of_responders() -> None:
    calls = 0

    def respond(data: bytes) -> bytes | None:
        nonlocal calls
        calls += 1
        return b"!"

    async with trio.open_nursery() as nursery:
        poller = Poller()
        clients = []
        for _ in range(ROUND_CALLS + 10):
            ours, theirs = trio.socket.socketpair()
            conn = poller.watch(trio.SocketStream(ours), respond)
            nursery.start_soon(conn.receive)
            clients.append(trio.SocketStream(theirs))
        await trio.testing.wait_all_tasks_blocked()
        for client in clients:
            await client.send_all(b"x")
        # Every socket is ready before the poller's first pass.
        nursery.start_soon(poller.run)
        await trio.testing.wait_all_tasks_blocked()
        # The first pass answered ROUND_CALLS; the rest woke their tasks.
        assert calls == ROUND_CALLS
        nursery.cancel_scope.cancel()


async def test_the_store_answers_in_order_what_it_can_now_and_the_rest_after(
    port: int,
) -> None:
    """One packet mixing commands answered in the poller (SET, GET, INCR) with
    ones only the task can run (MULTI/EXEC, WATCH, a cross-shard MGET, PING),
    and more commands than a responder takes: every reply, in order."""
    client = await trio.open_tcp_stream("127.0.0.1", port)
    script: list[tuple[bytes, ...]] = [
        (b"SET", b"a", b"1"),
        (b"PING",),
        (b"INCR", b"a"),
        (b"MULTI",),
        (b"INCR", b"a"),
        (b"GET", b"a"),
        (b"EXEC",),
        (b"MSET", b"k1", b"x", b"k2", b"y", b"k3", b"z"),
        (b"MGET", b"a", b"k1", b"k2", b"k3"),
    ]
    expected = (
        b"+OK\r\n+PONG\r\n:2\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n:3\r\n$1\r\n3\r\n"
        b"+OK\r\n*4\r\n$1\r\n3\r\n$1\r\nx\r\n$1\r\ny\r\n$1\r\nz\r\n"
    )
    await client.send_all(_packet(script))
    assert await _receive_exactly(client, len(expected)) == expected
    # More commands than a responder answers in one call: the rest, in order, after.
    n = NOW_COMMANDS * 3
    await client.send_all(_packet([(b"INCR", b"n")] * n + [(b"GET", b"n")]))
    expected = b"".join(b":%d\r\n" % (i + 1) for i in range(n)) + b"$2\r\n%d\r\n" % n
    assert await _receive_exactly(client, len(expected)) == expected
    await client.aclose()


def _packet(commands: list[tuple[bytes, ...]]) -> bytes:
    return b"".join(
        b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in commands
    )
