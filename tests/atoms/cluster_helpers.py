"""Helpers for tests that start real host processes; they always clean up."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing

from radon_actors import Ref, StateStore, System, open_system
from radon_actors.testing import cell_of, node_of


async def count_when_arrived(ref: Ref[Any], h: Any, expected: int, bound: float = 20.0) -> int:
    """Ask ``h`` (a count of messages handled) of ``ref`` until it reaches
    ``expected`` (or ``bound`` seconds pass), and return the last count.

    After a remote sender's reply, its earlier tells may still be on their way:
    nothing orders messages from different senders, and a tell held for a full
    mailbox (or waiting for credit at the atom's origin) can come after this
    test's own ask (docs/placement.md, "Location transparency")."""
    count: int = await ref.ask(h)
    with trio.move_on_after(bound):
        while count < expected:
            await trio.testing.wait_all_tasks_blocked(cushion=0.001)
            count = await ref.ask(h)
    return count


def kill_workers(system: System) -> None:
    """SIGKILL every worker host process the system started that is still running."""
    node = node_of(system)
    if node is not None:
        for proc in node.processes.values():
            if proc.returncode is None:
                proc.kill()


def kill_host(system: System, name: str) -> None:
    """SIGKILL the worker host process called ``name``."""
    node = node_of(system)
    assert node is not None
    node.processes[node.peer_by_name(name).node_id].kill()


@asynccontextmanager
async def cluster(
    *names: str, state_store: StateStore | None = None, **options: Any
) -> AsyncIterator[System]:
    """A system with worker hosts (``options`` go to ``start_host``), and its
    ``state_store``; the workers are killed whatever happens."""
    async with open_system(shutdown_timeout=5, state_store=state_store) as system:
        try:
            for name in names:
                await system.start_host(name, **options)
            yield system
        finally:
            kill_workers(system)


@asynccontextmanager
async def radon_host(
    secret: Path,
    name: str,
    *args: str,
    pythonpath: list[str] | None = None,
    cwd: Path | None = None,
) -> AsyncIterator[tuple[trio.Process, str]]:
    """A `radon host` process on a free loopback port: yields it and its READY line.

    ``args`` go on its command line; ``pythonpath`` is its PYTHONPATH (default:
    this process's ``sys.path``). The process is killed and reaped on the way
    out, whatever happens.
    """
    path = [p for p in sys.path if p] if pythonpath is None else pythonpath
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    cmd = [sys.executable, "-m", "radon_actors._cli", "host", "--listen", "127.0.0.1:0"]
    proc = await trio.lowlevel.open_process(
        [*cmd, "--secret-file", str(secret), "--name", name, *args],
        stdout=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        yield proc, await first_line(proc, "radon host")
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def first_line(proc: trio.Process, what: str) -> str:
    """The first line ``proc`` writes to its stdout (its READY line), within 30 s."""
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(30):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some()
            assert chunk, f"{what} exited early"
            line += chunk
    return line.decode().strip()


class Kind:
    """How a migration test runs its target atoms: natively or sandboxed.

    The migration tests take a ``kind`` fixture (native in
    ``test_placement_migration.py``; ``test_placement_sandbox.py`` runs the same
    test functions with a sandboxed kind). ``Counter``, ``Sequencer`` and
    ``Unpicklable`` are the target atoms' classes, ``Relay`` a native sender
    class whose handlers name the target's handlers by string.
    """

    def __init__(self, name: str, module: Any, *, sandbox: bool) -> None:
        self.name = name
        self.sandbox = sandbox
        self.Counter: Any = module.Counter
        self.Sequencer: Any = module.Sequencer
        self.Unpicklable: Any = module.Unpicklable
        self.Relay: Any = module.Relay

    def __repr__(self) -> str:
        return self.name

    async def spawn(self, system: System, cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        """Spawn a target atom of this kind."""
        return await system.spawn(cls, *args, sandbox=self.sandbox, **kwargs)

    async def where(self, system: System, ref: Any) -> str:
        """The name of the host the atom runs on, per its origin's directory (the
        entry every Ref goes through; the atoms of these tests are spawned here).

        A native atom with a ``where`` handler also says in which process it
        really runs (its pid), which must agree. A sandboxed one cannot (the
        guest has no process).
        """
        node = node_of(system)
        cell = cell_of(ref)
        assert cell is not None, f"{ref} has no directory entry here"
        if cell.away is None:
            assert cell.instance is not None and cell.state == 1, f"{ref} is not running here"
            host = "local"
        else:
            assert node is not None
            host = str(node.peers[cell.away.target.peer_id].name)  # type: ignore[attr-defined]
        if not self.sandbox and "where" in cell.table:
            pid = int(await ref.ask("where"))
            procs = {} if node is None else node.processes
            actual = "local" if pid == os.getpid() else "?"
            for node_id, proc in procs.items():
                if proc.pid == pid:
                    actual = str(node.peers[node_id].name)  # type: ignore[union-attr]
            assert actual == host, f"{ref} runs on {actual}, its directory says {host}"
        return host


def native_kind() -> Kind:
    import placement_atoms

    return Kind("native", placement_atoms, sandbox=False)


def sandboxed_kind() -> Kind:
    import mobile_atoms

    return Kind("sandboxed", mobile_atoms, sandbox=True)


def record_frames(system: System) -> list[tuple[Any, ...]]:
    """Every frame this process's node receives from now on (a test probe)."""
    node = node_of(system)
    assert node is not None
    seen: list[tuple[Any, ...]] = []
    table = node.table.handlers

    def recording(handler: Any) -> Any:
        def record(peer: Any, frame: tuple[Any, ...]) -> Any:
            seen.append(frame)
            return handler(peer, frame)

        return record

    # In place: the connections' readers hold this table.
    for kind, handler in list(table.items()):
        table[kind] = recording(handler)
    return seen


@asynccontextmanager
async def redis_server(*args: str) -> AsyncIterator[int]:
    """A redis-server of the test's own on a free loopback port (``args`` on
    its command line, no persistence): yields the port; killed afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await trio.lowlevel.open_process(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", *args],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(30):  # redis logs this line once it listens
            while b"Ready to accept connections" not in seen:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"redis-server exited: {seen.decode(errors='replace')}"
                seen += chunk
        yield port
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


@asynccontextmanager
async def announced_process(
    cmd: list[str], announcement: bytes, *, cwd: Path, timeout: float = 300
) -> AsyncIterator[tuple[trio.Process, re.Match[bytes]]]:
    """Run ``cmd`` until its standard output matches the regex ``announcement``
    (a server saying where it listens): yields the process and the match. On
    the way out, whatever happens: Ctrl-C, 30 s to exit, then a kill."""
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, cwd=cwd)
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(timeout):
            while (found := re.search(announcement, seen)) is None:
                chunk = await proc.stdout.receive_some()
                assert chunk, f"{cmd[2:4]} exited: {seen.decode(errors='replace')}"
                seen += chunk
        yield proc, found
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            with trio.move_on_after(30):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
