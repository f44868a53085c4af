"""The kvstore example against a real Redis, with redis-benchmark, in one run.

For each deployment of ``examples.kvstore`` and for a ``redis-server`` started
here on loopback, runs ``redis-benchmark -t set,get -n N -c 50 -r 100000``
(keys spread over 100,000 names, so every shard works) without and with
pipelining (``-P 16``), and prints throughput and latency side by side with the
ratios to Redis and to the trio RESP floor (``bench/resp_floor.py --polled``:
the kvstore's parser and its frontend's polled sockets answering at once, with
no store: what one trio process can serve here before any work; the floor of a
task per trio stream is a row of its own). Before measuring a deployment
it checks, through ``INFO radon``, that the shards run where it says (other
processes, or ``wasi``). Every server is started by this script and killed at
the end, also on failure.

    python bench/kvstore.py                 # N = 100,000
    python bench/kvstore.py --smoke         # N = 1,000: checks it all works
    python bench/kvstore.py --json FILE     # also write the results as JSON
    python bench/kvstore.py --repeat 3      # every deployment 3 times in turn: medians
    python bench/kvstore.py --parser        # only the RESP parser's cost per byte

``--parser`` times the frontend's RESP parser alone on a big ``SET`` (64 MiB)
and on a command with 400,000 arguments, each fed in one read and in 4 KiB
reads: a parser that keeps its place costs the same per byte either way (the
ratio stays near 1), one that parses the buffer again on every read does not.

Needs ``redis-server`` and ``redis-benchmark`` (Debian: redis-server, redis-tools).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import io
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)  # polling a process we started; this is a benchmark, not a test
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


@contextlib.contextmanager
def _server(cmd: list[str], port: int) -> Iterator[int]:
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed whole at the end
    )
    try:
        _wait_for_port(port, proc)
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _redis_benchmark(
    port: int, n: int, clients: int, pipeline: int, keyspace: int
) -> dict[str, dict[str, float | None]]:
    cmd = ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", str(n)]
    cmd += ["-c", str(clients), "-P", str(pipeline), "-r", str(keyspace), "--csv"]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    results: dict[str, dict[str, float | None]] = {}
    for row in csv.DictReader(io.StringIO(out)):
        rps = float(row["rps"])
        results[row["test"]] = {
            # redis-benchmark says "inf" for a run shorter than its clock's
            # resolution (smoke runs): not a figure
            "rps": rps if math.isfinite(rps) and rps > 0 else None,
            "p50_ms": float(row["p50_latency_ms"]),
            "p99_ms": float(row["p99_latency_ms"]),
        }
    if set(results) != {"SET", "GET"}:
        raise RuntimeError(f"unexpected redis-benchmark output: {out!r}")
    return results


def _scratch() -> str:
    """A fresh directory for a server's files, removed when the benchmark exits."""
    path = tempfile.mkdtemp(prefix="radon-kvbench-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _store(*options: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "examples.kvstore", "--port", str(port),
                "--log-level", "ERROR", *options]  # fmt: skip

    return command


# (label, port -> command line); the first is the baseline of the ratios
DEPLOYMENTS: list[tuple[str, Callable[[int], list[str]]]] = [
    (
        "redis-server",
        lambda port: ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
    ),
    (
        "trio RESP floor, a task per stream",
        lambda port: [sys.executable, str(ROOT / "bench" / "resp_floor.py"), str(port)],
    ),
    (
        "trio RESP floor, polled (the store's frontend)",
        lambda port: [
            *(sys.executable, str(ROOT / "bench" / "resp_floor.py"), str(port), "--polled")
        ],
    ),
    ("kvstore, one process, 8 shards x 2 replicas", _store("--shards", "8", "--replicas", "2")),
    ("kvstore, one process, 8 shards x 1 replica", _store("--shards", "8", "--replicas", "1")),
    (
        "redis-server (appendonly, fsync every second)",
        lambda port: [
            *("redis-server", "--port", str(port), "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--dir", _scratch()),
        ],
    ),
    (
        "kvstore, one process, journaled (--data-dir)",
        lambda port: _store("--shards", "8", "--replicas", "2", "--data-dir", _scratch())(port),
    ),
    (
        "kvstore, shards on 1 worker host",
        _store("--shards", "8", "--replicas", "2", "--hosts", "1"),
    ),
    (
        "kvstore, shards on 2 worker hosts",
        _store("--shards", "8", "--replicas", "2", "--hosts", "2"),
    ),
    ("kvstore, shards sandboxed", _store("--shards", "8", "--replicas", "2", "--sandbox")),
]


def check_deployment(label: str, port: int, server_pid: int) -> str:
    """Where the shards of a kvstore deployment run, from ``INFO radon``; raises
    if that is not what the label says (a benchmark of the wrong thing)."""
    if not label.startswith("kvstore"):
        return label.split(" (")[0]
    info = subprocess.run(
        ["redis-cli", "-p", str(port), "INFO", "radon"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    where = [r for line in info.splitlines() if re.match(r"shard\d+:", line)
             for r in line.split(":", 1)[1].split(",")]  # fmt: skip
    pids = {w.split("/")[1] for w in where if w.startswith("linux/")}
    if "sandboxed" in label:
        ok = bool(where) and all(w.startswith("wasi/") for w in where)
    elif "worker host" in label:
        wanted = int(label.split("on ")[1].split(" ")[0])
        ok = len(pids) == wanted and str(server_pid) not in pids
    else:
        ok = pids == {str(server_pid)}
    if not ok:
        raise RuntimeError(f"{label}: the shards run at {sorted(set(where))}, not as labelled")
    return ", ".join(sorted(set(where)))


def run(
    n: int, clients: int, pipelines: list[int], keyspace: int, repeat: int = 1
) -> list[dict[str, Any]]:
    """Every deployment ``repeat`` times, in turn (each round starts every
    server afresh); one row per deployment and pipeline depth, with the medians
    of the rounds (see :func:`_combine`)."""
    rounds: list[list[dict[str, Any]]] = []
    for r in range(repeat):
        rows: list[dict[str, Any]] = []
        for label, command in DEPLOYMENTS:
            port = _free_port()
            print(f"... {label}" + (f" (round {r + 1} of {repeat})" if repeat > 1 else ""),
                  file=sys.stderr, flush=True)  # fmt: skip
            with _server(command(port), port) as pid:
                where = check_deployment(label, port, pid)
                for p in pipelines:
                    figures = _redis_benchmark(port, n, clients, p, keyspace)
                    rows.append({"deployment": label, "pipeline": p, "where": where, **figures})
        _ratios(rows)
        rounds.append(rows)
    return _combine(rounds)


FLOOR = "trio RESP floor, polled (the store's frontend)"
_RATIOS = ("set_redis", "get_redis", "set_floor", "get_floor")


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Each row's throughput over Redis's and the floor's in the same round."""
    redis = {r["pipeline"]: r for r in rows if r["deployment"] == "redis-server"}
    floor = {r["pipeline"]: r for r in rows if r["deployment"] == FLOOR}
    for r in rows:
        ratios = [
            _over(r[op]["rps"], base[r["pipeline"]][op]["rps"])
            for base in (redis, floor)
            for op in ("SET", "GET")
        ]
        r["ratios"] = dict(zip(_RATIOS, ratios, strict=True))


def _over(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a / b


def _median(values: list[float | None]) -> float | None:
    """The median of the figures there are (None: none measured)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _combine(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per deployment and depth: the median of each figure and of each
    ratio over the rounds (the ratios are taken within a round, so a machine
    that slows down between rounds moves both sides of each)."""
    combined = []
    for i, first in enumerate(rounds[0]):
        same = [rows[i] for rows in rounds]
        row: dict[str, Any] = {k: first[k] for k in ("deployment", "pipeline", "where")}
        row["rounds"] = len(same)
        for op in ("SET", "GET"):
            row[op] = {k: _median([r[op][k] for r in same]) for k in ("rps", "p50_ms", "p99_ms")}
        row["ratios"] = {k: _median([r["ratios"][k] for r in same]) for k in _RATIOS}
        if len(same) > 1:
            ranges: dict[str, list[float] | None] = {}
            for k in _RATIOS:
                known = [r["ratios"][k] for r in same if r["ratios"][k] is not None]
                ranges[k] = [min(known), max(known)] if known else None
            row["ratio_ranges"] = ranges
        combined.append(row)
    return combined


def _print(rows: list[dict[str, Any]]) -> None:
    rounds = rows[0]["rounds"] if rows else 1
    if rounds > 1:
        print(f"medians of {rounds} rounds; ratios taken within each round")
    print(f"{'deployment':46} {'-P':>3} {'SET rps':>10} {'p50 ms':>7} {'GET rps':>10} "
          f"{'p50 ms':>7} {'SET/redis':>9} {'GET/redis':>9} {'SET/floor':>9} "
          f"{'GET/floor':>9}")  # fmt: skip

    def fmt(value: float | None, spec: str, width: int) -> str:
        return f"{'-':>{width}}" if value is None else f"{value:{width}{spec}}"

    for r in rows:
        print(
            f"{r['deployment']:46} {r['pipeline']:3} {fmt(r['SET']['rps'], ',.0f', 10)} "
            f"{r['SET']['p50_ms']:7.3f} {fmt(r['GET']['rps'], ',.0f', 10)} "
            f"{r['GET']['p50_ms']:7.3f} " + " ".join(fmt(r["ratios"][k], ".3f", 9) for k in _RATIOS)
        )


def parser_costs(big: int, args: int, chunk: int = 4096) -> list[dict[str, Any]]:
    """Seconds to parse each input in one read and in ``chunk``-byte reads."""
    sys.path.insert(0, str(ROOT))
    from examples.kvstore._resp import RespParser

    value = b"x" * big
    inputs = {
        f"SET of {big / 2**20:.0f} MiB": b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n"
        % (big, value),
        f"DEL with {args:,} keys": b"*%d\r\n$3\r\nDEL\r\n" % (args + 1)
        + b"".join(b"$7\r\nk%06d\r\n" % i for i in range(args)),
    }
    rows = []
    for what, wire in inputs.items():
        times = {}
        for label, size in (("one read", len(wire)), (f"{chunk} B reads", chunk)):
            p = RespParser()
            got = 0
            t0 = time.perf_counter()
            for i in range(0, len(wire), size):
                p.feed(wire[i : i + size])
                got += len(p.commands())
            times[label] = time.perf_counter() - t0
            if got != 1:
                raise AssertionError(f"{what}: parsed {got} commands, expected 1")
        one, many = times.values()
        rows.append(
            {"input": what, "bytes": len(wire), "one_read_s": one, "chunked_s": many,
             "ratio": many / one, "chunked_MB_per_s": len(wire) / many / 1e6}
        )  # fmt: skip
    return rows


def _print_parser(rows: list[dict[str, Any]]) -> None:
    print(f"{'RESP parser input':28} {'bytes':>12} {'one read s':>11} {'4 KiB reads s':>14} "
          f"{'ratio':>6} {'MB/s':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['input']:28} {r['bytes']:12,} {r['one_read_s']:11.3f} {r['chunked_s']:14.3f} "
              f"{r['ratio']:6.2f} {r['chunked_MB_per_s']:8.0f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="N = 1,000: only checks it works")
    parser.add_argument("-n", type=int, default=100_000, help="requests per test")
    parser.add_argument("-c", type=int, default=50, help="parallel clients")
    parser.add_argument("-r", type=int, default=100_000, help="keyspace (random key names)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds over every deployment (medians reported)"
    )
    parser.add_argument("--parser", action="store_true", help="only the RESP parser's cost")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    costs = parser_costs(2**20, 4_000) if args.smoke else parser_costs(64 * 2**20, 400_000)
    _print_parser(costs)
    if args.parser:
        if args.json:
            Path(args.json).write_text(json.dumps({"parser": costs}, indent=2))
        return 0
    missing = [
        tool
        for tool in ("redis-server", "redis-benchmark", "redis-cli")
        if shutil.which(tool) is None
    ]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (apt-get install redis-server "
              "redis-tools)")  # fmt: skip
        return 0
    n = 1_000 if args.smoke else args.n
    rows = run(n, args.c, [1, 16], args.r, args.repeat)
    _print(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
