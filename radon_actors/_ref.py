"""``Ref``: the only handle on an atom.

A Ref is an atom id plus a cached *endpoint*: the object that actually delivers
messages. For an atom in this process the endpoint is its runtime cell; a cell
that moved away (or stopped) stays behind as a forwarder or a dead end, so a
Ref never needs updating and the hot path is one attribute load and one call.

Refs pickle to their id alone; unpickling asks the process's resolver (installed
by the host runtime, or by the WebAssembly guest runtime) for the endpoint. That
is what makes Refs work inside messages, across processes and in the sandbox.

This module is imported inside the WebAssembly guest: standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

if TYPE_CHECKING:
    from ._atom import Atom

__all__ = ["Ref"]

P = ParamSpec("P")
R = TypeVar("R")
A_co = TypeVar("A_co", bound="Atom", covariant=True)


class Endpoint(Protocol):
    """Delivers messages for one atom id (a local cell, a forwarder, a remote proxy)."""

    def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Coroutine[Any, Any, Any]: ...
    def send(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, None]: ...
    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...
    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...


# Set by whichever runtime is active in this process: maps an atom id, its name
# and optionally a location hint (the node id of the host running the atom) to an
# endpoint when a Ref is unpickled. See radon_actors.runtime._directory.
_resolver: Callable[..., Endpoint] | None = None


def _restore(atom_id: str, name: str | None, via: str | None = None) -> Ref[Any]:
    if _resolver is None:
        raise RuntimeError(
            "a radon_actors Ref was unpickled with no atom system running in this process"
        )
    if via is None:
        return Ref(atom_id, name, _resolver(atom_id, name))
    return Ref(atom_id, name, _resolver(atom_id, name, via))


class Ref(Generic[A_co]):
    """A handle on an atom: ``ask`` it, ``tell`` it, pass it around.

    Refs are hashable and compare equal when they name the same atom; they pickle,
    so they can travel inside messages to other atoms (and other hosts). A Ref
    keeps working when the atom behind it restarts or moves.

    The keyword ``timeout`` of :meth:`ask` is reserved: a handler parameter called
    ``timeout`` must be passed positionally.
    """

    __slots__ = ("_ep", "_id", "_name")

    def __init__(self, atom_id: str, name: str | None, endpoint: Endpoint) -> None:
        self._id = atom_id
        self._name = name
        self._ep = endpoint

    @property
    def id(self) -> str:
        """The atom's unique id (stable across restarts and moves)."""
        return self._id

    @property
    def name(self) -> str | None:
        """The name given at spawn, if any."""
        return self._name

    # ask -----------------------------------------------------------------
    # Overloads: a handler *function* is checked against its ParamSpec; with
    # ``timeout=`` (which PEP 612 cannot place beside P.kwargs) only the return
    # type is; a handler *name* is dynamic.
    @overload
    def ask(
        self,
        h: Callable[Concatenate[A_co, P], Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Coroutine[Any, Any, R]: ...
    @overload
    def ask(
        self,
        h: Callable[Concatenate[A_co, P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Coroutine[Any, Any, R]: ...
    @overload
    def ask(
        self,
        h: Callable[..., Awaitable[R]],
        /,
        *args: Any,
        timeout: float | None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, R]: ...
    @overload
    def ask(
        self, h: Callable[..., R], /, *args: Any, timeout: float | None, **kwargs: Any
    ) -> Coroutine[Any, Any, R]: ...
    @overload
    def ask(
        self, h: str, /, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Coroutine[Any, Any, Any]: ...

    def ask(  # type: ignore[misc]  # ``timeout`` is reserved beside P.kwargs
        self, h: Any, /, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Coroutine[Any, Any, Any]:
        """Send a message and await the handler's result.

        ``h`` is a handler name or the handler function (``Counter.incr``). The
        handler's exception is raised here, with the atom-side traceback. With
        ``timeout`` (seconds), :class:`~radon_actors.AskTimeout` is raised when no
        reply comes in time and the late reply is dropped. Cancelling the caller
        while the message is still queued withdraws it; once its turn has begun,
        the turn runs to completion and the reply is dropped.
        """
        return self._ep.ask(h, args, kwargs, timeout)

    # ask_nowait ------------------------------------------------------------
    @overload
    def ask_nowait(
        self,
        h: Callable[Concatenate[A_co, P], Awaitable[R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...
    @overload
    def ask_nowait(
        self,
        h: Callable[Concatenate[A_co, P], R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...
    @overload
    def ask_nowait(self, h: str, /, *args: Any, **kwargs: Any) -> Any: ...

    def ask_nowait(self, h: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Ask, and have the answer now, without waiting: or raise
        :class:`~radon_actors.WouldBlock` having delivered nothing.

        It answers when :meth:`ask` would run the handler at once, in the
        caller's task: the atom runs in this process, is idle with nothing
        queued, and the handler cannot suspend (a plain ``def``, or an
        ``async def`` with no ``await``). That turn is a turn like any other:
        its result is returned, its exception raised (a crash reaches the
        supervisor as usual). Otherwise ``WouldBlock``: ``await ref.ask(...)``
        then. A stopped atom raises ``AtomStopped``, a bad message
        ``HandlerNotFound`` or ``BadArguments``, as ``ask`` does.

        For code that must not yield, such as a server's poll loop answering
        many clients in one pass. It never checkpoints: a loop of these calls
        must let trio run other tasks itself.
        """
        return self._ep.ask_nowait(h, args, kwargs)

    # tell ----------------------------------------------------------------
    @overload
    def tell(
        self,
        h: Callable[Concatenate[A_co, P], Any],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None: ...
    @overload
    def tell(self, h: str, /, *args: Any, **kwargs: Any) -> None: ...

    def tell(self, h: Any, /, *args: Any, **kwargs: Any) -> None:
        """Deliver a message without waiting for a reply (fire and forget).

        Never blocks: raises :class:`~radon_actors.MailboxFull` when the mailbox is
        at capacity (use :meth:`send` to wait for room). Messages to a stopped atom
        go to the dead letters.
        """
        self._ep.tell(h, args, kwargs)

    @overload
    def send(
        self,
        h: Callable[Concatenate[A_co, P], Any],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Coroutine[Any, Any, None]: ...
    @overload
    def send(self, h: str, /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]: ...

    def send(self, h: Any, /, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, None]:
        """Like :meth:`tell`, but wait for room when the mailbox is full (backpressure)."""
        return self._ep.send(h, args, kwargs)

    # identity ------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __reduce__(self) -> tuple[Any, ...]:
        # ``via``: the host that runs the atom, when the pickling side knows it and
        # it is not the atom's origin, so the receiver can send there directly.
        via = getattr(self._ep, "via", None)
        if via is None:
            return (_restore, (self._id, self._name))
        return (_restore, (self._id, self._name, via))

    def __repr__(self) -> str:
        label = f" {self._name!r}" if self._name else ""
        return f"<Ref{label} {self._id}>"
