"""examples/virtual_atoms.py through its command line: on-demand carts, kept
in the store its --store names, expired by reminders after --expire-after."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "virtual_atoms.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(_SCRIPT), *args], capture_output=True, text=True, timeout=120
    )


def test_carts_expire_and_their_state_is_in_the_named_store(tmp_path: Path) -> None:
    db = tmp_path / "carts.db"
    done = _run("--users", "5", "--expire-after", "0.5", "--store", f"sqlite://{db}")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "carts: 5 users, 2 checked out, 3 abandoned" in out
    assert "all 3 abandoned carts expired" in out
    waited = float(re.search(r"expired after ([\d.]+) s \(expiry 0.5 s\)", out).group(1))  # type: ignore[union-attr]
    assert waited >= 0.5
    activations = int(re.search(r"activated (\d+) times", out).group(1))  # type: ignore[union-attr]
    assert activations >= 5
    with sqlite3.connect(db) as conn:
        keys = {
            k
            for (k,) in conn.execute(
                "SELECT key FROM radon_state WHERE atom_type = ?", ("example.cart",)
            )
        }
    assert keys == {f"user-{u}" for u in range(5)}  # --store: the state went there


def test_users_and_expiry_change_what_happens(tmp_path: Path) -> None:
    done = _run("--users", "2", "--expire-after", "0.2")
    assert done.returncode == 0, done.stderr
    assert "carts: 2 users, 1 checked out, 1 abandoned" in done.stdout
    assert "(expiry 0.2 s)" in done.stdout


def test_bad_options_are_refused() -> None:
    done = _run("--expire-after", "0")
    assert done.returncode == 2
    assert "--expire-after" in done.stderr
    done = _run("--store", "postgres://x")
    assert done.returncode == 2
    assert "unknown state store URL" in done.stderr
