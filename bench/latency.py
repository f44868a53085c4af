"""Message latency and throughput of radon-actors against the raw trio floor.

Measured in one run, on this machine:

* raw trio memory-channel ping-pong round trip (the floor for a request/reply
  between two trio tasks);
* in-process ``ask`` round trip, for a plain-``def`` handler and an ``async def``
  handler without ``await`` (both answered inline by an idle atom), and an
  ``async def`` handler that awaits (a queued turn on the atom's task);
* raw trio one-way memory-channel throughput, and ``tell`` throughput.

Round trips are timed one by one (p50/p99 of per-message times, in microseconds);
throughputs are messages per second over a stream. Each measurement is repeated
``--repeat`` times and the median of the runs is reported, with the ratio to its
raw baseline from the same run.

    python bench/latency.py            # full run (~20 s)
    python bench/latency.py --smoke    # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio
import trio.testing

from radon_actors import Atom, handler, open_system

Clock = Callable[[], int]
_now = time.perf_counter_ns


class Echo(Atom):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    async def aping(self, x: int) -> int:  # async, but no await: runs inline too
        return x

    @handler
    async def qping(self, x: int) -> int:
        # Has an await, so it may suspend: always a queued turn on the atom's task.
        await trio.lowlevel.checkpoint_if_cancelled()
        return x

    @handler
    def hit(self) -> None:
        self.count += 1

    @handler
    def total(self) -> int:
        return self.count


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    n = len(s)
    return {
        "p50_us": s[n // 2] / 1000,
        "p90_us": s[int(n * 0.90)] / 1000,
        "p99_us": s[min(n - 1, int(n * 0.99))] / 1000,
    }


async def _round_trips(op: Callable[[int], Awaitable[Any]], n: int, warmup: int) -> list[int]:
    for i in range(warmup):
        await op(i)
    samples = [0] * n
    now = _now
    for i in range(n):
        t0 = now()
        await op(i)
        samples[i] = now() - t0
    return samples


async def raw_channel_rtt(n: int, warmup: int) -> list[int]:
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

        samples = await _round_trips(op, n, warmup)
        nursery.cancel_scope.cancel()
    return samples


async def ask_rtt(n: int, warmup: int, method: str) -> list[int]:
    async with open_system() as system:
        ref = await system.spawn(Echo)

        async def op(i: int) -> Any:
            return await ref.ask(method, i)

        return await _round_trips(op, n, warmup)


async def raw_channel_throughput(n: int) -> float:
    send, recv = trio.open_memory_channel[int](1000)
    done = trio.Event()

    async def consumer() -> None:
        count = 0
        async for _ in recv:
            count += 1
            if count == n:
                done.set()
                return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        t0 = _now()
        for i in range(n):
            await send.send(i)
        await done.wait()
        elapsed = _now() - t0
    return n / (elapsed / 1e9)


async def tell_throughput(n: int) -> float:
    async with open_system(mailbox_size=1000) as system:
        ref = await system.spawn(Echo)
        t0 = _now()
        for _ in range(n):
            await ref.send("hit")
        assert await ref.ask("total") == n
        elapsed = _now() - t0
    return n / (elapsed / 1e9)


def _median_run(results: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in results) for k in results[0]}


async def run(rtt_n: int, tput_n: int, repeat: int) -> dict[str, Any]:
    warmup = max(10, rtt_n // 10)
    raw_rtt: list[dict[str, float]] = []
    sync_rtt: list[dict[str, float]] = []
    async_rtt: list[dict[str, float]] = []
    queued_rtt: list[dict[str, float]] = []
    raw_tput: list[float] = []
    tell_tput: list[float] = []
    # Interleave the configurations so machine noise hits them alike.
    for _ in range(repeat):
        gc.collect()
        raw_rtt.append(_percentiles(await raw_channel_rtt(rtt_n, warmup)))
        sync_rtt.append(_percentiles(await ask_rtt(rtt_n, warmup, "ping")))
        async_rtt.append(_percentiles(await ask_rtt(rtt_n, warmup, "aping")))
        queued_rtt.append(_percentiles(await ask_rtt(rtt_n, warmup, "qping")))
        raw_tput.append(await raw_channel_throughput(tput_n))
        tell_tput.append(await tell_throughput(tput_n))
    raw = _median_run(raw_rtt)
    sync = _median_run(sync_rtt)
    asy = _median_run(async_rtt)
    queued = _median_run(queued_rtt)
    raw_t = statistics.median(raw_tput)
    tell_t = statistics.median(tell_tput)
    return {
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "rtt_iterations": rtt_n,
        "throughput_messages": tput_n,
        "repeat": repeat,
        "raw_channel_rtt": raw,
        "ask_sync_handler_rtt": sync,
        "ask_async_handler_rtt": asy,
        "ratio_ask_sync_p50": sync["p50_us"] / raw["p50_us"],
        "ask_queued_turn_rtt": queued,
        "ratio_ask_async_p50": asy["p50_us"] / raw["p50_us"],
        "ratio_ask_queued_p50": queued["p50_us"] / raw["p50_us"],
        "raw_channel_msgs_per_s": raw_t,
        "tell_msgs_per_s": tell_t,
        "ratio_tell_throughput": tell_t / raw_t,
    }


def _print_table(r: dict[str, Any]) -> None:
    print(f"python {r['python']}, trio {r['trio']}, median of {r['repeat']} runs")
    print(f"{'round trip':36} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'p50/raw':>8}")
    raw = r["raw_channel_rtt"]
    for label, key in [
        ("raw trio memory channel", "raw_channel_rtt"),
        ("ask, def handler (inline)", "ask_sync_handler_rtt"),
        ("ask, async def, no await (inline)", "ask_async_handler_rtt"),
        ("ask, async def that awaits (queued)", "ask_queued_turn_rtt"),
    ]:
        v = r[key]
        ratio = v["p50_us"] / raw["p50_us"]
        print(f"{label:36} {v['p50_us']:8.2f} {v['p90_us']:8.2f} {v['p99_us']:8.2f} {ratio:8.2f}")
    print(f"{'one-way throughput':36} {'msgs/s':>17} {'/raw':>8}")
    print(f"{'raw trio memory channel':36} {r['raw_channel_msgs_per_s']:17,.0f} {1.0:8.2f}")
    print(
        f"{'tell (send, bounded mailbox)':36} {r['tell_msgs_per_s']:17,.0f} "
        f"{r['ratio_tell_throughput']:8.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=20_000, help="round trips per run")
    parser.add_argument("--messages", type=int, default=200_000, help="messages per throughput run")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.messages, args.repeat = 200, 2_000, 1
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = trio.run(run, args.iterations, args.messages, args.repeat)
    _print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
