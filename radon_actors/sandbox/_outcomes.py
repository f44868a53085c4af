"""What a call into the guest comes back with, as the host reads it.

A call ends in one of four ways, and each needs its own reading: a result
(``"d"`` and a value), an exception the handler raised (``"f"`` and an
``$error`` value), a suspension (``"s"``), or a trap (fuel, memory, stack:
wasmtime raises, and the instance is unusable after). ``GuestAtom.outcome``
reads the first three with the instance's reader (``_boundary``); this module
holds what does not depend on the instance. Nothing a guest returns is assumed
well formed.
"""

from __future__ import annotations

from typing import Any

from ._config import SandboxConfig
from ._errors import SandboxError

__all__ = ["SUSPENDED", "crash_reason", "malformed"]

SUSPENDED: Any = object()
"""What ``GuestAtom.outcome`` returns for an ``"s"`` outcome (the turn waits on the host)."""


def malformed(outcome: str) -> SandboxError:
    """The error for an outcome that follows no rule of the standard."""
    return SandboxError(
        f"the guest returned a malformed outcome {outcome[:40]!r} (expected a first "
        "character d, f or s; see docs/standard.md)"
    )


def crash_reason(exc: BaseException, config: SandboxConfig) -> str:
    """Why wasmtime stopped the guest, in words that point at the limit it hit."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "fuel" in text:
        return f"it ran out of fuel, its CPU budget per turn ({config.fuel:,}): {first}"
    if "stack overflow" in text or "call stack exhausted" in text:
        return f"its stack overflowed: {first}"
    if "unreachable" in text or "memory" in text:
        return (
            f"it trapped ({first}); a guest that passes its memory cap "
            f"({config.memory:,} bytes) aborts this way"
        )
    return f"it trapped: {first}"
