"""An open-loop HTTP load generator for the hotel frontend, in the spirit of wrk2.

DeathStarBench drives hotelReservation with wrk2 and its
``mixed-workload_type_1.lua``: search 60%, recommend 39%, user login 0.5%,
reserve 0.5%. This module sends the same mix, with the same parameter ranges,
at a fixed offered rate, and measures each request's latency from the time it
*should* have been sent, as wrk2 does: when the server falls behind, requests
wait for a free connection and that wait counts, so a slow server cannot hide
its queue by slowing the generator down (coordinated omission).

The generator runs in its own process (``python -m examples.hotel load``), so
its CPU is not the server's; it reports the CPU it used itself. It speaks plain
HTTP/1.1 with keep-alive over ``--connections`` connections, one request at a
time on each (no pipelining), with the request bytes built before the run.
"""

from __future__ import annotations

import collections
import math
import random
import time
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

import attrs
import trio

from ._data import workload_user

MIX = (("search", 0.6), ("recommend", 0.39), ("user", 0.005), ("reserve", 0.005))
"""The request kinds and their shares: ``mixed-workload_type_1.lua``."""


class LoadError(Exception):
    """The load generator could not run: the server cannot be reached, or it
    answered something that is not HTTP."""


def _lua_number(x: float) -> str:
    # Lua 5.1's tostring of a number: "%.14g".
    return format(x, ".14g")


def _point(rnd: random.Random) -> tuple[str, str]:
    lat = 38.0235 + (rnd.randint(0, 481) - 240.5) / 1000.0
    lon = -122.095 + (rnd.randint(0, 325) - 157.0) / 1000.0
    return _lua_number(lat), _lua_number(lon)


def _day(n: int) -> str:
    return f"2015-04-{n:02d}"


def request_target(kind: str, rnd: random.Random) -> tuple[str, str]:
    """One request of ``kind`` as the Lua script makes it: method and target."""
    if kind == "search":
        in_day = rnd.randint(9, 23)
        out_day = rnd.randint(in_day + 1, 24)
        lat, lon = _point(rnd)
        return "GET", f"/hotels?inDate={_day(in_day)}&outDate={_day(out_day)}&lat={lat}&lon={lon}"
    if kind == "recommend":
        coin = rnd.random()
        require = "dis" if coin < 0.33 else "rate" if coin < 0.66 else "price"
        lat, lon = _point(rnd)
        return "GET", f"/recommendations?require={require}&lat={lat}&lon={lon}"
    user, password = workload_user(rnd.randint(0, 500))
    if kind == "user":
        return "POST", f"/user?username={quote(user)}&password={quote(password)}"
    if kind == "reserve":
        in_day = rnd.randint(9, 23)
        out_day = in_day + rnd.randint(1, 5)
        hotel = rnd.randint(1, 80)
        return "POST", (
            f"/reservation?inDate={_day(in_day)}&outDate={_day(out_day)}&lat=nil&lon=nil"
            f"&hotelId={hotel}&customerName={quote(user)}&username={quote(user)}"
            f"&password={quote(password)}&number=1"
        )
    raise ValueError(f"unknown request kind {kind!r}; one of {', '.join(k for k, _ in MIX)}")


def workload(count: int, seed: int = 1) -> list[tuple[str, str, str]]:
    """``count`` requests of the mixed workload: (kind, method, target) each."""
    rnd = random.Random(seed)
    kinds = [kind for kind, _ in MIX]
    weights = [share for _, share in MIX]
    out = []
    for kind in rnd.choices(kinds, weights, k=count):
        method, target = request_target(kind, rnd)
        out.append((kind, method, target))
    return out


@attrs.frozen
class LoadResult:
    """What one run at a fixed offered rate measured (after the warm-up)."""

    offered: float
    """Requests per second the generator was asked to send."""
    achieved: float
    """Responses per second received, over the measured interval."""
    sent: int
    """Requests due in the measured interval."""
    completed: int
    """Of those, requests answered (any status)."""
    errors: int
    """Answers that were not 2xx, and requests unanswered at the end."""
    latency_ms: dict[str, float]
    """p50, p90, p99, p99.9 and max, from each request's intended send time."""
    by_kind: dict[str, int]
    """Requests sent of each kind."""
    statuses: dict[int, int]
    """Answers by HTTP status."""
    client_cpu: float
    """The generator's own CPU time over the run, as a fraction of one core."""

    def as_dict(self) -> dict[str, object]:
        """The result as plain data (what ``load --json`` prints)."""
        return attrs.asdict(self)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) of sorted values, nearest rank (as HdrHistogram)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


class _Connection:
    """One keep-alive HTTP/1.1 connection; a request is sent when the previous
    answer has been read."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise LoadError("the server closed the connection")
        self.buffer += data

    async def exchange(self, request: bytes) -> int:
        """Send ``request`` and read its answer; returns the status."""
        await self.stream.send_all(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise LoadError(f"not an HTTP answer: {head[0][:80]!r}")
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            elif name.strip().lower() == "transfer-encoding":
                raise LoadError("chunked answers are not supported by the load generator")
        if length is None:
            raise LoadError("an answer without Content-Length")
        total = end + 4 + length
        while len(self.buffer) < total:
            await self._fill()
        del self.buffer[:total]
        return int(parts[1])


async def run_load(
    url: str,
    *,
    rate: float,
    duration: float,
    warmup: float = 1.0,
    connections: int = 64,
    timeout: float = 10.0,
    seed: int = 1,
) -> LoadResult:
    """Send the mixed workload to ``url`` at ``rate`` requests per second for
    ``warmup + duration`` seconds; measure the last ``duration``.

    Requests are due at fixed intervals from the start. Each waits for one of
    ``connections`` idle connections; its latency runs from when it was due to
    when its whole answer arrived. Requests still unanswered ``timeout`` seconds
    after the last one was due count as errors (with ``timeout`` as latency).
    """
    if rate <= 0 or duration <= 0 or warmup < 0 or connections < 1 or timeout <= 0:
        raise ValueError("rate, duration, connections and timeout must be positive")
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"an http:// URL is needed, not {url!r}")
    host, port = parts.hostname, parts.port or 80
    prefix = parts.path.rstrip("/")
    total = int((warmup + duration) * rate)
    requests = []
    kinds = []
    for kind, method, target in workload(total, seed):
        kinds.append(kind)
        requests.append(
            f"{method} {prefix}{target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Length: 0\r\n\r\n".encode()
        )
    first_measured = int(warmup * rate)
    latencies: list[float] = []  # of the measured requests answered
    statuses: collections.Counter[int] = collections.Counter()
    try:
        pool = [_Connection(await trio.open_tcp_stream(host, port)) for _ in range(connections)]
    except OSError as exc:
        raise LoadError(f"cannot connect to {host}:{port}: {exc}") from exc
    send, receive = trio.open_memory_channel[int](math.inf)
    interval = 1.0 / rate
    cpu_start = time.process_time()
    start = trio.current_time()

    async def worker(conn: _Connection) -> None:
        async for i in receive:
            status = await conn.exchange(requests[i])
            if i >= first_measured:
                latencies.append(trio.current_time() - (start + i * interval))
                statuses[status] += 1

    try:
        async with trio.open_nursery() as nursery:
            for conn in pool:
                nursery.start_soon(worker, conn)
            # Release every request that is due at each wake-up: when the generator
            # itself is late it catches up at once rather than drifting.
            i = 0
            while i < total:
                now = trio.current_time()
                due = min(total, int((now - start) / interval) + 1)
                while i < due:
                    send.send_nowait(i)
                    i += 1
                if i < total:
                    await trio.sleep_until(start + i * interval)
            send.close()
            nursery.cancel_scope.deadline = start + total * interval + timeout
    except* (LoadError, trio.BrokenResourceError, OSError) as group:
        for conn in pool:
            await conn.stream.aclose()
        raise LoadError(f"the connection to {host}:{port} failed: {group.exceptions[0]}") from None
    end = trio.current_time()
    cpu = time.process_time() - cpu_start
    for conn in pool:
        await conn.stream.aclose()
    measured = total - first_measured
    completed = len(latencies)
    unanswered = measured - completed
    latencies.extend([timeout] * unanswered)
    latencies.sort()
    errors = unanswered + sum(n for status, n in statuses.items() if not 200 <= status < 300)
    span = max(end - (start + first_measured * interval), duration)
    by_kind = collections.Counter(kinds[first_measured:])
    return LoadResult(
        offered=rate,
        achieved=completed / span,
        sent=measured,
        completed=completed,
        errors=errors,
        latency_ms={
            name: 1000 * percentile(latencies, q)
            for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))
        }
        | {"max": 1000 * (latencies[-1] if latencies else math.nan)},
        by_kind=dict(by_kind),
        statuses=dict(statuses),
        client_cpu=cpu / (end - start),
    )
