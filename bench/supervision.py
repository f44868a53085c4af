"""Cost of recovering from a failure under a supervisor.

Each sample times one failing ``ask`` (its exception caught) followed by one
``ask`` that the atom answers after the supervisor acted, in microseconds:

* baseline: two successful asks (no failure), the floor;
* resume: the failure's directive is RESUME (no supervisor round trip);
* restart, one-for-one: the failed atom is rebuilt in place (same Ref);
* restart, one-for-all over N children: every child is stopped and rebuilt;
* the same with the atom on a worker host (``--no-remote`` skips these): its
  failure is reported to its supervisor in this process, which resumes it
  there, or retires it there and starts a fresh instance (one-for-all: with
  nine local siblings stopped and started around it). A worker host is started
  per case and shut down (killed if need be) whatever happens.

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
import os
import statistics
import sys
import time
from typing import Any

import structlog
import trio

from radon_actors import Atom, ChildSpec, Directive, Strategy, Supervisor, handler, open_system
from radon_actors.placement._node import get_node

_now = time.perf_counter_ns


# A built-in type: a handler's exception pickles back from a worker host as itself
# (a class defined in this script would travel by value and come back as a
# RemoteError there).
Boom = LookupError


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
    directives: dict[type[BaseException], Directive] = {Boom: Directive.RESUME} if resume else {}
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


async def remote_recovery(
    n: int, *, fail: bool, strategy: Strategy, children: int, resume: bool
) -> list[int]:
    """``recovery`` with the measured atom on a worker host (its siblings stay here)."""
    directives: dict[type[BaseException], Directive] = {Boom: Directive.RESUME} if resume else {}
    specs = [ChildSpec(Echo, name="e0", directives=directives, host="bench-worker")]
    specs += [ChildSpec(Echo, name=f"e{i}") for i in range(1, children)]
    node: Any = None
    try:
        async with open_system() as system:
            node = get_node(system)
            # The worker logs its crash reports to the stderr it inherits: silence it
            # as this process's own are (see the module docs).
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)
                await system.start_host("bench-worker")
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
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
                if i >= n // 10:
                    samples[i - n // 10] = _now() - t0
            return samples
    finally:
        for proc in node.processes.values() if node is not None else ():
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()


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


REMOTE_CASES: list[tuple[str, dict[str, Any]]] = [
    (f"on a worker: {label}", kw) for label, kw in CASES
]


async def run(n: int, repeat: int, remote: bool = False) -> dict[str, Any]:
    cases = CASES + (REMOTE_CASES if remote else [])
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in cases}
    for _ in range(repeat):  # interleaved, so machine noise hits all cases alike
        for label, kw in CASES:
            gc.collect()
            results[label].append(_percentiles(await recovery(n, **kw)))
        for label, kw in REMOTE_CASES if remote else ():
            gc.collect()
            # a round trip per ask, and a retire plus a start per restart: fewer samples
            samples = await remote_recovery(max(20, n // 10), **kw)
            results[label].append(_percentiles(samples))
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
    print(f"{'failing ask + next ask':50} {'p50 us':>8} {'p99 us':>8}")
    for label, v in r["cases"].items():
        print(f"{label:50} {v['p50_us']:8.1f} {v['p99_us']:8.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=5_000, help="samples per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--no-remote", action="store_true", help="skip the cases with the atom on a worker host"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.repeat = 50, 1
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    result = trio.run(run, args.iterations, args.repeat, not args.no_remote)
    _print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
