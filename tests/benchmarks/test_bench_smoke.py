"""The benchmark suite still works: Savina workloads at smoke size, and its checks bite.

No timings are asserted here; performance is measured by ``python -m bench``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog

from bench import savina
from bench.savina import _radon
from bench.savina._common import BenchmarkFailed, PseudoRandom, check, complement, fib
from radon_actors.bench import _suite as latency

WORKLOADS = {w.name: w for w in savina.WORKLOADS}


@pytest.fixture(autouse=True)
def _quiet_logs() -> Any:
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    yield
    structlog.configure(**saved)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
async def test_savina_smoke_on_radon(name: str) -> None:
    w = WORKLOADS[name]
    await w.radon(w.smoke)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_savina_smoke_on_pykka(name: str) -> None:
    pytest.importorskip("pykka")
    w = WORKLOADS[name]
    times = savina.run_workload(w, "pykka", w.smoke, 1)
    assert len(times) == 1


def test_savina_covers_the_issue_list_with_published_defaults() -> None:
    assert WORKLOADS["PingPong"].savina == {"n": 40_000}
    assert WORKLOADS["Counting"].savina == {"n": 1_000_000}
    assert WORKLOADS["ThreadRing"].savina == {"n": 100, "r": 100_000}
    assert WORKLOADS["Fork-Join throughput"].savina == {"a": 60, "n": 10_000}
    assert WORKLOADS["Fork-Join create"].savina == {"n": 40_000}
    assert WORKLOADS["Fib"].savina == {"n": 25}
    assert WORKLOADS["Big"].savina == {"w": 120, "n": 20_000}
    assert WORKLOADS["Chameneos"].savina == {"chameneos": 100, "meetings": 200_000}
    for w in savina.WORKLOADS:
        assert set(w.machine) == set(w.savina) == set(w.smoke)
        assert not w.scaled or w.note, f"{w.name} is scaled without saying why"


def test_pseudo_random_matches_savina() -> None:
    # value = (value * 1309 + 13849) & 65535, from Savina's default seed 74755.
    r = PseudoRandom()
    expected = []
    v = 74755
    for _ in range(5):
        v = (v * 1309 + 13849) & 65535
        expected.append(v)
    assert [r.next_long() for _ in range(5)] == expected
    assert PseudoRandom(3).next_int(120) == ((3 * 1309 + 13849) & 65535) % 120


def test_reference_values() -> None:
    assert [fib(n) for n in range(1, 11)] == [1, 1, 2, 3, 5, 8, 13, 21, 34, 55]
    assert complement(0, 1) == 2  # red meets yellow -> blue
    assert complement(2, 2) == 2
    assert complement(3, 0) == 3


def test_check_fails_loudly() -> None:
    with pytest.raises(BenchmarkFailed, match="Fib: result is 54, expected 55"):
        check("Fib", "result", 54, 55)


async def test_a_broken_workload_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    # A counter that drops every other increment must make Counting fail.
    def lossy(self: Any) -> None:
        self.count += self.count % 2 == 0

    monkeypatch.setattr(_radon.Counter.increment, "__code__", lossy.__code__)
    with pytest.raises(BenchmarkFailed, match="Counting: count"):
        await _radon.counting({"n": 100})


def test_sanitize_is_savinas() -> None:
    # Median (upper, sorted[n // 2]) is 100: 70 and 130 are more than 20 % away.
    assert savina.sanitize([100, 70, 105, 130, 95]) == [95, 100, 105]
    assert savina.savina_median([100, 70, 105, 130, 95]) == 100


async def test_latency_in_process_smoke() -> None:
    rows = await latency.run_in_process(50, 200, 1)
    by = {r["config"]: r for r in rows}
    assert set(by) == {c.key for c in latency.IN_PROCESS}
    for r in rows:
        assert len(r["samples_us"]) == 50
        assert 0 < r["p50_us"] <= r["p90_us"] <= r["p99_us"]
    assert by["native"]["tell_msgs_per_s"] > 0


def _live_in_group(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are not zombies (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _all_gone(result: dict[str, Any]) -> bool:
    return not _live_in_group(result["pgid"]) and not latency.tagged_processes(result["token"])


def test_peer_measured_in_a_process_of_its_own() -> None:
    pytest.importorskip("pykka")
    peer = next(p for p in latency.PEERS if p.key == "pykka")
    result = latency.run_peer(peer, 20, 100, 1, timeout=60)
    assert "error" not in result, result
    samples, tput = result["runs"][0]
    assert len(samples) == 20
    assert tput > 0
    assert _all_gone(result)


def test_multiprocess_peer_leaves_no_process_behind() -> None:
    # Thespian's multiprocTCPBase starts an admin (which daemonizes out of the
    # process group) and one process per actor.
    pytest.importorskip("thespian")
    peer = next(p for p in latency.PEERS if p.key == "thespian-tcp")
    result = latency.run_peer(peer, 20, 100, 1, timeout=120)
    assert "error" not in result, result
    assert _all_gone(result)


def test_peer_killed_mid_run_leaves_no_process_behind() -> None:
    # A timeout while Thespian's admin and actor are running: no shutdown() runs,
    # so only the group kill and the environment tag can clean up.
    pytest.importorskip("thespian")
    peer = next(p for p in latency.PEERS if p.key == "thespian-tcp")
    result = latency.run_peer(peer, 10_000_000, 100, 1, timeout=6)
    assert result["error"] == "timed out after 6 s"
    assert _all_gone(result)


def test_failing_peer_is_reported_and_reaped() -> None:
    bogus = latency.Peer("no-such-config", "bogus", "asyncio")
    result = latency.run_peer(bogus, 20, 100, 1, timeout=60)
    assert "exit code 2" in result["error"]
    assert _all_gone(result)


def test_tagged_processes_finds_a_tagged_child() -> None:
    env = {**os.environ, latency.PEER_TOKEN_VAR: "tag-under-test"}
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        # Once it has written, it runs the new program with its environment (just
        # after the fork, /proc still showed the parent's, without the tag).
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert latency.tagged_processes("tag-under-test") == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert latency.tagged_processes("tag-under-test") == []


def _worker_hosts_of_this_process() -> list[int]:
    """Live (not zombie) worker host processes whose parent is this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            fields[0] != "Z"
            and int(fields[1]) == os.getpid()
            and b"radon_actors._worker" in cmdline
        ):
            found.append(int(entry.name))
    return found


async def test_latency_cross_process_stops_its_worker_even_on_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = await latency.cross_process_rtt(20, 5)
    assert len(samples) == 20
    assert _worker_hosts_of_this_process() == []

    async def broken(*args: object) -> list[int]:
        assert _worker_hosts_of_this_process() != []  # the probe sees a live worker
        raise latency.LostMessages("simulated failure mid-run")

    monkeypatch.setattr(latency, "round_trips", broken)
    with pytest.raises(latency.LostMessages, match="simulated"):
        await latency.cross_process_rtt(20, 5)
    assert _worker_hosts_of_this_process() == []


def test_durable_bench_sets_the_gc_threshold_it_is_given() -> None:
    # bench/durable.py --gc-threshold: the run's cyclic GC threshold, shown in
    # its header (the default is Python's own).
    script = Path(__file__).resolve().parents[2] / "bench" / "durable.py"
    shown = []
    for flags in ([], ["--gc-threshold", "12345"]):
        out = subprocess.run(
            [sys.executable, str(script), "--smoke", *flags],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        shown.append(out.stdout.split("GC threshold ", 1)[1].split(")", 1)[0])
    assert shown[0] != "12345" and shown[1] == "12345"
    refused = subprocess.run(
        [sys.executable, str(script), "--smoke", "--gc-threshold", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--gc-threshold takes a positive number" in refused.stderr


def test_cluster_bench_measures_what_it_is_asked_and_writes_its_json(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "cluster.py"
    out = tmp_path / "cluster.json"
    done = subprocess.run(
        [sys.executable, str(script), "--samples", "7", "--keys", "3", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["n"] == 7
    assert {"worker_host_ask", "client_ask", "member_ask", "cold_activation_from_client"} <= set(
        results
    )
    assert results["client_asks_per_s_held"] > 0 and results["client_asks_per_s_per_ask"] > 0
    refused = subprocess.run(
        [sys.executable, str(script), "--samples", "0"], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2 and "positive" in refused.stderr
