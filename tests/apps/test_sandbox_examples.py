"""The sandboxed examples, run as a user runs them, on a cold cache (issue #13).

A first run on a machine builds the atom's component: the examples show that
build as it goes (``radon_actors.prebuild``) instead of sitting silent, and the
worker hosts of ``live_migration.py --sandbox`` load the component compiled
here from the machine's cache instead of compiling it again on the first move.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]


async def _run(cache: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "RADON_SANDBOX_CACHE": str(cache)}
    with trio.fail_after(300):  # a cold cache builds a component (10-60 s)
        return await trio.run_process(
            [sys.executable, *args], cwd=ROOT, env=env, capture_stdout=True, capture_stderr=True
        )


async def test_sandboxed_counter_shows_its_first_build_then_runs(tmp_path: Path) -> None:
    done = await _run(tmp_path, "examples/sandboxed_counter.py")
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "incr(2) -> 7" in out and "double -> 14" in out
    assert "spin -> SandboxCrashed" in out
    building = "... building the WebAssembly component of sandboxed_counter"
    assert building in err
    assert err.index(building) < err.index("... compiling component.wasm for this machine")
    assert "... sandboxed_counter: component ready (cache entry" in err
    # A second run finds it cached: nothing to build or compile, only "ready".
    again = (await _run(tmp_path, "examples/sandboxed_counter.py")).stderr.decode()
    assert "building" not in again and "compiling" not in again
    assert "... sandboxed_counter: component ready" in again


async def test_live_migration_sandboxed_workers_compile_nothing(tmp_path: Path) -> None:
    done = await _run(tmp_path, "examples/live_migration.py", "--moves", "2", "--sandbox")
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "... building the WebAssembly component of live_migration" in err
    assert "moved to w1" in out and "moved to w2" in out
    assert "0 out of order, across 2 migrations" in out
    # The build's entry and the one published under its hash share one compiled
    # artifact; a worker that had compiled it would have replaced its link.
    entries = sorted(os.listdir(tmp_path))
    (built,) = [tmp_path / n for n in entries if not n.startswith("sha256-")]
    (published,) = [tmp_path / n for n in entries if n.startswith("sha256-")]
    assert (
        os.stat(built / "component.cwasm").st_ino == os.stat(published / "component.cwasm").st_ino
    )
