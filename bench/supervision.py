"""Cost of recovering from a failure under a supervisor.

Each sample times one failing ``ask`` (its exception caught) followed by one
``ask`` that the atom answers after the supervisor acted, in microseconds:

* baseline: two successful asks (no failure), the floor;
* resume: the failure's directive is RESUME (no supervisor round trip);
* restart, one-for-one: the failed atom is rebuilt in place (same Ref);
* restart, one-for-all over N children: every child is stopped and rebuilt.

Crash reports are filtered out of the log here (level CRITICAL) so that the
numbers measure the supervision machinery, not the console.

    python bench/supervision.py            # full run
    python bench/supervision.py --smoke    # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import statistics
import sys
import time
from typing import Any

import structlog
import trio

from radon_actors import Atom, ChildSpec, Directive, Strategy, Supervisor, handler, open_system

_now = time.perf_counter_ns


class Boom(Exception):
    pass


class Echo(Atom):
    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    def fail(self) -> None:
        raise Boom()


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    n = len(s)
    return {
        "p50_us": s[n // 2] / 1000,
        "p99_us": s[min(n - 1, int(n * 0.99))] / 1000,
    }


async def recovery(
    n: int, *, fail: bool, strategy: Strategy, children: int, resume: bool
) -> list[int]:
    directives = {Boom: Directive.RESUME} if resume else {}
    specs = [ChildSpec(Echo, name=f"e{i}", directives=directives) for i in range(children)]
    async with open_system() as system:
        await system.spawn(Supervisor, specs, strategy=strategy, max_restarts=None)
        ref = system.lookup("e0")
        samples = [0] * n
        for i in range(n + n // 10):
            t0 = _now()
            if fail:
                with contextlib.suppress(Boom):
                    await ref.ask(Echo.fail)
            else:
                await ref.ask(Echo.ping, i)
            await ref.ask(Echo.ping, i)
            if i >= n // 10:  # the first tenth warms up
                samples[i - n // 10] = _now() - t0
        return samples


CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "baseline (no failure)",
        {"fail": False, "strategy": Strategy.ONE_FOR_ONE, "children": 1, "resume": False},
    ),
    ("resume", {"fail": True, "strategy": Strategy.ONE_FOR_ONE, "children": 1, "resume": True}),
    (
        "restart, one-for-one",
        {"fail": True, "strategy": Strategy.ONE_FOR_ONE, "children": 1, "resume": False},
    ),
    (
        "restart, one-for-all, 10 children",
        {"fail": True, "strategy": Strategy.ONE_FOR_ALL, "children": 10, "resume": False},
    ),
]


async def run(n: int, repeat: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CASES}
    for _ in range(repeat):  # interleaved, so machine noise hits all cases alike
        for label, kw in CASES:
            gc.collect()
            results[label].append(_percentiles(await recovery(n, **kw)))
    return {
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "iterations": n,
        "repeat": repeat,
        "cases": {
            label: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for label, runs in results.items()
        },
    }


def _print_table(r: dict[str, Any]) -> None:
    print(f"python {r['python']}, trio {r['trio']}, median of {r['repeat']} runs")
    print(f"{'failing ask + next ask':36} {'p50 us':>8} {'p99 us':>8}")
    for label, v in r["cases"].items():
        print(f"{label:36} {v['p50_us']:8.1f} {v['p99_us']:8.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=5_000, help="samples per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 50, 1
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    result = trio.run(run, args.iterations, args.repeat)
    _print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
