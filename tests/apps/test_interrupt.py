"""Ctrl-C stops the long-running programs cleanly: no traceback (issue #13)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]


async def _interrupt_when(cmd: list[str], ready: bytes, stream: str) -> tuple[int, str]:
    """Start ``cmd``, wait for ``ready`` on its ``stream``, send SIGINT; its exit
    status and stderr. The process is killed on the way out, whatever happens."""
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
            proc.send_signal(signal.SIGINT)
            await proc.wait()
            err = seen if stream == "stderr" else b""
            while chunk := await proc.stderr.receive_some():
                err += chunk
        return proc.returncode, err.decode(errors="replace")
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
