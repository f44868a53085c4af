"""The hotel frontend's HTTP server (issue #17): the original's routes and
answers, HTTP/1.1 keep-alive and pipelining, and a client it does not trust.

The server is driven through in-memory streams (``trio.testing``), so timeouts
run on a mock clock and nothing waits on the wall clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.hotel import Frontend, spawn_frontends, workload_user
from examples.hotel._http import IDLE_TIMEOUT, MAX_BODY, MAX_HEAD, REQUEST_TIMEOUT, HotelHTTP
from radon_actors import HostDown, Ref, SQLiteStore, open_system


@pytest.fixture
async def frontends(tmp_path: Path) -> AsyncIterator[list[Ref[Frontend]]]:
    async with open_system(state_store=SQLiteStore(tmp_path / "hotel.db")) as system:
        yield await spawn_frontends(system, 2)


async def read_answer(
    stream: trio.abc.Stream, buffer: bytearray
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP answer from ``stream`` (``buffer`` keeps what follows it)."""
    while b"\r\n\r\n" not in buffer:
        data = await stream.receive_some()
        assert data, f"the server closed the connection; got {bytes(buffer)!r}"
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        data = await stream.receive_some()
        assert data, "the server closed the connection mid-body"
        rest += data
    buffer[:] = rest[length:]
    return status, headers, rest[:length]


async def closed(stream: trio.abc.Stream) -> bool:
    """Whether the server closed its side (after anything still in flight)."""
    while True:
        data = await stream.receive_some()
        if not data:
            return True


async def connect(nursery: trio.Nursery, server: HotelHTTP) -> trio.StapledStream[Any, Any]:
    client, served = trio.testing.memory_stream_pair()
    nursery.start_soon(server.handle, served)
    return client


HOTELS = b"/hotels?inDate=2015-04-09&outDate=2015-04-11&lat=38.0235&lon=-122.095"


async def test_the_routes_answer_what_the_frontend_atom_answers(
    frontends: list[Ref[Frontend]],
) -> None:
    server = HotelHTTP(frontends)
    user, password = workload_user(3)
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        buffer = bytearray()
        await client.send_all(b"GET " + HOTELS + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = await read_answer(client, buffer)
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert headers["access-control-allow-origin"] == "*"
        expected = await frontends[0].ask(
            Frontend.hotels, "2015-04-09", "2015-04-11", "38.0235", "-122.095"
        )
        assert json.loads(body) == expected and expected["features"]
        assert body.endswith(b"}\n") and b", " not in body  # Go's compact encoding

        target = f"/user?username={user}&password={password}".encode()
        await client.send_all(b"POST " + target + b" HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        status, _, body = await read_answer(client, buffer)
        assert (status, body) == (200, b'{"message":"Login successfully!"}\n')

        await client.send_all(b"GET /hotels?inDate=2015-04-09 HTTP/1.1\r\n\r\n")
        status, headers, body = await read_answer(client, buffer)
        assert (status, body) == (400, b"Please specify inDate/outDate params\n")
        assert headers["content-type"] == "text/plain; charset=utf-8"

        await client.send_all(b"GET /static/index.html HTTP/1.1\r\n\r\n")
        status, _, body = await read_answer(client, buffer)
        assert (status, body) == (404, b"404 page not found\n")

        # HEAD: the same headers, no body.
        await client.send_all(b"HEAD " + target + b" HTTP/1.1\r\n\r\n")
        while b"\r\n\r\n" not in buffer:
            buffer += await client.receive_some()
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 34" in head
        assert rest == b""
        buffer.clear()
        nursery.cancel_scope.cancel()


async def test_pipelined_requests_are_answered_in_order_and_close_is_honoured(
    frontends: list[Ref[Frontend]],
) -> None:
    server = HotelHTTP(frontends)
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        buffer = bytearray()
        requests = [
            b"GET /recommendations?require=dis&lat=38.0235&lon=-122.095 HTTP/1.1\r\n\r\n",
            b"GET /nope HTTP/1.1\r\n\r\n",
            b"GET /recommendations?require=price&lat=38.0235&lon=-122.095 HTTP/1.1\r\n"
            b"Connection: close\r\n\r\n",
        ]
        await client.send_all(b"".join(requests))
        first = await read_answer(client, buffer)
        second = await read_answer(client, buffer)
        third = await read_answer(client, buffer)
        assert [first[0], second[0], third[0]] == [200, 404, 200]
        assert third[1]["connection"] == "close"
        dis = await frontends[0].ask(Frontend.recommendations, "dis", "38.0235", "-122.095")
        price = await frontends[1].ask(Frontend.recommendations, "price", "38.0235", "-122.095")
        assert json.loads(first[2]) == dis and json.loads(third[2]) == price
        assert dis != price
        assert await closed(client)
        nursery.cancel_scope.cancel()


async def expect_refusal(server: HotelHTTP, data: bytes, status: int) -> bytes:
    """Send ``data``; the server answers ``status`` and closes that connection,
    while another connection is served as before."""
    async with trio.open_nursery() as nursery:
        bad = await connect(nursery, server)
        good = await connect(nursery, server)
        await bad.send_all(data)
        got, headers, body = await read_answer(bad, bytearray())
        assert got == status, body
        assert headers["connection"] == "close"
        assert await closed(bad)
        buffer = bytearray()
        await good.send_all(b"GET " + HOTELS + b" HTTP/1.1\r\n\r\n")
        assert (await read_answer(good, buffer))[0] == 200
        nursery.cancel_scope.cancel()
    return body


async def test_bytes_that_are_not_http_close_that_connection_only(
    frontends: list[Ref[Frontend]],
) -> None:
    server = HotelHTTP(frontends)
    body = await expect_refusal(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400)
    assert body.startswith(b"not HTTP/1.1")
    await expect_refusal(server, b"GET / HTTP/1.1\r\nHost: a\r\nHost b\r\n\r\n", 400)
    upgrade = b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    await expect_refusal(server, upgrade, 400)


async def test_an_oversized_head_or_body_is_refused(frontends: list[Ref[Frontend]]) -> None:
    server = HotelHTTP(frontends)
    long_header = b"GET / HTTP/1.1\r\nX-Junk: " + b"a" * (MAX_HEAD + 10) + b"\r\n\r\n"
    await expect_refusal(server, long_header, 431)
    huge_body = b"POST /user HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    await expect_refusal(server, huge_body + b"x" * (MAX_BODY + 1), 413)


async def test_a_body_under_the_limit_is_read_and_ignored(frontends: list[Ref[Frontend]]) -> None:
    server = HotelHTTP(frontends)
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        buffer = bytearray()
        body = b"x" * 100_000
        await client.send_all(
            b"POST /nope HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            + b"GET /nope HTTP/1.1\r\n\r\n"
        )
        assert (await read_answer(client, buffer))[0] == 404
        assert (await read_answer(client, buffer))[0] == 404
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("autojump_clock", [0], indirect=True)
async def test_a_request_too_slow_to_arrive_gets_408(
    frontends: list[Ref[Frontend]], autojump_clock: trio.testing.MockClock
) -> None:
    server = HotelHTTP(frontends)
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        start = trio.current_time()
        await client.send_all(b"GET /hotels?inDate=2015-04-09 HTTP/1.1\r\nHost: ")
        status, _, body = await read_answer(client, bytearray())
        assert status == 408 and b"must arrive within" in body
        assert trio.current_time() - start == pytest.approx(REQUEST_TIMEOUT)
        assert await closed(client)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("autojump_clock", [0], indirect=True)
async def test_an_idle_keep_alive_connection_is_closed(
    frontends: list[Ref[Frontend]], autojump_clock: trio.testing.MockClock
) -> None:
    server = HotelHTTP(frontends)
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        await client.send_all(b"GET /nope HTTP/1.1\r\n\r\n")
        assert (await read_answer(client, bytearray()))[0] == 404
        answered = trio.current_time()
        assert await closed(client)
        assert trio.current_time() - answered == pytest.approx(IDLE_TIMEOUT)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("autojump_clock", [0], indirect=True)
async def test_a_client_that_never_reads_is_dropped(
    frontends: list[Ref[Frontend]], autojump_clock: trio.testing.MockClock
) -> None:
    server = HotelHTTP(frontends)
    client, served = trio.testing.lockstep_stream_pair()  # sends wait for the reader
    dropped = trio.Event()

    async def serve() -> None:
        await server.handle(served)
        dropped.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        start = trio.current_time()
        await client.send_all(b"GET /nope HTTP/1.1\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        assert server.connections == 1  # answering, and the client does not read
        with trio.fail_after(3 * REQUEST_TIMEOUT):
            await dropped.wait()
        assert trio.current_time() - start == pytest.approx(REQUEST_TIMEOUT, abs=1)
        assert server.connections == 0
        nursery.cancel_scope.cancel()


async def test_connections_beyond_the_limit_are_closed_at_once(
    frontends: list[Ref[Frontend]],
) -> None:
    server = HotelHTTP(frontends, max_connections=2)
    async with trio.open_nursery() as nursery:
        first = await connect(nursery, server)
        second = await connect(nursery, server)
        await trio.testing.wait_all_tasks_blocked()
        third = await connect(nursery, server)
        assert await closed(third)
        for client in (first, second):
            await client.send_all(b"GET /nope HTTP/1.1\r\n\r\n")
            assert (await read_answer(client, bytearray()))[0] == 404
        await first.aclose()
        await trio.testing.wait_all_tasks_blocked()
        fourth = await connect(nursery, server)  # room again
        await fourth.send_all(b"GET /nope HTTP/1.1\r\n\r\n")
        assert (await read_answer(fourth, bytearray()))[0] == 404
        nursery.cancel_scope.cancel()


async def one_answer(server: HotelHTTP, request: bytes) -> tuple[int, bytes]:
    """Status and body of ``server``'s answer to one request on a new connection."""
    async with trio.open_nursery() as nursery:
        client = await connect(nursery, server)
        await client.send_all(request)
        status, _, body = await read_answer(client, bytearray())
        nursery.cancel_scope.cancel()
    return status, body


async def test_a_request_the_services_do_not_answer_in_time_gets_504(
    frontends: list[Ref[Frontend]],
) -> None:
    server = HotelHTTP(frontends, timeout=0)  # no time at all: every ask is late
    answer = await one_answer(server, b"GET " + HOTELS + b" HTTP/1.1\r\n\r\n")
    assert answer == (504, b"the services did not answer in time\n")


async def test_a_request_whose_host_went_down_gets_503() -> None:
    class HostGone:
        async def ask(self, *args: Any) -> Any:
            raise HostDown("host 'w1' at 127.0.0.1:1 went down (connection closed)")

    server = HotelHTTP([cast("Ref[Frontend]", HostGone())])
    answer = await one_answer(server, b"GET " + HOTELS + b" HTTP/1.1\r\n\r\n")
    assert answer == (503, b"a service's host went down; retry\n")


def test_the_server_needs_a_frontend() -> None:
    with pytest.raises(ValueError, match="at least one frontend"):
        HotelHTTP([])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(max_size=200),
            st.sampled_from(
                [
                    b"GET /nope HTTP/1.1\r\n\r\n",
                    b"GET /user?username=a&password=b HTTP/1.1\r\n",
                    b"Content-Length: 3\r\n\r\nabc",
                    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                    b"\r\n",
                    b"POST /recommendations?require=rate&lat=1e400&lon=x HTTP/1.0\r\n\r\n",
                ]
            ),
        ),
        max_size=8,
    )
)
def test_any_bytes_get_http_answers_or_a_close_never_a_crash(chunks: list[bytes]) -> None:
    async def scenario() -> None:
        async with open_system() as system:
            server = HotelHTTP(await spawn_frontends(system, 1))
            client, served = trio.testing.memory_stream_pair()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server.handle, served)
                try:
                    for chunk in chunks:
                        await client.send_all(chunk)
                    await client.send_eof()
                except trio.BrokenResourceError:
                    pass  # the server refused the bytes and closed: read what it said
                received = b""
                while data := await client.receive_some():
                    received += data
            # handle() returned: every answer is HTTP, and the server is fine.
            assert received == b"" or received.startswith(b"HTTP/1.1 ")
            assert server.connections == 0

    trio.run(scenario)
