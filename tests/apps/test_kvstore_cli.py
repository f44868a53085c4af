"""The kvstore example's own command line, in each deployment (issue #13).

Each test starts ``python -m examples.kvstore`` as a user would and asks the
running store, through ``redis-cli``, where its shards' replicas run
(``INFO radon``: the platform and process id each replica reports).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from cluster_helpers import announced_process

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def kvstore(*flags: str) -> AsyncIterator[tuple[trio.Process, int]]:
    """The example running on a free port: yields it and its port (--sandbox may
    build the component first); stopped on the way out, whatever happens."""
    cmd = [sys.executable, "-m", "examples.kvstore", "--port", "0", *flags]
    async with announced_process(cmd, rb"kv\.listening.*port=(\d+)", cwd=ROOT) as (proc, found):
        yield proc, int(found.group(1))


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


@pytest.mark.parametrize(
    "flags", [(), ("--hosts", "2"), ("--sandbox",)], ids=["one-process", "hosts", "sandboxed"]
)
async def test_data_dir_keeps_every_acknowledged_write_through_a_sigkill(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    # Issue #19: --data-dir journals each write before it is acknowledged, so a
    # SIGKILLed store (no shutdown, nothing flushed on the way out) reads every
    # acknowledged write back, in every deployment.
    data = str(tmp_path / "data")
    async with kvstore("--data-dir", data, *flags) as (proc, port):
        assert await redis_cli(port, "SET", "a", "1") == "OK\n"
        assert await redis_cli(port, "INCR", "a") == "2\n"
        assert await redis_cli(port, "MSET", "x", "1", "y", "2") == "OK\n"  # two shards
        assert await redis_cli(port, "SET", "t", "v", "EX", "1000") == "OK\n"
        assert await redis_cli(port, "DEL", "y") == "1\n"
        proc.kill()
        await proc.wait()
    async with kvstore("--data-dir", data, *flags) as (proc, port):
        assert (await redis_cli(port, "MGET", "a", "x", "y")).split("\n") == ["2", "1", "", ""]
        assert 0 < int(await redis_cli(port, "TTL", "t")) <= 1000
        assert await redis_cli(port, "DBSIZE") == "3\n"
    async with kvstore(*flags) as (proc, port):  # without --data-dir: memory only
        assert await redis_cli(port, "DBSIZE") == "0\n"


async def test_data_dir_under_load_loses_no_acknowledged_incr_to_a_sigkill(tmp_path: Path) -> None:
    # Four clients INCR one counter as fast as the store answers; the store is
    # SIGKILLed mid-stream. After a restart the counter holds every acknowledged
    # INCR, and at most the one each client had in flight besides.
    data = str(tmp_path / "data")
    acked = 0
    async with kvstore("--data-dir", data) as (proc, port):
        enough = trio.Event()

        async def client() -> None:
            nonlocal acked
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            try:
                while True:
                    await stream.send_all(b"*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n")
                    reply = await stream.receive_some(64)
                    if not reply:
                        return
                    assert reply.startswith(b":") and reply.endswith(b"\r\n"), reply
                    acked += 1
                    if acked >= 400:
                        enough.set()
            except (trio.BrokenResourceError, OSError):
                return  # the store was killed

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(client)
            await enough.wait()
            proc.kill()
            await proc.wait()
    async with kvstore("--data-dir", data) as (proc, port):
        counter = int(await redis_cli(port, "GET", "c"))
        assert acked <= counter <= acked + 4
