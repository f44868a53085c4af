"""Nexmark queries on atoms: events per second per query, in each deployment.

For each query (0 to 8) and mode (``local``: every stage in this process;
``hosts``: the stages' partitions on two worker hosts; ``sandboxed``: every
stage in the WebAssembly sandbox), the events are generated first (Beam's
generator in Python costs more than most queries: it is not part of the
figure), then the source sends them in batches through the query's dataflow to
a sink that counts results. Reported: the median over ``--repeat`` runs of
events per second, beside the per-core figures Flink's Nexmark harness
published (context, not a like-for-like run).

    python bench/nexmark.py                 # full run (a few minutes)
    python bench/nexmark.py --smoke         # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import structlog
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.nexmark._generator import NexmarkConfig, events  # noqa: E402
from examples.nexmark._queries import PLANS  # noqa: E402
from examples.nexmark._run import MODES, run_query  # noqa: E402
from radon_actors import open_system  # noqa: E402

# Events per second per core from Flink's Nexmark harness (nexmark/nexmark, its
# guide's results table); Q6 is not in Flink's SQL set.
FLINK_PER_CORE = {0: 155_000, 1: 158_000, 2: 175_000, 3: 152_000, 4: 34_000, 5: 22_000}
FLINK_PER_CORE |= {7: 12_300, 8: 146_000}


def target(query: int) -> float | None:
    """The issue's goal in one process: Q0-Q2 at Flink's per-core level, the
    others at 30% of it."""
    flink = FLINK_PER_CORE.get(query)
    if flink is None:
        return None
    return 150_000 if query <= 2 else 0.3 * flink


async def measure(
    mode: str,
    queries: list[int],
    count: int,
    repeat: int,
    parallelism: int,
    batch: int,
) -> dict[int, dict[str, Any]]:
    config = NexmarkConfig()
    pairs = list(events(config, count))
    out: dict[int, dict[str, Any]] = {}
    async with open_system() as system:
        hosts: list[str] = []
        if mode == "hosts":
            for name in ("w1", "w2"):
                await system.start_host(name)
                hosts.append(name)
        for query in queries:
            rates, results = [], 0
            # One untimed warm-up (a sandboxed stage's component, a host's imports).
            await run_query(
                system,
                query,
                config,
                min(count, 2 * batch),
                mode=mode,
                hosts=hosts,
                parallelism=parallelism,
                batch=batch,
                keep=False,
                pregenerated=pairs,
            )
            for _ in range(repeat):
                result = await run_query(
                    system,
                    query,
                    config,
                    count,
                    mode=mode,
                    hosts=hosts,
                    parallelism=parallelism,
                    batch=batch,
                    keep=False,
                    pregenerated=pairs,
                )
                rates.append(result.events_per_second)
                results = result.count
            out[query] = {
                "events": count,
                "results": results,
                "events_per_second": statistics.median(rates),
                "runs": rates,
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run: checks it all works")
    parser.add_argument("--events", type=int, default=100_000, help="events per run (local)")
    parser.add_argument(
        "--remote-events", type=int, default=30_000, help="events per run (hosts, sandboxed)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--parallelism", type=int, default=2, help="partitions per keyed stage")
    parser.add_argument("--batch", type=int, default=1000, help="events per message")
    parser.add_argument("--modes", default=",".join(MODES), help="modes to run, comma-separated")
    parser.add_argument("--queries", default="0,1,2,3,4,5,6,7,8", help="queries, comma-separated")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if args.smoke:
        args.events, args.remote_events, args.repeat, args.batch = 2_000, 1_000, 1, 200
    queries = [int(q) for q in args.queries.split(",")]
    modes = args.modes.split(",")
    for q in queries:
        if q not in PLANS:
            parser.error(f"no query {q}")
    for m in modes:
        if m not in MODES:
            parser.error(f"no mode {m!r} (one of {', '.join(MODES)})")
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "parallelism": args.parallelism,
        "batch": args.batch,
        "modes": {},
    }
    started = time.perf_counter()
    for mode in modes:
        count = args.events if mode == "local" else args.remote_events
        report["modes"][mode] = trio.run(
            measure, mode, queries, count, args.repeat, args.parallelism, args.batch
        )
    report["load_average"] = os.getloadavg()[0]
    report["seconds"] = time.perf_counter() - started
    header = f"{'query':38}" + "".join(f"{m + ' ev/s':>16}" for m in modes)
    print(
        f"python {report['python']}, {report['cpus']} cpus, load average "
        f"{report['load_average']:.2f}; events generated beforehand; batch {args.batch}, "
        f"parallelism {args.parallelism}; median of {args.repeat}"
    )
    print(header + f"{'Flink/core':>12}{'goal (1 proc)':>15}")
    for q in queries:
        row = f"q{q} {PLANS[q].title:35}"
        for mode in modes:
            row += f"{report['modes'][mode][q]['events_per_second']:16,.0f}"
        flink = FLINK_PER_CORE.get(q)
        goal = target(q)
        row += f"{flink:12,}" if flink else f"{'-':>12}"
        row += f"{goal:15,.0f}" if goal else f"{'-':>15}"
        print(row)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
