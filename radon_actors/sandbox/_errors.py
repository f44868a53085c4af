"""The exceptions of the WebAssembly sandbox.

Imported inside the guest too: standard library only.
"""

from __future__ import annotations

from .._errors import RadonError

__all__ = [
    "MessageNotPortable",
    "SandboxBuildError",
    "SandboxCrashed",
    "SandboxDenied",
    "SandboxError",
]


class SandboxError(RadonError):
    """Base class of the errors of sandboxed (WebAssembly) atoms."""


class SandboxBuildError(SandboxError):
    """The atom's module could not be packaged into a WebAssembly component.

    The message names the module that cannot run in the sandbox (a native
    extension, a module that is missing, or one that needs the host at import
    time). Make it pure Python, move the atom to a module that does not import
    it, or spawn the atom with ``sandbox=False``.
    """


class SandboxCrashed(SandboxError):
    """The sandbox stopped the atom's guest: it ran out of fuel (its CPU budget per
    turn), passed its memory cap, overflowed its stack, or otherwise trapped.

    The guest instance is unusable afterwards; the atom's supervisor decides what
    happens next (by default a restart builds a fresh instance). Raise the limits
    with a :class:`~radon_actors.SandboxConfig` if the work is legitimate.
    """


class MessageNotPortable(SandboxError, ValueError):
    """A value cannot cross the sandbox boundary (it does not pickle, or the other
    side cannot rebuild it). Send plain data, Refs, or instances of classes that
    both the host and the atom's module can import."""


class SandboxDenied(SandboxError, PermissionError):
    """The host refused what a sandboxed atom asked for: something its
    :class:`~radon_actors.SandboxConfig` does not allow (a native child) or a
    quota it has used up (live timers, timer period, live children).

    Raised inside the atom's handler, which may catch it; the message names the
    ``SandboxConfig`` field that decides, so the host can raise it if the atom
    is trusted to do more.
    """
