"""What a call into the guest comes back with, as the host reads it.

A call ends in one of four ways, and each needs its own reading: a result
(``"d"`` and a payload), an exception the handler raised (``"f"`` and the
pickled exception), a suspension (``"s"``, handled by ``GuestAtom``), or a trap
(fuel, memory, stack: wasmtime raises, and the instance is unusable after).
The guest is trusted code but may be buggy, so nothing it returns is assumed
well formed: whatever cannot be decoded becomes a :class:`SandboxError` that
says so, never a bare decoding error from deep in pickle.
"""

from __future__ import annotations

import marshal
import pickle
from typing import Any

from ._codec import dec
from ._config import SandboxConfig
from ._errors import SandboxError

__all__ = ["SUSPENDED", "crash_reason", "decode_exception", "decode_result", "malformed", "settled"]

_ploads = pickle.loads
_mloads = marshal.loads

SUSPENDED: Any = object()
"""What :func:`settled` returns for an ``"s"`` outcome (the turn waits on the host)."""


def settled(outcome: str) -> Any:
    """The value of a finished call (``"d"``), or :data:`SUSPENDED` (``"s"``);
    raises the guest's exception (``"f"``) or the error of a malformed outcome."""
    tag = outcome[:1]
    if tag == "d":
        return decode_result(outcome)
    if tag == "f":
        raise decode_exception(outcome[1:])
    if tag != "s":
        raise malformed(outcome)
    return SUSPENDED


def decode_result(outcome: str) -> Any:
    """The value of a ``d`` outcome (the payload after the tag character)."""
    if outcome == "dN":  # marshal's None: what most tell handlers return
        return None
    try:
        # The codec's ``dec`` of the payload after the tag, inline (every turn's
        # path): 0x80 starts a pickle, anything else a marshal stream.
        data = outcome.encode("latin-1")
        return _ploads(data[1:]) if data[1] == 0x80 else _mloads(data[1:])
    except Exception as exc:
        raise SandboxError(f"the guest returned a result the host cannot decode: {exc!r}") from None


def decode_exception(payload: str) -> BaseException:
    """The exception of an ``f`` outcome (or of a failed snapshot), to raise."""
    try:
        exc = dec(payload)
    except Exception as err:
        return SandboxError(
            f"the sandboxed handler raised an exception the host cannot rebuild: {err!r}"
        )
    if not isinstance(exc, BaseException):
        return SandboxError(f"the guest reported a failure that is not an exception: {exc!r}")
    return exc


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
