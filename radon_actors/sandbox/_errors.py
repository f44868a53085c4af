"""The exceptions of the WebAssembly sandbox.

Imported inside the guest too: standard library only.
"""

from __future__ import annotations

import builtins

from .._errors import RadonError

__all__ = [
    "MessageNotPortable",
    "SandboxBuildError",
    "SandboxCrashed",
    "SandboxDenied",
    "SandboxError",
    "ForeignError",
    "foreign_kind",
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


class ForeignError(RadonError):
    """An exception raised on the other side of the sandbox boundary, which
    crossed as data: its type's name, its message and its traceback text.

    The host never rebuilds a guest's exception from its class (that would run
    the guest's choice of code on the host): a built-in exception type and
    radon-actors' own errors are rebuilt as themselves, a class registered with
    :func:`~radon_actors.portable` is rebuilt by calling it with the exception's
    arguments, and anything else arrives as a ``ForeignError``. It also derives
    from the nearest built-in (or radon-actors) type the original derived
    from, so ``except ValueError`` still catches a guest's ``class Invalid(ValueError)``,
    and from :class:`~radon_actors.Rejection` when the guest's handler raised it
    as an answer. Supervisor deciders match a guest's type by
    :attr:`type_name`.

    Attributes: ``type_name`` (``"module:QualName"`` of the original type),
    ``message`` (its ``str``), ``traceback`` (the traceback text inside the
    sandbox, or ``""``).
    """

    type_name: str
    message: str
    traceback: str

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type_name!r}, {self.message!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Rebuilt by kind (the dynamic subclass is not importable by name).
        base = next((k for k in type(self).__mro__[1:] if k in _BASES.values()), None)
        answer = any(k.__name__ == "Rejection" for k in type(self).__mro__)
        return (
            _rebuild_foreign,
            (self.type_name, self.message, self.traceback, base, answer),
        )


# The types a ForeignError may also derive from, by name: the built-in
# exceptions (those that can stand beside another base and be raised freely)
# and radon-actors' own errors (filled in by ``_value``).
_BASES: dict[str, type[Exception]] = {
    name: kind
    for name, kind in vars(builtins).items()
    if isinstance(kind, type)
    and issubclass(kind, Exception)
    # Not raised freely (they end iterations), or not built from a message alone.
    and not issubclass(kind, (StopIteration, StopAsyncIteration, ExceptionGroup))
    and kind not in (UnicodeDecodeError, UnicodeEncodeError, UnicodeTranslateError)
    and kind is not Exception
}


def _radon_errors(root: type[Exception]) -> list[type[Exception]]:
    found = []
    for kind in root.__subclasses__():
        if kind is not ForeignError and kind.__module__.startswith("radon_actors."):
            found.append(kind)
            found.extend(_radon_errors(kind))
    return found


# radon-actors' own errors defined so far (the core's and the sandbox's: what a
# guest can meet); placement's, defined later, arrive as plain ForeignErrors.
_BASES.update((kind.__name__, kind) for kind in _radon_errors(RadonError))
_kinds: dict[tuple[type[Exception] | None, bool], type[ForeignError]] = {}


def _rebuild_foreign(
    type_name: str, message: str, traceback: str, base: type[Exception] | None, answer: bool
) -> ForeignError:
    return foreign_kind(base, answer)(type_name, message, traceback)


def foreign_kind(base: type[Exception] | None, answer: bool) -> type[ForeignError]:
    """The ForeignError subclass that also derives from ``base`` (and from
    Rejection if ``answer``): one class per combination, made on first use."""
    kind = _kinds.get((base, answer))
    if kind is not None:
        return kind
    bases: list[type] = [ForeignError]
    if base is not None:
        bases.append(base)
    if answer:
        from .._atom import Rejection

        bases.append(Rejection)
    name = "Foreign" + (base.__name__ if base is not None else "") + ("Answer" if answer else "")
    if len(bases) == 1:
        kind = ForeignError
    else:
        try:
            kind = type(name, tuple(bases), {})
            kind.__module__ = "radon_actors"
            kind("probe", "probe")  # a base whose constructor needs more cannot stand here
        except TypeError:
            kind = foreign_kind(None, answer) if base is not None else ForeignError
    _kinds[(base, answer)] = kind
    return kind
