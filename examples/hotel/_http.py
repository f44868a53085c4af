"""The hotel frontend over HTTP/1.1, on trio, with httptools parsing requests.

The routes and answers are the original frontend's (``services/frontend/
server.go``): ``/hotels``, ``/recommendations``, ``/user`` and ``/reservation``
read their query parameters (any method, as Go's ``http.HandleFunc``), answer
``200`` with the JSON body and a newline (``json.Encoder.Encode``), ``400``
with the message as plain text where the original calls ``http.Error``, and
``404 page not found`` for other paths. Every answer carries
``Access-Control-Allow-Origin: *``, as there.

Why not an ASGI server: hypercorn's trio worker, serving an application that
answers "ok", tops out at about 1,700 requests/s on the 2-core machine this
was measured on, below the 2,000 requests/s the hotel application is asked to
serve with its services in the same process. httptools (llhttp, Node's parser,
as uvicorn uses it) parses in C and knows nothing of event loops, so a
connection here is one trio task that reads, parses and answers in order:
about 6,000 "ok" requests/s on the same machine.

A connection is a client we do not trust: a request's head is limited to
:data:`MAX_HEAD` bytes (``431``), its body to :data:`MAX_BODY` (``413``, and
bodies are read and dropped: no route uses one), a request must arrive whole
within :data:`REQUEST_TIMEOUT` seconds of its first byte (``408``), and its
answer must be taken within as long (a client that never reads is dropped), an
idle keep-alive connection is closed after :data:`IDLE_TIMEOUT`, bytes that are not
HTTP get ``400``, and at most ``max_connections`` are open at once (more are
closed as soon as they are accepted). Each of those closes that connection
only.

Each request goes to one of a pool of :class:`~examples.hotel.Frontend` atoms
in turn: a frontend atom answers one request at a time, while the original's
frontend serves each on its own goroutine.
"""

from __future__ import annotations

import email.utils
import functools
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import httptools
import structlog
import trio

from radon_actors import HostDown, RadonError, Ref

from ._services import BadRequest, Frontend

log = structlog.get_logger("examples.hotel.http")

MAX_HEAD = 64 * 1024
"""Bytes of a request line and headers (``431`` beyond)."""
MAX_BODY = 1024 * 1024
"""Bytes of a request body (``413`` beyond)."""
REQUEST_TIMEOUT = 10.0
"""Seconds from a request's first byte to its last (``408`` beyond)."""
IDLE_TIMEOUT = 60.0
"""Seconds a keep-alive connection may wait for its next request."""
MAX_CONNECTIONS = 1024
"""Connections open at once, by default."""
_READ = 16 * 1024

# Query parameter names of each route, in the order of the Frontend handler's
# parameters.
ROUTES: dict[bytes, tuple[Any, tuple[str, ...]]] = {
    b"/hotels": (Frontend.hotels, ("inDate", "outDate", "lat", "lon")),
    b"/recommendations": (Frontend.recommendations, ("require", "lat", "lon")),
    b"/user": (Frontend.user, ("username", "password")),
    b"/reservation": (
        Frontend.reservation,
        (
            "inDate",
            "outDate",
            "lat",
            "lon",
            "hotelId",
            "customerName",
            "username",
            "password",
            "number",
        ),
    ),
}

_JSON = b"Content-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n"
_TEXT = (
    b"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n"
    b"Access-Control-Allow-Origin: *\r\n"
)
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def query_values(query: bytes, names: Sequence[str]) -> list[str]:
    """Each named parameter's first value, ``""`` when absent (Go's
    ``r.URL.Query().Get``)."""
    first: dict[str, str] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        first.setdefault(name, value)
    return [first.get(name, "") for name in names]


_encode = json.JSONEncoder(separators=(",", ":")).encode
"""Go's ``json.Marshal`` layout: no spaces."""


def _http_date() -> bytes:
    return _date_of(int(time.time()))


@functools.lru_cache(maxsize=1)
def _date_of(second: int) -> bytes:
    # One formatting a second, not one an answer.
    return email.utils.formatdate(second, usegmt=True).encode()


def response(status: int, kind: bytes, body: bytes, *, close: bool, head: bool = False) -> bytes:
    """The bytes of one answer; ``head`` leaves the body out (a ``HEAD`` request)."""
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            kind,
            b"Date: %s\r\nContent-Length: %d\r\n" % (_http_date(), len(body)),
            b"Connection: close\r\n\r\n" if close else b"\r\n",
            b"" if head else body,
        )
    )


class _Closing(Exception):
    """The connection is to be answered ``status`` and closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Request:
    __slots__ = ("head", "keep_alive", "method", "target")

    def __init__(self, method: bytes, target: bytes, keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.keep_alive = keep_alive
        self.head = method == b"HEAD"


class _Parse:
    """httptools' callbacks for one connection: collects complete requests."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.ready: list[_Request] = []
        self.url = b""
        self.in_head = False  # a request has begun and its headers have not ended
        self.partial = 0  # bytes of the reads that carried the unfinished head
        self.body = 0
        self.started: float | None = None  # when the unfinished request began

    def on_message_begin(self) -> None:
        self.in_head = True
        self.url = b""
        self.body = 0
        if self.started is None:
            self.started = trio.current_time()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        self.body += len(body)
        if self.body > MAX_BODY:
            raise _Closing(413, f"a request body over {MAX_BODY} bytes")

    def on_message_complete(self) -> None:
        parser = self.parser
        self.ready.append(_Request(parser.get_method(), self.url, parser.should_keep_alive()))
        self.started = None

    def feed(self, data: bytes | bytearray) -> None:
        was_in_head = self.in_head
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Closing):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserUpgrade as exc:
            raise _Closing(400, "protocol upgrades are not served") from exc
        except httptools.HttpParserError as exc:
            raise _Closing(400, f"not HTTP/1.1: {exc}") from exc
        if self.in_head or was_in_head:
            # Counted in whole reads: at most one read more than the head.
            self.partial += len(data)
            if self.partial > MAX_HEAD:
                raise _Closing(431, f"a request head over {MAX_HEAD} bytes")
        if not self.in_head:
            self.partial = 0


class HotelHTTP:
    """Serves HTTP connections, each request by one of ``frontends`` in turn;
    ``timeout`` bounds a request's ask (``504`` beyond it). A request whose
    services' host went down gets ``503`` (retry); another framework error
    ``500``."""

    def __init__(
        self,
        frontends: Sequence[Ref[Frontend]],
        *,
        timeout: float = 10.0,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if not frontends:
            raise ValueError("the server needs at least one frontend atom")
        self._next = itertools.cycle(frontends).__next__
        self.timeout = timeout
        self.max_connections = max_connections
        self.connections = 0

    async def answer(self, target: bytes) -> tuple[int, bytes, bytes]:
        """Status, content headers and body for a request target
        (``/path?query``)."""
        path, _, query = target.partition(b"?")
        route = ROUTES.get(path.partition(b"#")[0])
        if route is None:
            return 404, _TEXT, b"404 page not found\n"
        handler, names = route
        values = query_values(query.partition(b"#")[0], names)
        body = None
        # A bare cancel scope, not fail_after: this is the per-request path.
        with trio.CancelScope(deadline=trio.current_time() + self.timeout) as scope:
            try:
                body = await self._next().ask(handler, *values)
            except BadRequest as exc:
                return 400, _TEXT, f"{exc}\n".encode()
            except HostDown as exc:
                # A service's host died mid-request: the outcome is unknown and
                # its atoms come back elsewhere, so the client may retry.
                log.warning("hotel.host_down", path=path.decode("latin-1"), error=repr(exc))
                return 503, _TEXT, b"a service's host went down; retry\n"
            except RadonError as exc:
                log.error("hotel.request_failed", path=path.decode("latin-1"), error=repr(exc))
                return 500, _TEXT, b"internal error\n"
        if scope.cancelled_caught:
            log.warning("hotel.request_timed_out", path=path.decode("latin-1"))
            return 504, _TEXT, b"the services did not answer in time\n"
        return 200, _JSON, _encode(body).encode() + b"\n"

    async def handle(self, stream: trio.abc.Stream) -> None:
        """Serve one connection until the client closes it, asks to, or misbehaves."""
        if self.connections >= self.max_connections:
            log.warning("hotel.connection_refused", limit=self.max_connections)
            await trio.aclose_forcefully(stream)
            return
        self.connections += 1
        try:
            await self._serve(stream)
        except trio.BrokenResourceError:
            pass  # the client went away
        finally:
            self.connections -= 1
            await trio.aclose_forcefully(stream)

    async def _serve(self, stream: trio.abc.Stream) -> None:
        parse = _Parse()
        idle_since = trio.current_time()
        while True:
            if parse.started is not None:
                deadline, status = parse.started + REQUEST_TIMEOUT, 408
            else:
                deadline, status = idle_since + IDLE_TIMEOUT, 0
            data = None
            with trio.move_on_at(deadline):
                data = await stream.receive_some(_READ)
            if data is None:
                # A request too slow to arrive (slowloris), or an idle client.
                if status:
                    message = f"a request must arrive within {REQUEST_TIMEOUT:g} s\n"
                    await _send(stream, response(status, _TEXT, message.encode(), close=True))
                return
            if not data:
                return  # the client closed its side
            try:
                parse.feed(data)
            except _Closing as exc:
                log.info("hotel.bad_request", status=exc.status, reason=str(exc))
                body = f"{exc}\n".encode()
                await _send(stream, response(exc.status, _TEXT, body, close=True))
                return
            for request in parse.ready:
                status, kind, body = await self.answer(request.target)
                close = not request.keep_alive
                answer = response(status, kind, body, close=close, head=request.head)
                if not await _send(stream, answer) or close:
                    return
            parse.ready.clear()
            idle_since = trio.current_time()


async def _send(stream: trio.abc.Stream, data: bytes) -> bool:
    """Send an answer; False if the client did not take it within
    :data:`REQUEST_TIMEOUT` (a client that sends but never reads would hold
    its connection forever)."""
    with trio.move_on_after(REQUEST_TIMEOUT):
        await stream.send_all(data)
        return True
    log.info("hotel.slow_reader", timeout=REQUEST_TIMEOUT)
    return False
