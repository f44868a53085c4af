"""Benchmarks that start a process learn that it is ready (and often on which
port) from the first line it prints: :func:`first_line` waits for it."""

from __future__ import annotations

import trio

__all__ = ["first_line"]


async def first_line(proc: trio.Process, what: str, timeout: float = 30) -> bytes:
    """The first line ``proc`` writes to its stdout (a pipe), within ``timeout``
    seconds; :class:`RuntimeError` naming ``what`` if it exits first."""
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(timeout):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some()
            if not chunk:
                raise RuntimeError(f"{what} exited before it was ready")
            line += chunk
    return line
