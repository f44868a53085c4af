"""Ctrl-C stops the long-running programs cleanly: no traceback (issue #13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]


async def _interrupt_when(
    cmd: list[str], ready: bytes, stream: str, sig: int = signal.SIGINT
) -> tuple[int, str]:
    """Start ``cmd``, wait for ``ready`` on its ``stream``, send ``sig`` (Ctrl-C's
    SIGINT by default); its exit status and stderr. The process is killed on the
    way out, whatever happens."""
    proc = await trio.lowlevel.open_process(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    try:
        pipe = proc.stdout if stream == "stdout" else proc.stderr
        assert pipe is not None and proc.stderr is not None
        seen = b""
        with trio.fail_after(60):
            while ready not in seen:
                chunk = await pipe.receive_some()
                assert chunk, f"exited before {ready!r}: {seen.decode(errors='replace')}"
                seen += chunk
            proc.send_signal(sig)
            status = await proc.wait()
            err = seen if stream == "stderr" else b""
            while chunk := await proc.stderr.receive_some():
                err += chunk
        return status, err.decode(errors="replace")
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


async def test_ctrl_c_stops_the_kvstore_example_cleanly() -> None:
    cmd = [sys.executable, "-m", "examples.kvstore", "--port", "0", "--shards", "2"]
    status, stderr = await _interrupt_when(cmd, b"kv.listening", "stdout")
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert status == 130


async def test_ctrl_c_stops_radon_host_cleanly(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)  # a shared secret must be private (read_secret checks)
    radon = Path(sys.executable).parent / "radon"
    cmd = [str(radon), "host", "--listen", "127.0.0.1:0", "--secret-file", str(secret)]
    status, stderr = await _interrupt_when(cmd, b"READY", "stdout")
    assert "Traceback" not in stderr and status == 0, stderr


async def test_sigterm_stops_radon_host_and_radon_member_cleanly(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    radon = str(Path(sys.executable).parent / "radon")
    host = [radon, "host", "--listen", "127.0.0.1:0", "--secret-file", str(secret)]
    member = [radon, "member", "--cluster", "c", "--secret-file", str(secret),
              "--state-store", f"sqlite:///{tmp_path / 'state.db'}"]  # fmt: skip
    for cmd in (host, member):
        # What an orchestrator sends to stop a container.
        status, stderr = await _interrupt_when(cmd, b"READY", "stdout", signal.SIGTERM)
        assert "Traceback" not in stderr and status == 0, stderr


async def test_radon_member_on_a_taken_port_says_so_without_a_traceback(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    radon = str(Path(sys.executable).parent / "radon")
    with trio.socket.socket() as taken:
        await taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await trio.run_process(
            [radon, "member", "--cluster", "c", "--secret-file", str(secret),
             "--state-store", f"sqlite:///{tmp_path / 'state.db'}",
             "--listen", f"127.0.0.1:{port}"],
            capture_stdout=True, capture_stderr=True, check=False, cwd=ROOT,
        )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in stderr, stderr
    assert "radon member:" in stderr and "address" in stderr.lower(), stderr
