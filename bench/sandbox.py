"""Sandboxed (WebAssembly) atoms against native ones, measured in one run.

* ask round trip of the same ``def`` handler natively and sandboxed (inline on an
  idle atom), of ``async def`` handlers without an await (inline too) and with
  one (a queued turn), and of the ``def`` handler on a threaded sandboxed atom
  (guest calls on a worker thread);
* the sandboxed round trip split into: host-side serialisation (pickling the
  message at the sender check and for the guest, unpickling the result), the
  guest's own work (decode, handler, encode; timed inside the guest), the
  boundary crossing (one component call, minus the guest's work: bindings,
  lifting/lowering, fuel), and the rest (the runtime's message path);
* instantiating a guest (spawn of a sandboxed atom), resident memory per live
  instance, and loading a compiled component from the disk cache;
* the mean process CPU time per round trip (native, sandboxed, and the component
  call alone), which waiting for a core on a shared machine does not inflate;
* two CPU-bound sandboxed atoms on worker threads (``SandboxConfig(threaded=True)``):
  turns run one after the other, then both at once, the two phases alternating
  ``--rounds`` times; the ratio of the best rounds is the speedup (with the
  process's CPU time per wall-clock second, to tell a busy machine from a
  serialised run, and the load average);
* whether Python keeps running while a guest runs on a worker thread (wasmtime
  releasing the GIL), as a fraction of the same loop's speed alone.

    python bench/sandbox.py            # full run (a minute or two)
    python bench/sandbox.py --smoke    # tiny run that only checks it all works

The first run on a machine also builds and compiles the bench component (cached).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio
import trio.testing

from radon_actors import SandboxConfig, open_system
from radon_actors.bench._suite import guest_atoms
from radon_actors.bench._timing import percentiles
from radon_actors.runtime import _directory
from radon_actors.sandbox import _engine, _instance

Cruncher = guest_atoms().Cruncher  # the shipped guest-safe bench atoms (radon_bench_echo)
Echo = guest_atoms().Echo  # the shipped guest-safe bench atoms (radon_bench_echo)

# The bench atoms are packaged into the guest under their top-level module name,
# whether this runs as `python bench/sandbox.py` or `python -m bench.sandbox`.

_now = time.perf_counter_ns


def _p50_us(samples_ns: list[int]) -> float:
    return sorted(samples_ns)[len(samples_ns) // 2] / 1000


async def _round_trips(op: Callable[[int], Awaitable[Any]], n: int) -> list[int]:
    for i in range(max(10, n // 10)):
        await op(i)
    samples = [0] * n
    now = _now
    for i in range(n):
        t0 = now()
        await op(i)
        samples[i] = now() - t0
    return samples


async def _cpu_us(op: Callable[[int], Awaitable[Any]], n: int) -> float:
    """Mean process CPU time of one ``op``, in us: unlike wall-clock percentiles,
    not inflated by waiting for a core on a shared machine."""
    for i in range(max(10, n // 10)):
        await op(i)
    cpu0 = time.process_time()
    for i in range(n):
        await op(i)
    return (time.process_time() - cpu0) / n * 1e6


def _sync_samples(fn: Callable[[], Any], n: int) -> list[int]:
    for _ in range(max(10, n // 10)):
        fn()
    samples = [0] * n
    now = _now
    for i in range(n):
        t0 = now()
        fn()
        samples[i] = now() - t0
    return samples


async def latency(n: int) -> dict[str, Any]:
    threaded = SandboxConfig(threaded=True)
    async with open_system() as system:
        native = await system.spawn(Echo)
        boxed = await system.spawn(Echo, sandbox=True)
        boxed_threaded = await system.spawn(Echo, sandbox=threaded)
        result: dict[str, Any] = {
            "native_def": percentiles(await _round_trips(lambda i: native.ask(Echo.ping, i), n)),
            "native_async_def": percentiles(
                await _round_trips(lambda i: native.ask(Echo.aping, i), n)
            ),
            "native_async_def_queued": percentiles(
                await _round_trips(lambda i: native.ask(Echo.qping, i), n)
            ),
            "sandboxed_def": percentiles(await _round_trips(lambda i: boxed.ask(Echo.ping, i), n)),
            "sandboxed_async_def_inline": percentiles(
                await _round_trips(lambda i: boxed.ask(Echo.aping, i), n)
            ),
            # An async def with an await: a queued turn (the guest may suspend).
            "sandboxed_async_def": percentiles(
                await _round_trips(lambda i: boxed.ask(Echo.qping, i), n)
            ),
            "sandboxed_threaded_def": percentiles(
                await _round_trips(lambda i: boxed_threaded.ask(Echo.ping, i), n)
            ),
        }
        result["cpu_per_round_trip_us"] = {
            "native_def": await _cpu_us(lambda i: native.ask(Echo.ping, i), n),
            "sandboxed_def": await _cpu_us(lambda i: boxed.ask(Echo.ping, i), n),
        }
        # The split of one sandboxed def round trip.
        cell = _directory.lookup(boxed.id)
        assert cell is not None
        guest: _instance.GuestAtom = cell.instance
        spec = cell.table["ping"]
        check = spec.check
        assert check is not None
        write_message = guest.side.writer.message
        read = guest.side.reader.value
        message = write_message((1,), {})
        reply = "d" + guest.side.writer.value(1)

        def serialisation() -> None:
            check(1)  # the sender-side check (no trial write for scalars)
            write_message((1,), {})
            read(reply, 1)

        def crossing() -> None:
            guest._invoke_sync("handle", "ping", message)

        host_serialisation = _p50_us(_sync_samples(serialisation, n))
        component_call = _p50_us(_sync_samples(crossing, n))
        cpu0 = time.process_time()
        for _ in range(n):
            crossing()
        result["cpu_per_round_trip_us"]["component_call"] = (time.process_time() - cpu0) / n * 1e6
        reps = max(100, n // 10)
        guest_work = await boxed.ask(Echo.guest_work_ns, reps) / 1000
        # Fuel (about one unit per WebAssembly instruction) does not depend on the
        # machine's load: the guest-side cost of one turn, and of the runtime part.
        store = guest._store
        store.set_fuel(10**12)
        guest._invoke_sync("handle", "ping", message)
        handle_fuel = 10**12 - store.get_fuel()
        store.set_fuel(10**12)
        guest._invoke_sync("handle", "guest_work_ns", guest.side.writer.message((reps,), {}))
        runtime_fuel = (10**12 - store.get_fuel()) / reps
        result["guest_fuel_per_turn"] = {
            "handle_call": handle_fuel,
            "guest_runtime": runtime_fuel,
            "bindings_and_dispatch": handle_fuel - runtime_fuel,
        }
        total = result["sandboxed_def"]["p50_us"]
        result["split_p50_us"] = {
            "host_serialisation": host_serialisation,
            "guest_work": guest_work,
            "boundary_crossing": component_call - guest_work,
            "runtime_message_path": total - component_call - host_serialisation,
            "total": total,
        }
    return result


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def instances(count: int) -> dict[str, float]:
    async with open_system() as system:
        await system.spawn(Echo, sandbox=True)  # warm: component loaded, first pages touched
        gc.collect()
        rss0 = _rss_bytes()
        spawn_ns: list[int] = []
        refs = []
        for _ in range(count):
            t0 = _now()
            ref = await system.spawn(Echo, sandbox=True)
            spawn_ns.append(_now() - t0)
            await ref.ask(Echo.ping, 1)
            refs.append(ref)
        rss1 = _rss_bytes()
    # Loading the compiled component from the disk cache (a fresh process's cost).
    module = Echo.__module__
    kept = _engine._loaded.pop(module)
    t0 = _now()
    _engine.load(module)
    load_ms = (_now() - t0) / 1e6
    _engine._loaded[module] = kept
    return {
        "spawn_p50_ms": _p50_us(spawn_ns) / 1000,
        "rss_per_instance_mib": (rss1 - rss0) / count / 2**20,
        "load_cached_component_ms": load_ms,
    }


async def parallel(work: int, turns: int, rounds: int) -> dict[str, float]:
    """Two CPU-bound threaded atoms: ``turns`` turns each one after the other, then
    both at once, interleaved ``rounds`` times (so a burst of load from elsewhere
    hits both phases alike). Both phases run the same turns on the same worker
    threads (limiter of one thread per core); the best round of each phase is
    the least disturbed one."""
    config = SandboxConfig(threaded=True, fuel=10**12)
    async with open_system() as system:
        a = await system.spawn(Cruncher, sandbox=config)
        b = await system.spawn(Cruncher, sandbox=config)
        for ref in (a, b):  # warm-up: both instances and both worker threads
            await ref.ask(Cruncher.crunch, work // 10 + 1)

        async def drive(ref: Any) -> None:
            for _ in range(turns):
                await ref.ask(Cruncher.crunch, work)

        # The control: the same guest calls on two worker threads with none of
        # radon-actors' turn machinery (no cell, limiter, lock or forwarder). If
        # the atoms' speedup matches the control's, nothing of ours serialises
        # the two threads and the rest is the machine.
        guests: list[_instance.GuestAtom] = []
        for ref in (a, b):
            found = _directory.lookup(ref.id)
            assert found is not None
            guests.append(found.instance)
        message = guests[0].side.writer.message((work,), {})

        def bare(guest: _instance.GuestAtom) -> None:
            for _ in range(turns):
                guest._refuel()
                guest._invoke_sync("handle", "crunch", message)

        seq: list[float] = []
        conc: list[float] = []
        ctrl: list[float] = []
        seq_cpu: list[float] = []
        conc_cpu: list[float] = []
        ctrl_cpu: list[float] = []
        for _ in range(rounds):
            t0 = _now()
            cpu0 = time.process_time()
            for _ in range(turns):
                await a.ask(Cruncher.crunch, work)
                await b.ask(Cruncher.crunch, work)
            seq.append((_now() - t0) / 1e9)
            seq_cpu.append((time.process_time() - cpu0) / seq[-1])

            t0 = _now()
            cpu0 = time.process_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(drive, a)
                nursery.start_soon(drive, b)
            conc.append((_now() - t0) / 1e9)
            conc_cpu.append((time.process_time() - cpu0) / conc[-1])

            t0 = _now()
            cpu0 = time.process_time()
            async with trio.open_nursery() as nursery:
                for guest in guests:
                    nursery.start_soon(trio.to_thread.run_sync, bare, guest)
            ctrl.append((_now() - t0) / 1e9)
            ctrl_cpu.append((time.process_time() - cpu0) / ctrl[-1])
    best = conc.index(min(conc))
    return {
        "sequential_s": min(seq),
        "concurrent_s": min(conc),
        "speedup": min(seq) / min(conc),
        "speedup_median": statistics.median(seq) / statistics.median(conc),
        # Close to 2 when both guests really ran at once (the GIL was released),
        # whatever else the machine is doing.
        "concurrent_cpu_per_wall": conc_cpu[best],
        "sequential_cpu_per_wall": seq_cpu[seq.index(min(seq))],
        # CPU time per turn, both at once against one at a time: above 1 when the
        # two cores slow each other down (shared caches, SMT siblings).
        "cpu_per_turn_concurrent_vs_sequential": (
            statistics.median(c * w for c, w in zip(conc_cpu, conc, strict=True))
            / statistics.median(c * w for c, w in zip(seq_cpu, seq, strict=True))
        ),
        "control_speedup": min(seq) / min(ctrl),
        "control_speedup_median": statistics.median(seq) / statistics.median(ctrl),
        "control_cpu_per_wall": ctrl_cpu[ctrl.index(min(ctrl))],
        "load_average": os.getloadavg()[0],
    }


async def gil_check(work: int) -> dict[str, float]:
    """Does Python keep running while a guest call runs on a worker thread?

    The trio thread counts in a tight loop until the guest call (on a worker
    thread) is done. If wasmtime held the GIL the count would stay near zero;
    relative to the same loop alone it shows how much of a core Python still got.
    """
    config = SandboxConfig(fuel=10**13)
    async with open_system() as system:
        ref = await system.spawn(Cruncher, sandbox=config)
        cell = _directory.lookup(ref.id)
        assert cell is not None
        guest: _instance.GuestAtom = cell.instance
        message = guest.side.writer.message((work,), {})

        done: list[bool] = []

        def spin(limit: float) -> float:
            # The same loop alone and beside the guest: iterations per second.
            t0 = time.perf_counter()
            count = 0
            while not done and time.perf_counter() - t0 < limit:
                count += 1
            return count / (time.perf_counter() - t0)

        solo = spin(0.2)

        def in_thread() -> None:
            guest._invoke_sync("handle", "crunch", message)
            done.append(True)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, in_thread)
            await trio.testing.wait_all_tasks_blocked(0.01)
            # Blocks trio on purpose: the worker thread needs nothing from it.
            beside = spin(1e9)
    return {"python_progress_while_guest_runs": beside / solo}


async def run(
    n: int, count: int, work: int, turns: int, rounds: int, repeat: int
) -> dict[str, Any]:
    # Make sure the component is ready before anything is timed.
    await trio.to_thread.run_sync(_engine.load, Echo.__module__)
    lat = [await latency(n) for _ in range(repeat)]
    par = [await parallel(work, turns, rounds) for _ in range(repeat)]
    inst = await instances(count)
    gil = await gil_check(max(work * 3, 1_000_000))

    def med(rows: list[dict[str, Any]], key: str) -> Any:
        first = rows[0][key]
        if isinstance(first, dict):
            return {k: statistics.median(r[key][k] for r in rows) for k in first}
        return statistics.median(r[key] for r in rows)

    return {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "repeat": repeat,
        "iterations": n,
        "latency": {k: med(lat, k) for k in lat[0]},
        "parallel": {k: med(par, k) for k in par[0]},
        "instances": inst,
        "gil": gil,
    }


def _print(r: dict[str, Any]) -> None:
    lat = r["latency"]
    print(f"python {r['python']}, {r['cpus']} cpus, median of {r['repeat']} runs")
    print(f"{'ask round trip':42} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8}")
    for label, key in [
        ("native, def handler (inline)", "native_def"),
        ("native, async def, no await (inline)", "native_async_def"),
        ("native, async def with await (queued)", "native_async_def_queued"),
        ("sandboxed, def handler (inline)", "sandboxed_def"),
        ("sandboxed, async def, no await (inline)", "sandboxed_async_def_inline"),
        ("sandboxed, async def with await (queued)", "sandboxed_async_def"),
        ("sandboxed threaded, def handler", "sandboxed_threaded_def"),
    ]:
        v = lat[key]
        print(f"{label:42} {v['p50_us']:8.1f} {v['p90_us']:8.1f} {v['p99_us']:8.1f}")
    cpu = lat["cpu_per_round_trip_us"]
    print(
        f"mean CPU time per round trip (us): native def {cpu['native_def']:.1f}, sandboxed def "
        f"{cpu['sandboxed_def']:.1f}, of which the component call {cpu['component_call']:.1f}"
    )
    split = lat["split_p50_us"]
    print("sandboxed def round trip, p50 split (us):")
    for key in ("host_serialisation", "guest_work", "boundary_crossing", "runtime_message_path"):
        print(f"  {key:36} {split[key]:8.1f}")
    fuel = lat["guest_fuel_per_turn"]
    print(
        f"guest instructions (fuel) per def turn: {fuel['handle_call']:,.0f} "
        f"(guest runtime {fuel['guest_runtime']:,.0f}, "
        f"bindings and dispatch {fuel['bindings_and_dispatch']:,.0f})"
    )
    inst = r["instances"]
    print(f"spawn of a sandboxed atom (p50):       {inst['spawn_p50_ms']:8.2f} ms")
    print(f"resident memory per live instance:     {inst['rss_per_instance_mib']:8.2f} MiB")
    print(f"load compiled component from cache:    {inst['load_cached_component_ms']:8.2f} ms")
    par = r["parallel"]
    print(
        f"2 CPU-bound sandboxed atoms, threaded:  sequential {par['sequential_s']:.2f} s, "
        f"concurrent {par['concurrent_s']:.2f} s (best rounds), speedup {par['speedup']:.2f}x "
        f"(of medians {par['speedup_median']:.2f}x; process CPU/wall: sequential "
        f"{par['sequential_cpu_per_wall']:.2f}, concurrent {par['concurrent_cpu_per_wall']:.2f}; "
        f"load average {par['load_average']:.2f})"
    )
    print(
        f"  control (the same guest calls on two bare worker threads): speedup "
        f"{par['control_speedup']:.2f}x (of medians {par['control_speedup_median']:.2f}x, "
        f"CPU/wall {par['control_cpu_per_wall']:.2f}); CPU per turn when both run at once: "
        f"{par['cpu_per_turn_concurrent_vs_sequential']:.2f}x that of one at a time"
    )
    gil = r["gil"]
    print(
        f"Python progress on the trio thread while a guest runs on a worker thread: "
        f"{gil['python_progress_while_guest_runs']:.2f} of its solo rate (0 if the GIL were held)"
    )
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.2f} on {r['cpus']} cpus")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=5_000, help="round trips per run")
    parser.add_argument("--instances", type=int, default=50, help="instances for memory/spawn")
    parser.add_argument("--work", type=int, default=300_000, help="loop length of one crunch")
    parser.add_argument("--turns", type=int, default=4, help="crunch turns per atom")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved parallel rounds")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.instances, args.work, args.turns, args.repeat = 100, 3, 20_000, 1, 1
        args.rounds = 1
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = trio.run(
        run, args.iterations, args.instances, args.work, args.turns, args.rounds, args.repeat
    )
    _print(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
