"""A JavaScript atom beside its Python twin, both sandboxed, measured in one run.

The same atom written twice (``Polyglot`` in tests/atoms/sandbox_atoms.py and
tests/atoms/js/polyglot.js), each run from its component:

* ask round trip of a plain handler (``incr``, inline on an idle atom) and of an
  async one that asks a native atom twice (``forward``: two suspensions), with
  the raw trio channel ping-pong of the same run as the floor;
* the plain ask's JavaScript/Python ratio from paired blocks (a Python block
  and a JavaScript block back to back, four pairs per ``--repeat``), the
  figure to read on a machine whose speed changes: the medians above come
  from runs seconds apart;
* the guest's instructions (fuel) per plain turn, which the machine's load
  does not change;
* spawning an instance (p50), resident memory per live instance, the
  component's size, compiling it for this machine, and (``--cold``) building it
  from source into an empty cache (componentize-js under Node; componentize-py).

    python bench/polyglot.py            # full run (a minute or two; --cold adds builds)
    python bench/polyglot.py --smoke    # tiny run that only checks it all works

Needs Node.js and ``npm ci`` (componentize-js) for the JavaScript atom.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import trio
import wasmtime
from wasmtime import component as wc

from radon_actors import Ref, SandboxConfig, System, open_system
from radon_actors.bench._timing import percentiles, raw_channel_rtt
from radon_actors.runtime import _directory
from radon_actors.sandbox import _build, _engine, _instance
from radon_actors.sandbox._jsbuild import build_js

ROOT = Path(__file__).resolve().parents[1]
ATOMS = ROOT / "tests" / "atoms"
JS = ATOMS / "js" / "polyglot.js"
sys.path.insert(0, str(ATOMS))

from sandbox_atoms import Counter, Polyglot  # noqa: E402  (the twins' Python half)

_now = time.perf_counter_ns
Spawn = Callable[[System], Awaitable[Ref[Any]]]


async def _samples(op: Callable[[], Awaitable[Any]], n: int) -> list[int]:
    for _ in range(max(10, n // 10)):
        await op()
    out = [0] * n
    for i in range(n):
        t0 = _now()
        await op()
        out[i] = _now() - t0
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(spawn: Spawn, n: int, count: int) -> dict[str, Any]:
    async with open_system() as system:
        atom = await spawn(system)
        native = await system.spawn(Counter, 0)
        result: dict[str, Any] = {
            "ask": percentiles(await _samples(lambda: atom.ask("incr", 1), n)),
            "ask_forward": percentiles(
                await _samples(lambda: atom.ask("forward", native, 1), max(20, n // 5))
            ),
        }
        cell = _directory.lookup(atom.id)
        assert cell is not None
        guest: _instance.GuestAtom = cell.instance
        store = guest._store
        store.set_fuel(10**12)
        guest._invoke_sync("handle", "incr", guest.side.writer.message((1,), {}))
        result["fuel_per_turn"] = 10**12 - store.get_fuel()
        gc.collect()
        rss0 = _rss_bytes()
        spawns = []
        refs = []
        for _ in range(count):
            t0 = _now()
            ref = await spawn(system)
            await ref.ask("incr", 1)
            spawns.append(_now() - t0)
            refs.append(ref)
        gc.collect()
        result["spawn_p50_ms"] = sorted(spawns)[len(spawns) // 2] / 1e6
        result["rss_per_instance_mib"] = (_rss_bytes() - rss0) / count / 2**20
    return result


async def paired(spawn_py: Spawn, spawn_js: Spawn, n: int, blocks: int) -> list[float]:
    """The plain ask's p50, JavaScript over Python, in alternating blocks of
    ``n`` asks: each ratio from two blocks measured back to back, so that a
    change in the machine's speed (this one flips between states a third
    apart) hits both sides of it."""
    async with open_system() as system:
        py, js = await spawn_py(system), await spawn_js(system)
        ratios = []
        for _ in range(blocks):
            a = percentiles(await _samples(lambda: py.ask("incr", 1), n))["p50_us"]
            b = percentiles(await _samples(lambda: js.ask("incr", 1), n))["p50_us"]
            ratios.append(b / a)
    return ratios


def _compile_s(wasm: Path) -> float:
    config = wasmtime.Config()
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    data = wasm.read_bytes()
    t0 = time.perf_counter()
    wc.Component(engine, data)
    return time.perf_counter() - t0


def cold_builds() -> dict[str, float]:
    """Build both components from source into an empty cache (not the user's)."""
    saved = os.environ.get("RADON_SANDBOX_CACHE")
    with tempfile.TemporaryDirectory(prefix="radon-bench-cache-") as tmp:
        os.environ["RADON_SANDBOX_CACHE"] = tmp
        try:
            t0 = time.perf_counter()
            build_js(JS)
            js_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            _build.build_component("sandbox_atoms")
            py_s = time.perf_counter() - t0
        finally:
            if saved is None:
                os.environ.pop("RADON_SANDBOX_CACHE", None)
            else:
                os.environ["RADON_SANDBOX_CACHE"] = saved
    return {"javascript_build_s": js_s, "python_build_s": py_s}


async def run(n: int, count: int, repeat: int, cold: bool, compile_: bool = True) -> dict[str, Any]:
    js = await trio.to_thread.run_sync(build_js, JS)
    py = await trio.to_thread.run_sync(_engine.load, "sandbox_atoms")
    py_wasm = _build.cache_root() / py.key / "component.wasm"
    config = SandboxConfig()

    async def spawn_py(system: System) -> Ref[Any]:
        return await system.spawn(Polyglot, sandbox=config)

    async def spawn_js(system: System) -> Ref[Any]:
        return await system.spawn_component(js.wasm, "Polyglot", sandbox=config)

    floor, python, javascript = [], [], []
    for _ in range(repeat):  # alternated, so that a noisy moment hits both
        floor.append(percentiles(await raw_channel_rtt(n, max(10, n // 10))))
        python.append(await measure(spawn_py, n, count))
        javascript.append(await measure(spawn_js, n, count))

    ratios = await paired(spawn_py, spawn_js, max(50, n // 3), 4 * repeat)

    def med(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, first in rows[0].items():
            if isinstance(first, dict):
                out[key] = {k: statistics.median(r[key][k] for r in rows) for k in first}
            else:
                out[key] = statistics.median(r[key] for r in rows)
        return out

    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "repeat": repeat,
        "iterations": n,
        "raw_trio_channel": med(floor),
        "python_sandboxed": med(python),
        "javascript": med(javascript),
        "ask_p50_ratio_paired": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
            "blocks": len(ratios),
        },
        "component_mib": {
            "python_sandboxed": py_wasm.stat().st_size / 2**20,
            "javascript": js.wasm.stat().st_size / 2**20,
        },
    }
    if compile_:  # half a minute of compiling: not in a smoke run
        result["compile_s"] = {
            "python_sandboxed": _compile_s(py_wasm),
            "javascript": _compile_s(js.wasm),
        }
    if cold:
        result["cold_build"] = await trio.to_thread.run_sync(cold_builds)
    return result


def _print(r: dict[str, Any]) -> None:
    py, js, floor = r["python_sandboxed"], r["javascript"], r["raw_trio_channel"]
    print(
        f"python {r['python']}, {r['cpus']} cpus, load average {r['load_average']:.2f}, "
        f"median of {r['repeat']} runs"
    )
    print(f"{'':44} {'Python':>12} {'JavaScript':>12} {'JS/Python':>10}")

    def row(label: str, a: float, b: float, unit: str) -> None:
        print(f"{label:44} {a:10.1f} {unit:1} {b:10.1f} {unit:1} {b / a:9.2f}x")

    row("ask p50, plain handler (us)", py["ask"]["p50_us"], js["ask"]["p50_us"], "")
    row("ask p90, plain handler (us)", py["ask"]["p90_us"], js["ask"]["p90_us"], "")
    row(
        "ask p50, async handler asking twice (us)",
        py["ask_forward"]["p50_us"],
        js["ask_forward"]["p50_us"],
        "",
    )
    row(
        "guest instructions per plain turn (k)",
        py["fuel_per_turn"] / 1e3,
        js["fuel_per_turn"] / 1e3,
        "",
    )
    row("spawn an instance, p50 (ms)", py["spawn_p50_ms"], js["spawn_p50_ms"], "")
    row(
        "memory per live instance (MiB)", py["rss_per_instance_mib"], js["rss_per_instance_mib"], ""
    )
    size = r["component_mib"]
    row("component size (MiB)", size["python_sandboxed"], size["javascript"], "")
    if "compile_s" in r:
        comp = r["compile_s"]
        row("compile for this machine (s)", comp["python_sandboxed"], comp["javascript"], "")
    if "cold_build" in r:
        cold = r["cold_build"]
        row(
            "build from source, empty cache (s)",
            cold["python_build_s"],
            cold["javascript_build_s"],
            "",
        )
    pair = r["ask_p50_ratio_paired"]
    print(
        f"ask p50, JS/Python in {pair['blocks']} paired blocks (each two back to back): "
        f"median {pair['median']:.2f}x ({pair['min']:.2f}-{pair['max']:.2f})"
    )
    print(
        f"raw trio channel ping-pong p50: {floor['p50_us']:.1f} us; ask p50 / floor: Python "
        f"{py['ask']['p50_us'] / floor['p50_us']:.2f}x, JavaScript "
        f"{js['ask']['p50_us'] / floor['p50_us']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks it all works")
    parser.add_argument("--iterations", type=int, default=3000, help="asks per measurement")
    parser.add_argument("--instances", type=int, default=20, help="instances for spawn and memory")
    parser.add_argument("--repeat", type=int, default=3, help="runs (medians reported)")
    parser.add_argument("--cold", action="store_true", help="also build both from source")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.smoke:
        args.iterations, args.instances, args.repeat = 50, 2, 1
    result = trio.run(run, args.iterations, args.instances, args.repeat, args.cold, not args.smoke)
    _print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
