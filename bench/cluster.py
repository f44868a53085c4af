"""Clusters: what a message to an on-demand atom costs when the key is active
in another member (docs/cluster.md), against the same ask to an atom on a
worker host (the cross-process floor of placement), in one run:

* the floor: ``ask`` round trip to an atom on a worker host, p50/p99;
* from a client of the cluster (``activates=False``) to a key active in a
  ``radon member`` process: ask p50/p99 through a held Ref, and asks/s with a
  held Ref and with a Ref made per ask (``system.get(...).ask(...)``);
* from a member to a key active in another member: ask p50/p99;
* cold activation through a client (the member claims the key in the store,
  then activates it), p50/p99.

Two ``radon member`` processes share an SQLite store in a temporary directory.

    python bench/cluster.py            # full run
    python bench/cluster.py --smoke    # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from radon_actors import Cluster, open_system
from radon_actors.bench._process import first_line
from radon_actors.durable import store_from_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: ``bench`` is importable from the checkout
from bench._cluster_atoms import Echo  # noqa: E402


def _pct(samples: list[int]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)
    return {"p50_us": s[n // 2] / 1000, "p99_us": s[min(n - 1, int(n * 0.99))] / 1000}


async def _latency(ref: Any, n: int) -> dict[str, float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        await ref.ask(Echo.ping, i)
        samples.append(time.perf_counter_ns() - t0)
    return _pct(samples)


@asynccontextmanager
async def _members(count: int, secret: bytes, store: str, scratch: Path) -> AsyncIterator[None]:
    secret_file = scratch / "secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    procs = []
    try:
        for i in range(count):
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "radon_actors._cli", "member", "--cluster", "bench",
                 "--secret-file", str(secret_file), "--state-store", store, "--name", f"m{i}",
                 "--path", str(ROOT), "--log-level", "error"],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            procs.append(proc)
        for proc in procs:
            await first_line(proc, "a radon member", timeout=60)  # READY: it joined
        yield
    finally:
        for proc in procs:
            proc.kill()
        with trio.CancelScope(shield=True):
            for proc in procs:
                await proc.wait()


async def run(n: int, keys: int) -> dict[str, Any]:
    results: dict[str, Any] = {"n": n}
    async with open_system() as system:
        await system.start_host("w1")
        ref = await system.spawn(Echo, host="w1")
        await ref.ask(Echo.ping, 0)
        results["worker_host_ask"] = await _latency(ref, n)
    secret = secrets.token_hex(32).encode()
    with tempfile.TemporaryDirectory() as scratch:
        store = f"sqlite:///{Path(scratch) / 'cluster.sqlite3'}"
        async with _members(2, secret, store, Path(scratch)):
            client = Cluster("bench", secret, activates=False)
            async with open_system(state_store=store_from_url(store), cluster=client) as system:
                cold = []
                for k in range(keys):
                    t0 = time.perf_counter_ns()
                    await system.get(Echo, f"k{k}").ask(Echo.ping, 0)
                    cold.append(time.perf_counter_ns() - t0)
                results["cold_activation_from_client"] = _pct(cold)
                ref = system.get(Echo, "k0")
                results["client_ask"] = await _latency(ref, n)
                for label in ("held", "per_ask"):
                    t0 = time.perf_counter_ns()
                    for i in range(n):
                        target = ref if label == "held" else system.get(Echo, "k0")
                        await target.ask(Echo.ping, i)
                    seconds = (time.perf_counter_ns() - t0) / 1e9
                    results[f"client_asks_per_s_{label}"] = n / seconds
            # This process as a member: k0 is active in another.
            member = Cluster("bench", secret)
            async with open_system(state_store=store_from_url(store), cluster=member) as system:
                ref = system.get(Echo, "k0")
                assert await ref.ask(Echo.pid) != os.getpid()
                results["member_ask"] = await _latency(ref, n)
    return results


def _report(r: dict[str, Any]) -> None:
    w = sys.stdout.write
    floor = r["worker_host_ask"]["p50_us"]
    w(f"clusters ({r['n']} asks per figure; two radon member processes, SQLite)\n")
    for key, label in (
        ("worker_host_ask", "ask, worker host (the floor)"),
        ("client_ask", "ask, client -> member"),
        ("member_ask", "ask, member -> member"),
        ("cold_activation_from_client", "cold activation, from a client"),
    ):
        p = r[key]
        w(f"  {label:<34}{p['p50_us']:>9.0f} / {p['p99_us']:<7.0f} us p50/p99")
        w(f"   {p['p50_us'] / floor:5.2f}x the floor\n")
    w(
        f"  client asks/s: {r['client_asks_per_s_held']:,.0f} through a held Ref, "
        f"{r['client_asks_per_s_per_ask']:,.0f} with a Ref made per ask\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Clusters: forwarded asks and activation.")
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--samples", type=int, default=2000, help="asks per figure")
    parser.add_argument("--keys", type=int, default=500, help="keys for the cold activations")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.keys = 20, 10
    if args.samples < 1 or args.keys < 1:
        parser.error("--samples and --keys take positive numbers")
    results = trio.run(run, args.samples, args.keys)
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
