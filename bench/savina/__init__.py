"""The Savina actor benchmarks (shamsimam/savina) on radon-actors and on pykka.

Each workload is re-implemented from Savina's sources: the same actors, message
protocol, default parameters and ``PseudoRandom`` generator. Every iteration
checks its result (``BenchmarkFailed`` otherwise), so a broken run fails loudly
instead of looking fast.

Timing follows Savina's ``BenchmarkRunner``: each iteration is timed from
creating the actor system to its termination; the reported figure is the median
of the iterations left after discarding those more than 20 % away from the raw
median (``sanitize(..., 0.20)``).

Three parameter sets per workload: ``savina`` (the published defaults),
``machine`` (what the full run uses on a small shared machine; scaled down where
a Python run of the default would take minutes, and reported beside the default)
and ``smoke`` (tiny, for CI).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from . import _radon
from ._common import BenchmarkFailed, PseudoRandom, check

__all__ = [
    "WORKLOADS",
    "BenchmarkFailed",
    "PseudoRandom",
    "Workload",
    "check",
    "run_workload",
    "sanitize",
    "savina_median",
]

Params = dict[str, int]


@attrs.frozen
class Workload:
    """One Savina benchmark: its parameters and its implementations."""

    name: str
    savina: Params
    machine: Params
    smoke: Params
    radon: Callable[[Params], Awaitable[None]]
    pykka_name: str
    note: str = ""

    def params(self, mode: str) -> Params:
        return {"savina": self.savina, "machine": self.machine, "smoke": self.smoke}[mode]

    @property
    def scaled(self) -> bool:
        return self.machine != self.savina


WORKLOADS: list[Workload] = [
    Workload(
        "PingPong",
        savina={"n": 40_000},
        machine={"n": 40_000},
        smoke={"n": 200},
        radon=_radon.pingpong,
        pykka_name="pingpong",
        note="4 messages a round, one of them Ping's message to itself",
    ),
    Workload(
        "Counting",
        savina={"n": 1_000_000},
        machine={"n": 1_000_000},
        smoke={"n": 2_000},
        radon=_radon.counting,
        pykka_name="counting",
    ),
    Workload(
        "ThreadRing",
        savina={"n": 100, "r": 100_000},
        machine={"n": 100, "r": 100_000},
        smoke={"n": 10, "r": 500},
        radon=_radon.threadring,
        pykka_name="threadring",
        note="the last exit message reaches an atom that already stopped, as in Savina: "
        "one dead_letter warning per run is expected",
    ),
    Workload(
        "Fork-Join throughput",
        savina={"a": 60, "n": 10_000},
        machine={"a": 60, "n": 10_000},
        smoke={"a": 6, "n": 100},
        radon=_radon.fjthrput,
        pykka_name="fjthrput",
    ),
    Workload(
        "Fork-Join create",
        savina={"n": 40_000},
        machine={"n": 40_000},
        smoke={"n": 200},
        radon=_radon.fjcreate,
        pykka_name="fjcreate",
    ),
    Workload(
        "Fib",
        savina={"n": 25},
        machine={"n": 20},
        smoke={"n": 10},
        radon=_radon.fibonacci,
        pykka_name="fibonacci",
        note="scaled 25 -> 20 (150,049 -> 13,529 actors): at 25 one radon-actors run takes "
        "over 30 s and pykka (a thread per actor) runs out of memory",
    ),
    Workload(
        "Big",
        savina={"w": 120, "n": 20_000},
        machine={"w": 120, "n": 2_000},
        smoke={"w": 10, "n": 50},
        radon=_radon.big,
        pykka_name="big",
        note="pings per actor scaled 20,000 -> 2,000 (4.8 M -> 480 k messages)",
    ),
    Workload(
        "Chameneos",
        savina={"chameneos": 100, "meetings": 200_000},
        machine={"chameneos": 100, "meetings": 200_000},
        smoke={"chameneos": 10, "meetings": 500},
        radon=_radon.chameneos,
        pykka_name="chameneos",
    ),
]


def sanitize(times: list[float], tolerance: float = 0.20) -> list[float]:
    """Savina's ``BenchmarkRunner.sanitize``: keep runs within ``tolerance`` of the
    median (the upper median, ``sorted[n // 2]``, as in Savina)."""
    if not times:
        return []
    s = sorted(times)
    median = s[len(s) // 2]
    lo, hi = (1 - tolerance) * median, (1 + tolerance) * median
    return [t for t in s if lo <= t <= hi]


def savina_median(times: list[float]) -> float:
    """The median Savina reports: of the sanitized runs."""
    return statistics.median(sanitize(times))


def _pykka_impl(name: str) -> Callable[[Params], None]:
    from . import _pykka

    fn: Callable[[Params], None] = getattr(_pykka, name)
    return fn


ITERATION_TIMEOUT = 600.0


async def _with_deadline(w: Workload, params: Params) -> None:
    # A lost message would otherwise hang the run instead of failing it.
    try:
        with trio.fail_after(ITERATION_TIMEOUT):
            await w.radon(params)
    except trio.TooSlowError:
        raise BenchmarkFailed(
            f"{w.name} on radon-actors did not finish in {ITERATION_TIMEOUT:.0f} s"
        ) from None


def run_workload(w: Workload, framework: str, params: Params, iterations: int) -> list[float]:
    """Run ``iterations`` timed iterations; return their times in milliseconds.

    Raises :class:`BenchmarkFailed` when any iteration computes a wrong result.
    """
    times: list[float] = []
    for _ in range(iterations):
        gc.collect()
        if framework == "radon-actors":
            t0 = time.perf_counter_ns()
            trio.run(_with_deadline, w, params)
        elif framework == "pykka":
            fn = _pykka_impl(w.pykka_name)
            t0 = time.perf_counter_ns()
            fn(params)
        else:
            raise ValueError(f"unknown framework {framework!r}")
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return times


def run_suite(
    mode: str,
    iterations: int,
    frameworks: list[str],
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every workload on every framework; one result row per (workload, framework)."""
    rows: list[dict[str, Any]] = []
    for w in WORKLOADS:
        if only and w.name not in only:
            continue
        params = w.params(mode)
        for fw in frameworks:
            if progress:
                progress(f"savina {w.name} on {fw} {params} x{iterations}")
            times = run_workload(w, fw, params, iterations)
            kept = sanitize(times)
            rows.append(
                {
                    "benchmark": w.name,
                    "framework": fw,
                    "params": params,
                    "savina_params": w.savina,
                    "scaled": params != w.savina,
                    "note": w.note,
                    "times_ms": times,
                    "kept": len(kept),
                    "median_ms": statistics.median(kept),
                }
            )
    return rows
