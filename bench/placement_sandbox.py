"""Sandboxed atoms across processes: component shipping, round trip, migration.

Measured in one run, on this machine:

* shipping: the first ``spawn(Echo, sandbox=True, host=...)`` on a worker host
  whose sandbox cache is empty (the component, about 19 MB, is sent in 1 MiB
  parts, verified, stored and compiled there), then a second spawn on the same
  host (nothing is sent); meanwhile a task keeps asking a native atom on that
  host, and the slowest of those asks shows how long the transfer held up the
  connection's other traffic (the compile runs on a worker thread);
* the cross-process ``ask`` round trip to a native and to a sandboxed atom on a
  worker host (plain ``def`` handler), p50/p90/p99;
* ``system.migrate`` duration, native and sandboxed, while the atom receives a
  continuous stream of tells, moving back and forth between this process and a
  worker (the first move each way is a warm-up, left out).

    python bench/placement_sandbox.py            # full run (~1 min, plus a build
                                                 # of the component on first use)
    python bench/placement_sandbox.py --smoke    # tiny run that only checks it works
                                                 # (with this machine's cache)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import structlog
import trio

from radon_actors import open_system
from radon_actors.bench._suite import guest_atoms
from radon_actors.bench._timing import percentiles

Echo = guest_atoms().Echo  # the shipped guest-safe bench atoms (radon_bench_echo)


_now = time.perf_counter_ns


async def _rtt(ref: Any, n: int) -> list[int]:
    for i in range(max(10, n // 10)):
        await ref.ask(Echo.ping, i)
    samples = [0] * n
    for i in range(n):
        t0 = _now()
        await ref.ask(Echo.ping, i)
        samples[i] = _now() - t0
    return samples


async def _ship(system: Any, cache: str | None) -> dict[str, float]:
    """Spawn on a host with an empty cache (``cache``; None: this machine's
    cache) while pinging a native atom there."""
    from radon_actors.placement._node import Node

    if cache is None:
        await system.start_host("fresh")
    else:
        os.environ["RADON_SANDBOX_CACHE"] = cache
        try:
            await system.start_host("fresh")
        finally:
            del os.environ["RADON_SANDBOX_CACHE"]
    native = await system.spawn(Echo, host="fresh")
    asks: list[tuple[int, int]] = []  # (start, duration) of each ask meanwhile
    done = False
    parts_sent = 0  # when the last part was sent: the host then verifies and compiles
    request = Node.request

    async def timed_request(self: Node, peer: Any, frame: Any) -> Any:
        nonlocal parts_sent
        if frame[0] == "code_done":
            parts_sent = _now()
        return await request(self, peer, frame)

    async def ping() -> None:
        while not done:
            t0 = _now()
            await native.ask(Echo.ping, 0)
            asks.append((t0, _now() - t0))

    Node.request = timed_request  # type: ignore[method-assign]
    try:
        async with trio.open_nursery() as nursery:
            await _rtt(native, 50)
            nursery.start_soon(ping)
            started = _now()
            await system.spawn(Echo, sandbox=True, host="fresh")
            first = _now() - started
            done = True
    finally:
        Node.request = request  # type: ignore[method-assign]
    t0 = _now()
    await system.spawn(Echo, sandbox=True, host="fresh")
    second = _now() - t0
    during_transfer = [d for start, d in asks if start < parts_sent] or [0]
    during_compile = [d for start, d in asks if start >= parts_sent] or [0]
    return {
        "first_spawn_s": first / 1e9,
        "transfer_s": (parts_sent - started) / 1e9 if parts_sent else 0.0,
        "second_spawn_ms": second / 1e6,
        "asks_meanwhile": len(asks),
        "slowest_ask_during_transfer_ms": max(during_transfer) / 1e6,
        "median_ask_during_transfer_ms": statistics.median(during_transfer) / 1e6,
        "slowest_ask_during_compile_ms": max(during_compile) / 1e6,
    }


async def _migrations(system: Any, sandbox: bool, moves: int) -> list[int]:
    ref = await system.spawn(Echo, sandbox=sandbox)
    stop = trio.Event()

    async def stream() -> None:
        sent = 0
        while not stop.is_set():
            await ref.send(Echo.ping, sent)
            sent += 1
            if sent % 200 == 0:  # flow control
                await ref.ask(Echo.ping, sent)

    durations: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream)
        for i in range(moves + 2):
            for _ in range(5):
                await ref.ask(Echo.ping, i)  # let some messages through
            t0 = _now()
            await system.migrate(ref, to="w1" if i % 2 == 0 else "local")
            if i >= 2:  # the first move each way warms up
                durations.append(_now() - t0)
        stop.set()
    await system.stop(ref)
    return durations


async def run(rtt_n: int, moves: int, repeat: int, empty_cache: bool) -> dict[str, Any]:
    from radon_actors.sandbox import _engine

    t0 = _now()
    await trio.to_thread.run_sync(_engine.load, Echo.__module__)
    load_s = (_now() - t0) / 1e9
    native_runs: list[dict[str, float]] = []
    sandboxed_runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="radon-bench-cache-") as cache:
        async with open_system() as system:
            try:
                ship = await _ship(system, cache if empty_cache else None)
                await system.start_host("w1")
                native = await system.spawn(Echo, host="w1")
                sandboxed = await system.spawn(Echo, sandbox=True, host="w1")
                for _ in range(repeat):
                    native_runs.append(percentiles(await _rtt(native, rtt_n)))
                    sandboxed_runs.append(percentiles(await _rtt(sandboxed, rtt_n)))
                native_moves = percentiles(await _migrations(system, False, moves))
                sandboxed_moves = percentiles(await _migrations(system, True, moves))
            finally:
                node: Any = system._placement
                if node is not None:
                    for proc in node.processes.values():
                        if proc.returncode is None:
                            proc.kill()

    def median(runs: list[dict[str, float]]) -> dict[str, float]:
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    return {
        "python": sys.version.split()[0],
        "rtt_iterations": rtt_n,
        "repeat": repeat,
        "migrations": moves,
        "local_load_s": load_s,
        "empty_cache": empty_cache,
        "shipping": ship,
        "ask_rtt_native": median(native_runs),
        "ask_rtt_sandboxed": median(sandboxed_runs),
        "migrate_native": {k.replace("_us", "_ms"): v / 1000 for k, v in native_moves.items()},
        "migrate_sandboxed": {
            k.replace("_us", "_ms"): v / 1000 for k, v in sandboxed_moves.items()
        },
    }


def _print_table(r: dict[str, Any]) -> None:
    s = r["shipping"]
    print(f"python {r['python']}; the component loaded here in {r['local_load_s']:.2f} s")
    cache = "an empty cache" if r["empty_cache"] else "this machine's cache"
    if s["transfer_s"]:
        how = "sent, verified, compiled there"
        meanwhile = (
            f"native asks to that host meanwhile ({s['asks_meanwhile']}): during the transfer "
            f"({s['transfer_s']:.2f} s) median {s['median_ask_during_transfer_ms']:.2f} ms, "
            f"slowest {s['slowest_ask_during_transfer_ms']:.1f} ms; during the compile, "
            f"slowest {s['slowest_ask_during_compile_ms']:.1f} ms"
        )
    else:
        how = "nothing sent: the host had it in its disk cache"
        meanwhile = ""
    print(
        f"first sandboxed spawn on a host with {cache}: {s['first_spawn_s']:.2f} s "
        f"({how}); second: {s['second_spawn_ms']:.1f} ms"
    )
    if meanwhile:
        print(meanwhile)
    print(f"{'ask round trip, atom on a worker':34} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8}")
    for label, key in [("native", "ask_rtt_native"), ("sandboxed", "ask_rtt_sandboxed")]:
        v = r[key]
        print(f"{label:34} {v['p50_us']:8.1f} {v['p90_us']:8.1f} {v['p99_us']:8.1f}")
    print(f"{'migrate() under a stream of tells':34} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}")
    for label, key in [("native", "migrate_native"), ("sandboxed", "migrate_sandboxed")]:
        v = r[key]
        print(f"{label:34} {v['p50_ms']:8.2f} {v['p90_ms']:8.2f} {v['p99_ms']:8.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=3_000, help="round trips per run")
    parser.add_argument("--migrations", type=int, default=60, help="migrations measured, per kind")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the round trips")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--shared-cache",
        action="store_true",
        help="the first host uses this machine's sandbox cache (no compile if it has it)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        # seconds, not the compile on an empty cache (the tests cover that path)
        args.iterations, args.migrations, args.repeat = 50, 4, 1
        args.shared_cache = True
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = trio.run(run, args.iterations, args.migrations, args.repeat, not args.shared_cache)
    _print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
