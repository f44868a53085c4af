"""The process-wide directory of live atoms, used to resolve unpickled Refs.

Atom ids are unique across systems (each system draws a random prefix), so one
table serves every system in the process. A Ref whose atom is not here resolves
to a dead end: asks fail with AtomStopped, tells become dead letters.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .. import _ref
from .._errors import AtomStopped
from .._logs import get_logger
from ..mailbox import DeadLetter

if TYPE_CHECKING:
    from ._cell import AtomCell
    from ._system import System

__all__ = [
    "DeadEndpoint",
    "RemoteResolver",
    "lookup",
    "register",
    "resolve",
    "set_remote_resolver",
    "set_virtual_resolver",
    "unregister",
]

_log = get_logger("radon_actors.dead_letters")
# Process-wide on purpose: unpickling a Ref (pickle calls Ref's reducer with
# nothing but the id) has no system at hand, and ids are unique across systems.
# Live cells only: a cell leaves when it stops, so the table is bounded by the
# atoms alive in this process.
_cells: dict[str, AtomCell] = {}
# Each system by its id prefix, so a message to one of its stopped atoms lands in
# its dead letters even when it travelled through an unpickled Ref.
_systems: weakref.WeakValueDictionary[str, System] = weakref.WeakValueDictionary()


def register_system(prefix: str, system: System) -> None:
    """Make ``system`` the owner of the ids ``<prefix>.<n>`` (for dead letters)."""
    _systems[prefix] = system


def register(cell: AtomCell) -> None:
    """Make ``cell`` the endpoint of its id in this process."""
    _cells[cell.id] = cell


def unregister(cell: AtomCell) -> None:
    """Remove ``cell`` (if it is still the one registered for its id)."""
    if _cells.get(cell.id) is cell:
        del _cells[cell.id]


def lookup(atom_id: str) -> AtomCell | None:
    """The cell of ``atom_id`` in this process, if any."""
    return _cells.get(atom_id)


class DeadEndpoint:
    """Endpoint of a Ref to an atom this process does not know (stopped, or never here)."""

    __slots__ = ("_id", "_name")

    def __init__(self, atom_id: str, name: str | None) -> None:
        self._id = atom_id
        self._name = name

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        raise AtomStopped(f"atom {self._name or self._id} is not running")

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise AtomStopped(f"atom {self._name or self._id} is not running")

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        system = _systems.get(self._id.rpartition(".")[0])
        handler = h if isinstance(h, str) else getattr(h, "__name__", repr(h))
        if system is None:
            _log.warning(
                "dead_letter",
                atom_id=self._id,
                atom_name=self._name,
                handler=handler,
                reason="unknown atom",
            )
            return
        system.dead_letters.record(
            DeadLetter(self._id, self._name, handler, args, kwargs, "atom stopped")
        )

    def send(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Coroutine[Any, Any, None]:
        async def _send() -> None:
            self.tell(h, args, kwargs)

        return _send()


RemoteResolver = Callable[[str, "str | None", "str | None"], "_ref.Endpoint | None"]
_remote: RemoteResolver | None = None
# The ids of on-demand atoms (``System.get``): their endpoint, which activates
# the atom on its first message (durable: ``_virtual``).
_virtual: Callable[[str], _ref.Endpoint | None] | None = None


def set_virtual_resolver(resolver: Callable[[str], _ref.Endpoint | None]) -> None:
    """Resolve on-demand atoms' ids (which have no cell while inactive) through
    ``resolver``; None from it: not one of them."""
    global _virtual
    _virtual = resolver


def set_remote_resolver(resolver: RemoteResolver) -> None:
    """Route the ids this process has no cell for through ``resolver`` (placement:
    ``resolver(atom_id, name, via)`` returns a remote endpoint, or None for an atom
    of this process that has stopped). One per process: ids are unique across systems."""
    global _remote
    _remote = resolver


def resolve(atom_id: str, name: str | None, via: str | None = None) -> _ref.Endpoint:
    """The endpoint of ``atom_id``: its cell if it is here, else where the remote
    resolver routes it, else a dead end. ``via`` is the Ref's location hint."""
    cell = _cells.get(atom_id)
    if cell is not None:
        return cell
    if _virtual is not None:
        virtual = _virtual(atom_id)
        if virtual is not None:
            return virtual
    if _remote is not None:
        endpoint = _remote(atom_id, name, via)
        if endpoint is not None:
            return endpoint
    return DeadEndpoint(atom_id, name)


_ref._resolver = resolve
