"""``python -m bench``: the whole suite in one run (latency, peers, Savina).

    python -m bench                    # full run (~15 min on a small machine)
    python -m bench --smoke            # tiny parameters: checks everything still works
    python -m bench --out docs         # where results.json and benchmarks.png go

Writes a terminal table, ``<out>/benchmarks.json`` and ``<out>/benchmarks.png``.
Exits non-zero if any benchmark computed a wrong result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from radon_actors.bench import _suite as latency

from . import savina
from ._report import machine, plot, savina_table


def _progress(s: str) -> None:
    print(f"... {s}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny parameters, one run each")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="output folder")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency suite")
    parser.add_argument("--no-savina", action="store_true", help="skip the Savina suite")
    parser.add_argument("--no-peers", action="store_true", help="radon-actors and baselines only")
    parser.add_argument("--iterations", type=int, default=20_000, help="round trips per run")
    parser.add_argument("--messages", type=int, default=200_000, help="tells per throughput run")
    parser.add_argument("--repeat", type=int, default=5, help="latency runs per configuration")
    parser.add_argument(
        "--savina-iterations", type=int, default=5, help="Savina runs per benchmark (Savina: 12)"
    )
    parser.add_argument(
        "--savina-params",
        choices=["machine", "savina"],
        default="machine",
        help="'savina' runs the published defaults unscaled (slow)",
    )
    parser.add_argument("--only", nargs="*", help="Savina benchmarks to run (names as printed)")
    args = parser.parse_args(argv)

    latency.configure_logging()
    result: dict[str, Any] = {"machine": machine(), "smoke": args.smoke}
    started = time.time()
    if not args.no_latency:
        n, m, repeat = (
            latency.smoke_sizes() if args.smoke else (args.iterations, args.messages, args.repeat)
        )
        lat = latency.run_suite(
            n, m, repeat, peers=[] if args.no_peers else None, progress=_progress
        )
        result["latency"] = lat
        print(latency.format_table(lat))
        print()
    if not args.no_savina:
        frameworks = ["radon-actors"]
        if not args.no_peers:
            try:
                import pykka  # noqa: F401

                frameworks.append("pykka")
            except ImportError:
                _progress("pykka is not installed: Savina runs on radon-actors only")
        mode = "smoke" if args.smoke else args.savina_params
        iterations = 1 if args.smoke else args.savina_iterations
        rows = savina.run_suite(mode, iterations, frameworks, args.only, progress=_progress)
        result["savina"] = {
            "mode": mode,
            "iterations": iterations,
            "frameworks": frameworks,
            "rows": rows,
        }
        print(savina_table(rows, frameworks))
        for w in savina.WORKLOADS:
            if w.note and any(r["benchmark"] == w.name for r in rows):
                print(f"  {w.name}: {w.note}")
    result["machine"]["load_average_start"] = result["machine"].pop("load_average")
    result["machine"]["load_average_end"] = machine()["load_average"]
    result["elapsed_s"] = time.time() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(result, indent=1))
    try:
        plot(result, args.out / "benchmarks.png")
    except ImportError:
        print(f"\nwrote {args.out / 'benchmarks.json'} (no plot: matplotlib is not installed)")
        return 0
    print(f"\nwrote {args.out / 'benchmarks.json'} and {args.out / 'benchmarks.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
