"""``System`` and ``open_system``: the trio nursery that atoms live in."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import structlog
import trio

from .._atom import Atom
from .._errors import NameTaken, NoSuchAtom
from .._ref import Ref
from ..mailbox import DeadLetters
from . import _directory
from ._cell import AtomCell

__all__ = ["System", "open_system"]

A = TypeVar("A", bound=Atom)

_log = structlog.get_logger("radon_actors")

DEFAULT_MAILBOX_SIZE = 10_000
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


class System:
    """A running atom system. Create one with :func:`open_system`.

    Atoms spawned here are *top-level*; atoms spawned by atoms are their children.
    When the system closes, top-level atoms stop in reverse spawn order, and each
    atom stops its own children (newest first) before itself.
    """

    def __init__(self, nursery: trio.Nursery, *, mailbox_size: int) -> None:
        self._nursery = nursery
        self._prefix = secrets.token_hex(4)
        self._ids = itertools.count(1)
        self._names: dict[str, AtomCell] = {}
        self._top: dict[str, AtomCell] = {}
        self._closing = False
        self._mailbox_size = mailbox_size
        # The placement node (radon_actors.placement), made on first use.
        self._placement: Any = None
        self.dead_letters = DeadLetters()
        """Messages that could not be delivered (see :class:`~radon_actors.DeadLetters`)."""

    async def spawn(
        self,
        cls: type[A],
        /,
        *args: Any,
        name: str | None = None,
        mailbox_size: int | None = None,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[A]:
        """Start an atom of class ``cls`` built with ``cls(*args, **kwargs)``.

        Returns once the atom's ``on_start`` has run. ``name`` makes it findable
        with :meth:`lookup` (names are unique among live atoms). ``mailbox_size``
        bounds its mailbox (default: the class's ``mailbox_size`` attribute if it
        has one, else the system's). Raises :class:`~radon_actors.SpawnError` if
        the constructor or ``on_start`` fails. ``host`` places the atom on a host
        started with :meth:`start_host` or joined with :meth:`connect_host` (a
        name, or a placement policy such as ``RoundRobin()``).
        """
        if host is not None:
            from ..placement._node import get_node

            return await get_node(self).spawn(host, cls, args, kwargs, name, mailbox_size)
        return await self._spawn(cls, args, kwargs, name=name, mailbox_size=mailbox_size)

    async def start_host(self, name: str, **options: Any) -> str:
        """Start a worker host process ``name`` on this machine and return its name.

        It gets a fresh random cluster secret, listens on loopback only and exits
        with this system. Spawn atoms on it with ``spawn(..., host=name)``.
        """
        from ..placement._hosts import start_host

        return await start_host(self, name, **options)

    async def connect_host(self, address: str, **options: Any) -> str:
        """Join the host listening at ``host:port`` (started with ``radon host``).

        Pass the cluster secret as ``secret=`` (bytes) or ``secret_file=``; returns
        the host's name (``name=`` overrides it).
        """
        from ..placement._hosts import connect_host

        return await connect_host(self, address, **options)

    @property
    def hosts(self) -> list[str]:
        """Names of the live hosts of this system (``"local"`` is this process)."""
        if self._placement is None:
            return ["local"]
        return [h.name for h in self._placement.hosts()]

    async def migrate(self, ref: Ref[Any], *, to: str) -> None:
        """Move a running atom to host ``to`` (``"local"``: this process), live.

        Its Refs keep working and no message is lost or reordered; see
        ``docs/placement.md``. Raises ``MigrationError`` (the atom keeps running
        where it was) when the move fails.
        """
        from ..placement._migration import migrate
        from ..placement._node import get_node

        await migrate(get_node(self), ref, to)

    async def _spawn(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str | None = None,
        parent: AtomCell | None = None,
        mailbox_size: int | None = None,
    ) -> Ref[Any]:
        if not (isinstance(cls, type) and issubclass(cls, Atom)):
            raise TypeError(f"spawn() takes an Atom subclass, not {cls!r}")
        if self._closing:
            raise RuntimeError("the atom system is shutting down; no new atoms can be spawned")
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"an atom name must be a non-empty str, not {name!r}")
            if name in self._names:
                raise NameTaken(f"an atom named {name!r} is already running")
        capacity = mailbox_size or getattr(cls, "mailbox_size", None) or self._mailbox_size
        atom_id = f"{self._prefix}.{next(self._ids)}"
        cell = AtomCell(self, cls, args, kwargs, atom_id, name, parent, capacity)
        if name is not None:
            self._names[name] = cell
        (parent.children if parent is not None else self._top)[atom_id] = cell
        _directory.register(cell)
        # start() returns after on_start; an exception before that (SpawnError)
        # is raised here instead of reaching the nursery.
        await self._nursery.start(cell.run)
        return cell.ref

    def _forget(self, cell: AtomCell) -> None:
        if cell.name is not None and self._names.get(cell.name) is cell:
            del self._names[cell.name]
        if self._top.get(cell.id) is cell:
            del self._top[cell.id]

    def lookup(self, name: str) -> Ref[Any]:
        """The Ref of the live atom called ``name``; raises :class:`NoSuchAtom`."""
        cell = self._names.get(name)
        if cell is None:
            raise NoSuchAtom(f"no running atom is named {name!r}")
        return cell.ref

    async def stop(self, ref: Ref[Any]) -> None:
        """Stop the atom behind ``ref`` (children first) and wait until it has stopped.

        Stopping an atom that already stopped does nothing.
        """
        cell = _directory.lookup(ref.id)
        if cell is None and self._placement is not None:
            await self._placement.stop_atom(ref.id)  # an atom on another host
            return
        if cell is None or cell.system is not self:
            await trio.lowlevel.checkpoint()
            return
        cell.request_stop()
        await cell.stopped.wait()

    async def _shutdown(self) -> None:
        self._closing = True
        for cell in reversed(list(self._top.values())):
            cell.request_stop()
            await cell.stopped.wait()
        if self._placement is not None:
            await self._placement.aclose()


@asynccontextmanager
async def open_system(
    *,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
) -> AsyncIterator[System]:
    """Open an atom system for the duration of an ``async with`` block.

    Leaving the block stops every atom (children before parents, ``on_stop`` run)
    and waits for them, at most ``shutdown_timeout`` seconds, after which whatever
    is left is cancelled. An exception leaving the block is re-raised unchanged
    after the shutdown.
    """
    if not isinstance(mailbox_size, int) or mailbox_size < 1:
        raise ValueError(f"mailbox_size must be a positive int, not {mailbox_size!r}")
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        system = System(nursery, mailbox_size=mailbox_size)
        try:
            yield system
        except BaseException as exc:
            # Re-raised below, outside the nursery, so it reaches the caller as
            # itself and not wrapped in an ExceptionGroup.
            error = exc
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(shutdown_timeout) as scope:
                await system._shutdown()
            if scope.cancelled_caught:
                _log.warning("system.shutdown_timeout", timeout=shutdown_timeout)
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error
