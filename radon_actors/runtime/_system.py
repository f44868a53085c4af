"""``System`` and ``open_system``: the trio nursery that atoms live in."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import trio

from .._atom import Atom
from .._errors import NameTaken, NoSuchAtom
from .._ref import Ref
from ..mailbox import DeadLetters, MailboxStatistics
from . import _directory
from ._cell import AtomCell

if TYPE_CHECKING:
    from ..supervisor._spec import ChildSpec
    from ..supervisor._supervisor import Supervisor

__all__ = ["System", "open_system"]

A = TypeVar("A", bound=Atom)

_log = structlog.get_logger("radon_actors")

DEFAULT_MAILBOX_SIZE = 10_000
DEFAULT_SHUTDOWN_TIMEOUT = 10.0


class System:
    """A running atom system. Create one with :func:`open_system`.

    The system's root is a :class:`~radon_actors.Supervisor`: atoms spawned here
    are its (transient) children; atoms spawned by atoms are their children. When
    the system closes, the root stops its children in reverse start order, and
    each atom stops its own children (newest first) before itself.
    """

    def __init__(self, nursery: trio.Nursery, *, mailbox_size: int) -> None:
        self._nursery = nursery
        self._prefix = secrets.token_hex(4)
        _directory.register_system(self._prefix, self)
        self._ids = itertools.count(1)
        self._names: dict[str, AtomCell] = {}
        self._top: dict[str, AtomCell] = {}
        self._closing = False
        self._mailbox_size = mailbox_size
        self._root: AtomCell | None = None
        self._crash: BaseException | None = None
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
        sandbox: Any = None,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[A]:
        """Start an atom of class ``cls`` built with ``cls(*args, **kwargs)``.

        Returns once the atom's ``on_start`` has run. ``name`` makes it findable
        with :meth:`lookup` (names are unique among live atoms). ``mailbox_size``
        bounds its mailbox (default: the class's ``mailbox_size`` attribute if it
        has one, else the system's). Raises :class:`~radon_actors.SpawnError` if
        the constructor or ``on_start`` fails.

        The atom is a *transient* child of the system's root supervisor: a failing
        handler restarts it (same Ref, queued messages kept) unless the root was
        given other rules; stopping itself is final. See docs/supervision.md.

        ``sandbox`` (``True`` or a :class:`~radon_actors.SandboxConfig`; default: the
        class's ``sandbox`` attribute, else ``False``) runs the atom's handlers inside
        WebAssembly; see docs/sandbox.md.

        ``host`` places the atom on a host started with :meth:`start_host` or
        joined with :meth:`connect_host` (a name, or a placement policy such as
        ``RoundRobin()``); see docs/placement.md. A sandboxed atom placed there
        runs its component, which is sent to that host once (by content hash).
        """
        root = self._root
        if root is None or self._closing:
            return await self._spawn(
                cls, args, kwargs, name=name, mailbox_size=mailbox_size, sandbox=sandbox, host=host
            )
        supervisor: Supervisor = root.instance
        return await supervisor._adopt(
            cls, args, kwargs, name, mailbox_size, sandbox=sandbox, host=host
        )

    @property
    def root(self) -> Ref[Any]:
        """The Ref of the root supervisor (``ask`` it ``which_children``, ``start_child``...)."""
        if self._root is None:
            raise RuntimeError("the atom system has no root supervisor yet")
        return self._root.ref

    async def _start_root(self, spec: ChildSpec | None) -> None:
        from ..supervisor._spec import ChildSpec
        from ..supervisor._supervisor import Supervisor, root_decider

        if spec is None:
            # The default root restarts without limit: see docs/supervision.md.
            spec = ChildSpec(Supervisor, kwargs={"max_restarts": None})
        elif not (isinstance(spec, ChildSpec) and issubclass(spec.cls, Supervisor)):
            raise TypeError(
                f"root must be a Supervisor's ChildSpec (Supervisor.spec(...)), not {spec!r}"
            )

        def setup(cell: AtomCell) -> None:
            cell.decider = root_decider
            cell.on_stopped.append(self._root_stopped)

        ref = await self._spawn(
            spec.cls,
            spec.args,
            spec.kwargs,
            name=spec.name,
            mailbox_size=spec.mailbox_size,
            setup=setup,
        )
        self._root = _directory.lookup(ref.id)

    def _root_stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        if reason is not None and not self._closing:
            # The root gave up (restart intensity, or an escalation reached it):
            # the whole system stops and open_system raises the reason.
            _log.critical("system.crashed", reason=repr(reason))
            self._crash = reason
            self._closing = True
            self._nursery.cancel_scope.cancel()

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
        setup: Callable[[AtomCell], None] | None = None,
        sandbox: Any = None,
        host: Any = None,
    ) -> Ref[Any]:
        if not (isinstance(cls, type) and issubclass(cls, Atom)):
            raise TypeError(f"spawn() takes an Atom subclass, not {cls!r}")
        if self._closing:
            raise RuntimeError("the atom system is shutting down; no new atoms can be spawned")
        if host is not None:
            # Another host runs it; its cell here forwards (radon_actors.placement).
            from ..placement._supervised import choose_host

            host = await choose_host(self, host, cls)
        runtime: Any = None
        if sandbox is None:
            sandbox = getattr(cls, "sandbox", False)
        if sandbox is not False:
            # Imported only when used: it needs wasmtime.
            from ..sandbox import _spawn as sandboxing

            runtime = await sandboxing.runtime_for(cls, sandbox)
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"an atom name must be a non-empty str, not {name!r}")
            if name in self._names:
                raise NameTaken(f"an atom named {name!r} is already running")
        capacity = mailbox_size or getattr(cls, "mailbox_size", None) or self._mailbox_size
        atom_id = f"{self._prefix}.{next(self._ids)}"
        cell = AtomCell(self, cls, args, kwargs, atom_id, name, parent, capacity)
        if runtime is not None:
            cell.sandbox = runtime
            cell.table = runtime.table
        if setup is not None:
            setup(cell)  # e.g. a supervisor's failure plumbing, before the atom runs
        if name is not None:
            self._names[name] = cell
        (parent.children if parent is not None else self._top)[atom_id] = cell
        _directory.register(cell)
        if host is not None:
            from ..placement._supervised import start_remote

            await start_remote(cell, host)
            return cell.ref
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

    def mailbox_statistics(self, ref: Ref[Any]) -> MailboxStatistics:
        """Queue lengths of a live atom's mailbox (for monitoring and tests)."""
        cell = _directory.lookup(ref.id)
        if cell is None or cell.system is not self:
            raise NoSuchAtom(f"{ref!r} is not a running atom of this system")
        return cell.mailbox.statistics()

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

    def _load(self) -> int:
        """Top-level atoms running here (the root's children and atoms placed here
        from other hosts): what a least-loaded placement policy compares."""
        root = self._root
        count = len(self._top)
        if root is not None and self._top.get(root.id) is root:
            # Atoms placed on other hosts from here have a (taskless) cell here.
            count += sum(1 for c in root.children.values() if c.task is not None) - 1
        return count

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
    root: ChildSpec | None = None,
) -> AsyncIterator[System]:
    """Open an atom system for the duration of an ``async with`` block.

    Leaving the block stops every atom (children before parents, ``on_stop`` run)
    and waits for them, at most ``shutdown_timeout`` seconds, after which whatever
    is left is cancelled. An exception leaving the block is re-raised unchanged
    after the shutdown.

    ``root`` declares the root supervisor (``Supervisor.spec(children, ...)``); its
    children start before the block runs. If the root gives up (its restart
    intensity is exceeded, or a failure escalates to it), the block is cancelled
    and ``open_system`` raises the root's reason
    (:class:`~radon_actors.RestartIntensityExceeded` or
    :class:`~radon_actors.Escalated`).
    """
    if not isinstance(mailbox_size, int) or mailbox_size < 1:
        raise ValueError(f"mailbox_size must be a positive int, not {mailbox_size!r}")
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        system = System(nursery, mailbox_size=mailbox_size)
        try:
            await system._start_root(root)
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
    if system._crash is not None:
        raise system._crash
    if error is not None:
        raise error
