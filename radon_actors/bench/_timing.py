"""What every benchmark here shares: the clock, the round-trip loop, the
statistics, and the raw trio floor that the ratios divide by.

The floor is a ping-pong between two trio tasks over unbuffered memory channels
(and a one-way stream into a buffered one for throughput): the least a
request/reply between two trio tasks can cost on this machine, measured in the
same run as the figure it is compared with, because these machines are shared
and noisy and only same-run ratios mean something.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

__all__ = [
    "LostMessages",
    "median_of",
    "median_run",
    "now_ns",
    "percentiles",
    "quantiles_us",
    "raw_channel_rtt",
    "raw_channel_throughput",
    "round_trips",
]

now_ns = time.perf_counter_ns


class LostMessages(AssertionError):
    """A configuration lost or garbled messages: the run is broken, not slow."""


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50/p90/p99 and the mean of per-message times, in microseconds."""
    s = sorted(samples_ns)
    n = len(s)
    return {
        "p50_us": s[n // 2] / 1000,
        "p90_us": s[int(n * 0.90)] / 1000,
        "p99_us": s[min(n - 1, int(n * 0.99))] / 1000,
        "mean_us": sum(s) / n / 1000,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """Key by key, the median over runs (each run: what :func:`percentiles` gives)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def quantiles_us(samples_ns: list[int], points: int = 1000) -> list[float]:
    """The distribution of one run as ``points`` evenly spaced quantiles, in us
    (what a plot draws; keeps JSON small)."""
    s = sorted(samples_ns)
    n = len(s)
    if n <= points:
        return [x / 1000 for x in s]
    return [s[min(n - 1, (i * n) // points)] / 1000 for i in range(points)]


def median_run(runs: list[list[int]]) -> list[int]:
    """The samples of the run whose p50 is the median p50 (so a plot matches a table)."""
    p50s = [sorted(r)[len(r) // 2] for r in runs]
    target = sorted(p50s)[len(p50s) // 2]
    return runs[p50s.index(target)]


async def round_trips(
    op: Callable[[int], Awaitable[Any]],
    n: int,
    warmup: int,
    check: Callable[[int, Any], None] | None = None,
) -> list[int]:
    """Time ``n`` sequential awaits of ``op(i)`` after ``warmup`` untimed ones.

    ``check(i, result)`` (default: the result must be ``i``, an echo) raises
    :class:`LostMessages` on a wrong answer; it runs outside the timed region.
    """
    for i in range(warmup):
        await op(i)
    samples = [0] * n
    now = now_ns
    for i in range(n):
        t0 = now()
        r = await op(i)
        samples[i] = now() - t0
        if check is None:
            if r != i:
                raise LostMessages(f"echo of {i} returned {r!r}")
        else:
            check(i, r)
    return samples


async def raw_channel_rtt(n: int, warmup: int) -> list[int]:
    """The floor of a request/reply: raw trio memory-channel ping-pong."""
    req_send, req_recv = trio.open_memory_channel[int](0)
    rep_send, rep_recv = trio.open_memory_channel[int](0)

    async def server() -> None:
        async for x in req_recv:
            await rep_send.send(x)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)

        async def op(i: int) -> int:
            await req_send.send(i)
            return await rep_recv.receive()

        samples = await round_trips(op, n, warmup)
        nursery.cancel_scope.cancel()
    return samples


async def raw_channel_throughput(n: int) -> float:
    """The floor of one-way messages: a stream into a 1000-slot trio channel, msgs/s."""
    send, recv = trio.open_memory_channel[int](1000)
    done = trio.Event()
    count = 0

    async def consumer() -> None:
        nonlocal count
        async for _ in recv:
            count += 1
            if count == n:
                done.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        t0 = now_ns()
        for i in range(n):
            await send.send(i)
        await done.wait()
        elapsed = now_ns() - t0
    if count != n:
        raise LostMessages(f"consumer got {count} of {n}")
    return n / (elapsed / 1e9)
