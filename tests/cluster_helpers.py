"""Helpers for tests that start real host processes; they always clean up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from radon_actors import System, open_system


def kill_workers(system: System) -> None:
    """SIGKILL every worker host process the system started that is still running."""
    node = system._placement
    if node is not None:
        for proc in node.processes.values():
            if proc.returncode is None:
                proc.kill()


@asynccontextmanager
async def cluster(*names: str, **options: Any) -> AsyncIterator[System]:
    """A system with worker hosts; the workers are killed whatever happens."""
    async with open_system(shutdown_timeout=5) as system:
        try:
            for name in names:
                await system.start_host(name, **options)
            yield system
        finally:
            kill_workers(system)


@asynccontextmanager
async def radon_host(secret: Path, name: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """A `radon host` process on a free loopback port: yields it and its READY line.

    The process is killed and reaped on the way out, whatever happens.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "radon_actors._cli", "host", "--listen", "127.0.0.1:0"]
    proc = await trio.lowlevel.open_process(
        [*cmd, "--secret-file", str(secret), "--name", name],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, "radon host exited early"
                line += chunk
        yield proc, line.decode().strip()
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
