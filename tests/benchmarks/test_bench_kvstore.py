"""``bench/kvstore.py`` through its command line: rounds and their medians."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

needs_redis = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("redis-server", "redis-benchmark", "redis-cli")),
    reason="needs redis-server, redis-benchmark and redis-cli",
)


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "kvstore.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@needs_redis
def test_repeat_runs_every_deployment_that_many_times_and_reports_medians(
    tmp_path: Path,
) -> None:
    out = tmp_path / "kv.json"
    done = _bench("--smoke", "--repeat", "2", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "(round 2 of 2)" in done.stderr
    assert "medians of 2 rounds" in done.stdout
    rows = json.loads(out.read_text())
    assert rows and all(r["rounds"] == 2 for r in rows)
    floor = next(r for r in rows if r["deployment"].startswith("trio RESP floor, polled"))
    assert floor["ratios"]["set_floor"] == 1.0
    for r in rows:
        if r["ratio_ranges"]["get_redis"] is None:
            # Too short to time in both rounds (redis-benchmark says "inf").
            assert r["ratios"]["get_redis"] is None
            continue
        low, high = r["ratio_ranges"]["get_redis"]
        assert low <= r["ratios"]["get_redis"] <= high


def test_repeat_below_one_is_refused() -> None:
    done = _bench("--repeat", "0")
    assert done.returncode == 2
    assert "--repeat must be at least 1" in done.stderr
