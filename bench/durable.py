"""Durable atoms: what activation, saving and reminders cost (issue #19).

Per store (SQLite in a temporary directory; Redis, on a redis-server this
script starts on a free port, if one is installed), each also in a cluster of
one member (``open_system(cluster=...)``: an activation first claims its key
in the store, docs/cluster.md), in one run:

* cold activation: ``system.get(cls, key).ask(...)`` of a key whose state is
  stored and that has no activation (its state read, a cell built, its
  ``on_start`` run, the ask answered), p50/p99;
* save: an ask whose handler changes the state and awaits ``save()``, p50/p99;
* writes/s with 100 atoms saving at once;
* reminder tardiness: how late reminders due at one moment are delivered.

Then, without a store, the on-demand machinery itself:

* activations/s of a trivial on-demand atom (a fresh key per ask), and the
  resident memory per idle activation (daemons: never collected);
* for comparison, ``system.spawn`` of the same trivial atom: spawns/s and the
  resident memory per idle spawned atom;
* collection: distinct keys touched one after the other with a short
  ``collect_after``, and the process's peak resident memory (it must stay
  bounded: collected activations go).

    python bench/durable.py            # full run
    python bench/durable.py --smoke    # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import gc
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import trio
import trio.lowlevel

from radon_actors import (
    Atom,
    Cluster,
    RedisStore,
    SQLiteStore,
    System,
    handler,
    open_system,
    state,
)
from radon_actors.durable import StateStore

_now = time.perf_counter_ns


class Account(Atom):
    durable_type = "bench.account"
    balance = state(int)

    @handler
    def get(self) -> int:
        return self.balance.value

    @handler
    async def deposit(self, n: int) -> int:
        self.balance.value += n
        await self.balance.save()
        return self.balance.value


class Alarm(Atom):
    """An on-demand atom that records when its reminder rang."""

    durable_type = "bench.alarm"
    rang: ClassVar[list[tuple[float, float]]] = []  # (due, delivered), trio clock
    done: ClassVar[trio.Event | None] = None
    expected: ClassVar[int] = 0

    @handler
    async def arm(self, due_at: float, delay: float) -> None:
        await self.remind("ring", Alarm.ring, due_at, due=delay)

    @handler
    def ring(self, due_at: float) -> None:
        Alarm.rang.append((due_at, trio.current_time()))
        if len(Alarm.rang) >= Alarm.expected and Alarm.done is not None:
            Alarm.done.set()


class Trivial(Atom):
    """The cheapest on-demand atom: no state, never collected."""

    daemon = True

    @handler
    def hit(self) -> int:
        return 1


class Spawned(Atom):
    """The cheapest spawned atom (``system.spawn``)."""

    @handler
    def hit(self) -> int:
        return 1


class Fleeting(Atom):
    """An on-demand atom collected a tenth of a second after its last message."""

    collect_after = 0.1

    @handler
    def hit(self) -> int:
        return 1


def _pct(samples: list[int]) -> dict[str, float]:
    s = sorted(samples)
    n = len(s)
    return {"p50_us": s[n // 2] / 1000, "p99_us": s[min(n - 1, int(n * 0.99))] / 1000}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _store_figures(
    make: Callable[[], StateStore], n: int, cluster: Cluster | None = None
) -> dict[str, Any]:
    """The store's figures; with ``cluster``, in a cluster of one member (each
    activation first claims its key in the store: docs/cluster.md)."""
    out: dict[str, Any] = {}
    async with open_system(state_store=make(), cluster=cluster) as system:
        # Seed n accounts, then let them be collected by a fresh system.
        for i in range(n):
            await system.get(Account, f"a{i}").ask(Account.deposit, 1)
    async with open_system(state_store=make(), cluster=cluster) as system:
        cold = []
        for i in range(n):
            t0 = _now()
            await system.get(Account, f"a{i}").ask(Account.get)
            cold.append(_now() - t0)
        out["cold_activation"] = _pct(cold)
        ref = system.get(Account, "a0")
        saves = []
        for i in range(n):
            t0 = _now()
            await ref.ask(Account.deposit, i)
            saves.append(_now() - t0)
        out["save"] = _pct(saves)
        writers = [system.get(Account, f"a{i}") for i in range(min(100, n))]
        per = max(n // len(writers), 1)
        t0 = _now()
        async with trio.open_nursery() as nursery:
            for ref in writers:

                async def write(ref: Any = ref) -> None:
                    for j in range(per):
                        await ref.ask(Account.deposit, j)

                nursery.start_soon(write)
        out["writes_per_s_100_atoms"] = len(writers) * per / ((_now() - t0) / 1e9)
        # Reminder tardiness: reminders all due at one moment, far enough ahead
        # that arming them all (an activation and a store write each, up to a
        # few ms on a loaded machine) is done by then.
        count = min(n, 200)
        Alarm.rang = []
        Alarm.expected = count
        Alarm.done = trio.Event()
        due_at = trio.current_time() + 0.2 + 0.01 * count
        for i in range(count):
            await system.get(Alarm, f"r{i}").ask(Alarm.arm, due_at, due_at - trio.current_time())
        with trio.fail_after(60):
            await Alarm.done.wait()
        late = [int((delivered - due) * 1e9) for due, delivered in Alarm.rang]
        out["reminder_tardiness"] = _pct(late)
    return out


async def _many(n: int, make: Callable[[System, int], Awaitable[object]]) -> dict[str, Any]:
    """``n`` atoms made one after the other in a fresh system: how many per
    second, and what each idle one costs: the resident memory grown (what the
    process pays, allocator included) and the Python heap grown (tracemalloc,
    over another, untimed batch: exact, but blind to the allocator's slack)."""
    gc.collect()
    async with open_system() as system:
        before = _rss_kib()
        t0 = _now()
        for i in range(n):
            await make(system, i)
        elapsed = (_now() - t0) / 1e9
        gc.collect()
        grown = _rss_kib() - before
        traced = min(n, 5_000)
        tracemalloc.start()
        heap0 = tracemalloc.get_traced_memory()[0]
        for i in range(n, n + traced):
            await make(system, i)
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] - heap0
        tracemalloc.stop()
    return {
        "per_s": n / elapsed,
        "kib_per_idle_atom": grown / n,
        "heap_bytes_per_idle_atom": heap / traced,
    }


async def _activate(system: System, i: int) -> object:
    return await system.get(Trivial, f"t{i}").ask(Trivial.hit)


async def _spawn(system: System, i: int) -> object:
    return await system.spawn(Spawned)


async def _collection(n: int) -> dict[str, Any]:
    gc.collect()
    async with open_system() as system:
        start = peak = _rss_kib()
        for i in range(n):
            await system.get(Fleeting, f"f{i}").ask(Fleeting.hit)
            if i % 1000 == 0:
                peak = max(peak, _rss_kib())
                await trio.lowlevel.checkpoint()  # lets the collector run between bursts
        peak = max(peak, _rss_kib())
        active = len(system.durability().activations.active)  # type: ignore[attr-defined]
    return {"keys": n, "rss_start_kib": start, "rss_peak_kib": peak, "active_at_end": active}


@asynccontextmanager
async def _redis() -> AsyncIterator[str | None]:
    if shutil.which("redis-server") is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await trio.lowlevel.open_process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(30):
            while b"Ready to accept connections" not in seen:
                chunk = await proc.stdout.receive_some()
                if not chunk:
                    raise RuntimeError("redis-server exited")
                seen += chunk
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def run(n: int, activations: int, keys: int) -> dict[str, Any]:
    results: dict[str, Any] = {"n": n}
    # First, in a process whose heap has not yet grown and shrunk (memory freed
    # by an earlier phase would hide what these atoms take).
    results["on_demand"] = await _many(activations, _activate)
    results["spawn"] = await _many(activations, _spawn)
    cluster = Cluster("bench", secrets.token_bytes(32))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.sqlite3"
        results["sqlite"] = await _store_figures(lambda: SQLiteStore(path), n)
        path = Path(scratch) / "cluster.sqlite3"
        results["sqlite, cluster"] = await _store_figures(lambda: SQLiteStore(path), n, cluster)
    async with _redis() as url:
        if url is not None:
            results["redis"] = await _store_figures(lambda: RedisStore(url), n)
            results["redis, cluster"] = await _store_figures(
                lambda: RedisStore(url, prefix="radon:cluster:"), n, cluster
            )
    results["collection"] = await _collection(keys)
    return results


def _report(results: dict[str, Any]) -> None:
    w = sys.stdout.write
    w(
        f"durable atoms ({results['n']} samples per figure; "
        f"GC threshold {results['gc_threshold']})\n"
    )
    w(f"{'store':<16}{'cold activation p50/p99 us':>30}{'save p50/p99 us':>22}")
    w(f"{'writes/s (100 atoms)':>22}{'reminder late p50/p99 ms':>28}\n")
    for name in ("sqlite", "sqlite, cluster", "redis", "redis, cluster"):
        r = results.get(name)
        if r is None:
            w(f"{name:<16}  not run (no redis-server)\n")
            continue
        c, s, t = r["cold_activation"], r["save"], r["reminder_tardiness"]
        w(f"{name:<16}{c['p50_us']:>18.0f} / {c['p99_us']:<9.0f}")
        w(f"{s['p50_us']:>12.0f} / {s['p99_us']:<7.0f}")
        w(f"{r['writes_per_s_100_atoms']:>20,.0f}")
        w(f"{t['p50_us'] / 1000:>18.1f} / {t['p99_us'] / 1000:<7.1f}\n")
    a = results["on_demand"]
    w(
        f"on-demand, no store: {a['per_s']:,.0f} activations/s; per idle activation "
        f"{a['kib_per_idle_atom']:.2f} KiB resident, {a['heap_bytes_per_idle_atom']:,.0f} B "
        "of Python heap\n"
    )
    sp = results["spawn"]
    w(
        f"system.spawn, same atom: {sp['per_s']:,.0f} spawns/s; per idle atom "
        f"{sp['kib_per_idle_atom']:.2f} KiB resident, {sp['heap_bytes_per_idle_atom']:,.0f} B "
        "of Python heap\n"
    )
    c = results["collection"]
    w(
        f"collection: {c['keys']:,} keys touched once each, RSS {c['rss_start_kib'] / 1024:.0f} "
        f"-> peak {c['rss_peak_kib'] / 1024:.0f} MiB, {c['active_at_end']} active at the end\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Durable atoms: activation, saves, reminders.")
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--samples", type=int, default=2000, help="samples per figure")
    parser.add_argument("--activations", type=int, default=20000, help="on-demand activations")
    parser.add_argument("--keys", type=int, default=200000, help="keys for the collection run")
    parser.add_argument(
        "--gc-threshold",
        type=int,
        default=None,
        help="the cyclic GC's first threshold for the run (gc.set_threshold; "
        "default: Python's, 700): what an application with many atoms can tune",
    )
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.activations, args.keys = 20, 200, 2000
    if args.gc_threshold is not None:
        if args.gc_threshold < 1:
            parser.error("--gc-threshold takes a positive number")
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    results = trio.run(run, args.samples, args.activations, args.keys)
    results["gc_threshold"] = gc.get_threshold()[0]
    _report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
