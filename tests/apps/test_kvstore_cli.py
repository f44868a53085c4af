"""The kvstore example's own command line, in each deployment (issue #13).

Each test starts ``python -m examples.kvstore`` as a user would and asks the
running store, through ``redis-cli``, where its shards' replicas run
(``INFO radon``: the platform and process id each replica reports).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def kvstore(*flags: str) -> AsyncIterator[tuple[trio.Process, int]]:
    """The example running on a free port: yields it and its port; Ctrl-C (then
    a kill) on the way out, whatever happens."""
    cmd = [sys.executable, "-m", "examples.kvstore", "--port", "0", *flags]
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(300):  # --sandbox may build the component first
            while (found := re.search(rb"kv\.listening.*port=(\d+)", seen)) is None:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"the store exited: {seen.decode(errors='replace')}"
                seen += chunk
        yield proc, int(found.group(1))
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            with trio.move_on_after(30):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def redis_cli(port: int, *args: str) -> str:
    out = await trio.run_process(
        ["redis-cli", "-p", str(port), *args], capture_stdout=True, check=True
    )
    return out.stdout.decode()


async def placement(port: int) -> list[list[tuple[str, int]]]:
    info = await redis_cli(port, "INFO", "radon")
    shards = []
    for line in info.splitlines():
        if line.startswith("shard") and ":" in line and not line.startswith("shards:"):
            replicas = line.split(":", 1)[1].split(",")
            shards.append([(p, int(pid)) for p, pid in (r.split("/") for r in replicas)])
    return shards


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


async def _set_get(port: int) -> None:
    assert (await redis_cli(port, "SET", "k", "v")).strip() == "OK"
    assert (await redis_cli(port, "GET", "k")).strip() == "v"


async def test_by_default_every_shard_runs_in_the_store_process() -> None:
    async with kvstore("--shards", "2", "--replicas", "2") as (proc, port):
        await _set_get(port)
        shards = await placement(port)
    assert len(shards) == 2
    assert {r for group in shards for r in group} == {(sys.platform, proc.pid)}


async def test_hosts_puts_the_replicas_in_that_many_worker_processes() -> None:
    async with kvstore("--shards", "3", "--replicas", "2", "--hosts", "2") as (proc, port):
        await _set_get(port)
        shards = await placement(port)
        pids = {pid for group in shards for _, pid in group}
        assert len(pids) == 2 and proc.pid not in pids
        assert {parent_of(pid) for pid in pids} == {proc.pid}  # its worker hosts
        for group in shards:  # a shard's two replicas on two different hosts
            assert len({pid for _, pid in group}) == 2


async def test_sandbox_runs_every_replica_in_webassembly() -> None:
    async with kvstore("--shards", "2", "--replicas", "2", "--sandbox") as (_, port):
        await _set_get(port)
        shards = await placement(port)
    assert len(shards) == 2
    assert {platform for group in shards for platform, _ in group} == {"wasi"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hosts", "2", "--sandbox"], "cannot be combined"),
        (["--hosts", "-1"], "--hosts must be 0"),
        (["--shards", "0"], "--shards must be at least 1"),
    ],
)
def test_bad_deployment_flags_are_refused(flags: list[str], message: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "examples.kvstore", *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2 and message in out.stderr
