"""``python -m examples.cluster``, run from its command line (docs/cluster.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.cluster", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_a_killed_members_accounts_move_with_every_deposit(tmp_path: Path) -> None:
    store = tmp_path / "accounts.db"
    done = run_example("--members", "2", "--keys", "5", "--lease", "1",
                       "--store", f"sqlite:///{store}")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"cluster 'demo': 2 members on sqlite:///{store}, lease 1 s"
    assert store.exists()  # --store is where the members kept the accounts
    before = lines[1:6]
    assert all(" balance 10" in line for line in before) and len(before) == 5
    killed = lines[6]
    assert killed.startswith("killed m") and "of the 5 accounts" in killed
    after = lines[7:12]
    assert all(line.endswith("balance 11") for line in after)
    victim = killed.split()[1]
    assert not any(f"active in {victim} " in line for line in after)
    assert any(f"moved from {victim}" in line for line in after)
    assert lines[12] == "every account answered from a live member with all 55 units deposited"


def test_the_example_refuses_what_cannot_run() -> None:
    for args, message in (
        (["--members", "1"], "at least 2"),
        (["--keys", "0"], "positive"),
        (["--lease", "0"], "0.1 to 60"),
    ):
        done = run_example(*args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
