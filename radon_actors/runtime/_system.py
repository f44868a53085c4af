"""``System`` and ``run_system``: the trio nursery that atoms live in.

The runtime's system knows nothing of supervision, the sandbox or other hosts:
those come in through :class:`~._seams.Extensions`, which the public
``radon_actors.open_system`` composes.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar, TypeVarTuple, overload

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled

from .._atom import Atom
from .._errors import NameTaken, NoSuchAtom
from .._logs import get_logger
from .._ref import Ref
from ..mailbox import DeadLetters, MailboxStatistics
from . import _directory
from ._cell import AtomCell
from ._seams import (
    CellState,
    Durability,
    Extensions,
    Isolation,
    Placement,
    RootSupervisor,
    SpawnRequest,
)

__all__ = ["System", "run_system"]

A = TypeVar("A", bound=Atom)
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")

_log = get_logger("radon_actors")

DEFAULT_MAILBOX_SIZE = 10_000
DEFAULT_SHUTDOWN_TIMEOUT = 10.0
# How long ``System.migrate`` may take by default: a move takes milliseconds,
# so this only bounds waiting for a long turn to end or a slow target.
DEFAULT_MIGRATE_TIMEOUT = 30.0
# The idle sweep's period: an atom whose task waited for messages through two
# sweeps in a row (between one and two periods idle) gives its task up, and
# the next message starts another. Rare enough that a busy atom never pays a
# task start per message; an idle atom then costs no task (about 2 KiB).
IDLE_SWEEP = 1.0


class System:
    """A running atom system. Create one with :func:`open_system`.

    The system's root is a :class:`~radon_actors.Supervisor`: atoms spawned here
    are its (transient) children; atoms spawned by atoms are their children. When
    the system closes, the root stops its children in reverse start order, and
    each atom stops its own children (newest first) before itself.
    """

    def __init__(
        self, nursery: trio.Nursery, *, mailbox_size: int, extensions: Extensions | None = None
    ) -> None:
        self._nursery = nursery
        self._prefix = secrets.token_hex(4)
        self._extensions = extensions if extensions is not None else Extensions()
        _directory.register_system(self._prefix, self)
        self._ids = itertools.count(1)
        self._names: dict[str, AtomCell] = {}
        self._top: dict[str, AtomCell] = {}
        self._closing = False
        self._tasked: set[AtomCell] = set()  # cells with a task (the idle sweep's)
        self._sweeping = False
        self._mailbox_size = mailbox_size
        self._root: AtomCell | None = None
        self._crash: BaseException | None = None
        # The extensions, made on first use (see ``Extensions``).
        self._placement: Placement | None = None
        self._isolation: Isolation | None = None
        self._durability: Durability | None = None
        self.dead_letters = DeadLetters()
        """Messages that could not be delivered (see :class:`~radon_actors.DeadLetters`)."""

    # Typing: PEP 612 cannot place the keyword-only options beside P.kwargs, so
    # a call with options is checked by an overload that types the positional
    # arguments as the whole constructor call (a TypeVarTuple) and passes
    # constructor keywords unchecked. There is one such overload per option,
    # each requiring its option, so that a call without options never reaches
    # their unchecked ``**kwargs`` and gets the full ParamSpec check (last).
    # No overload can tell "constructor keywords present" from "absent", hence
    # the trade-off in the docstring. The option overloads come first so that
    # mypy's error for a wrong call with options names the expected constructor
    # signature, instead of calling the option an unexpected keyword.
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None,
        mailbox_size: int | None = None,
        sandbox: Any = None,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None = None,
        mailbox_size: int | None,
        sandbox: Any = None,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None = None,
        mailbox_size: int | None = None,
        sandbox: Any,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None = None,
        mailbox_size: int | None = None,
        sandbox: Any = None,
        host: Any,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> Ref[A]: ...

    async def spawn(  # type: ignore[misc]  # the options are reserved beside P.kwargs
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

        The keywords ``name``, ``mailbox_size``, ``sandbox`` and ``host`` are
        reserved: they are never passed to the constructor. Type checkers check
        the constructor arguments against ``cls.__init__``: all of them when no
        option is given; with options, the positional ones, which must then be
        the complete call (``spawn(Account, "ada", 100, name="ada")``), while
        constructor keywords beside options are not checked. So, next to an
        option, pass required constructor parameters positionally: a required
        parameter given by keyword there is refused by the checker (not at run
        time).
        """
        root = self._root
        if root is None or self._closing:
            return await self.spawn_cell(
                cls, args, kwargs, name=name, mailbox_size=mailbox_size, sandbox=sandbox, host=host
            )
        supervisor: RootSupervisor = root.instance
        return await supervisor.adopt(
            SpawnRequest(cls, args, kwargs, name, mailbox_size, sandbox, host)
        )

    async def component_class(self, component: str | os.PathLike[str], atom: str, /) -> type[Any]:
        """The atom class ``atom`` of a WebAssembly component, as a class this
        host can use: ``system.get(cls, key)`` for an on-demand atom of it,
        ``system.spawn(cls, ...)``, a supervisor's child spec. It is built from
        the component's manifest (no Python of it is imported), runs only
        sandboxed (the default :class:`~radon_actors.SandboxConfig` unless a
        spawn gives one), and pickles as its component's hash. ``component`` and
        ``atom`` as :meth:`spawn_component` takes them; raises
        :class:`~radon_actors.SandboxError` likewise."""
        cls: type[Any] = await self._isolation_extension().component_class(component, atom)
        return cls

    async def spawn_component(
        self,
        component: str | os.PathLike[str],
        atom: str,
        /,
        *args: Any,
        name: str | None = None,
        mailbox_size: int | None = None,
        sandbox: Any = True,
        host: Any = None,
        **kwargs: Any,
    ) -> Ref[Any]:
        """Start atom class ``atom`` of a WebAssembly component, sandboxed, with
        ``atom(*args, **kwargs)``, without importing any of its Python.

        ``component`` is a path to a ``.wasm`` component (built by radon-actors,
        or any component of the ``radon:atom`` standard) or its content hash
        (a component this machine's cache holds). ``atom`` names a class of the
        component's manifest: ``"module:QualName"``, or the bare class name when
        only one class has it. The host builds the atom's handler table from the
        manifest, so messages are checked against its handlers' parameters at
        the sender, as for any atom; address handlers by name
        (``ref.ask("incr", 1)``). ``sandbox`` is ``True`` (the default limits)
        or a :class:`~radon_actors.SandboxConfig`; such an atom never runs
        natively. The other options are :meth:`spawn`'s. Raises
        :class:`~radon_actors.SandboxError` for a missing or malformed
        component or an unknown class.
        """
        if sandbox is False or sandbox is None:
            raise TypeError(
                "spawn_component runs the atom in its sandbox: pass sandbox=True or a SandboxConfig"
            )
        cls = await self._isolation_extension().component_class(component, atom)
        return await self.spawn(
            cls, *args, name=name, mailbox_size=mailbox_size, sandbox=sandbox, host=host, **kwargs
        )

    @property
    def root(self) -> Ref[Any]:
        """The Ref of the root supervisor (``ask`` it ``which_children``, ``start_child``...)."""
        if self._root is None:
            raise RuntimeError("the atom system has no root supervisor yet")
        return self._root.ref

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
        return await self.placement.start_host(name, **options)

    async def connect_host(self, address: str, **options: Any) -> str:
        """Join the host listening at ``host:port`` (started with ``radon host``).

        Pass the cluster secret as ``secret=`` (bytes) or ``secret_file=``; returns
        the host's name (``name=`` overrides it).
        """
        return await self.placement.connect_host(address, **options)

    @property
    def hosts(self) -> list[str]:
        """Names of the live hosts of this system (``"local"`` is this process)."""
        if self._placement is None:
            return ["local"]
        return self._placement.host_names()

    async def migrate(
        self, ref: Ref[Any], *, to: str, timeout: float | None = DEFAULT_MIGRATE_TIMEOUT
    ) -> None:
        """Move a running atom to host ``to`` (``"local"``: this process), live.

        Its Refs keep working and no message is lost, duplicated or reordered,
        however full its mailbox; see ``docs/placement.md``. Raises
        ``MigrationError`` (the atom keeps running where it was, with its
        messages) when the move fails, or cannot finish within ``timeout``
        seconds (None: no limit): its current turn does not end in time, or the
        target cannot activate it in time.
        """
        await self.placement.migrate(ref, to, timeout)

    # ------------------------------------------------------------------
    # Seams: what the extensions (supervisor, sandbox, placement) call.
    # ------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """This system's id prefix (``<prefix>.<n>`` atom ids); placement's node id."""
        return self._prefix

    @property
    def closing(self) -> bool:
        """True once the system has begun to shut down (no new atoms)."""
        return self._closing

    @property
    def placement(self) -> Placement:
        """The placement extension, made on first use."""
        placement = self._placement
        if placement is None:
            placement = self._placement = self._factory("placement", "use hosts")(self)
        return placement

    @property
    def active_placement(self) -> Placement | None:
        """The placement extension if this system has used it, else None."""
        return self._placement

    def install_placement(self, placement: Placement) -> None:
        """Use ``placement`` as this system's (a host process makes its own node
        before any atom is placed)."""
        if self._placement is not None and self._placement is not placement:
            raise RuntimeError("this atom system already has a placement extension")
        self._placement = placement

    @property
    def nursery(self) -> trio.Nursery:
        """The nursery the atoms' tasks live in (an extension's tasks that must live
        as long as the system, and no longer, go here too)."""
        return self._nursery

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` as a task of the system's nursery (it lives with the system)."""
        self._nursery.start_soon(fn, *args)

    def tasked(self, cell: AtomCell) -> None:
        """``cell`` has a task that runs its turns: the idle sweep watches it."""
        self._tasked.add(cell)
        if not self._sweeping:
            self._sweeping = True
            self._nursery.start_soon(self._sweep_idle)

    def untasked(self, cell: AtomCell) -> None:
        """``cell``'s task has ended."""
        self._tasked.discard(cell)

    async def _sweep_idle(self) -> None:
        # See IDLE_SWEEP. A cell counts a sweep only while its task is parked
        # waiting for messages; its loop resets the count whenever it wakes, so
        # that costs the message path nothing but one store per burst.
        while True:
            await trio.sleep(IDLE_SWEEP)
            for cell in list(self._tasked):
                task = cell.task
                mailbox = cell.mailbox
                if task is None or mailbox is None or mailbox.waiting is not task:
                    continue
                cell.idle_sweeps += 1
                if cell.idle_sweeps > 1:
                    mailbox.wake()

    def _finish_all(self) -> None:
        # After the nursery has closed: every cell that has not stopped (idle
        # atoms without a task, which no cancellation reaches) stops now, so
        # that no message can wait for a task that could never start.
        todo = list(self._top.values())
        while todo:
            cell = todo.pop()
            todo.extend(cell.children.values())
            if cell.state != CellState.STOPPED and cell.away is None:
                cell.finish(None)

    async def start_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``nursery.start`` in the system's nursery: returns what ``fn`` reports started."""
        return await self._nursery.start(fn, *args)

    def claim_name(self, cell: AtomCell) -> None:
        """Make ``cell`` the holder of its name (an atom that came back under it)."""
        if cell.name is not None:
            self._names[cell.name] = cell

    def release_name(self, cell: AtomCell) -> None:
        """Free ``cell``'s name if ``cell`` holds it."""
        if cell.name is not None and self._names.get(cell.name) is cell:
            del self._names[cell.name]

    def add_top(self, cell: AtomCell) -> None:
        """Count ``cell`` among the top-level atoms (stopped at shutdown, in order)."""
        self._top[cell.id] = cell

    def remove_top(self, cell: AtomCell) -> None:
        """Stop counting ``cell`` among the top-level atoms (it moved away)."""
        if self._top.get(cell.id) is cell:
            del self._top[cell.id]

    async def spawn_cell(
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
        root: bool = False,
    ) -> Ref[Any]:
        """Make a cell for ``cls(*args, **kwargs)`` and start it (the seam under
        :meth:`spawn`; supervisors call it for their children).

        ``setup`` runs on the new cell before the atom does (a supervisor's failure
        plumbing); ``root=True`` makes it the system's root, whose giving up stops
        the system. Returns once ``on_start`` has run.
        """
        if not (isinstance(cls, type) and issubclass(cls, Atom)):
            raise TypeError(f"spawn() takes an Atom subclass, not {cls!r}")
        if self._closing:
            raise RuntimeError("the atom system is shutting down; no new atoms can be spawned")
        if host is not None:
            # Another host runs it; its cell here forwards (radon_actors.placement).
            host = await self.placement.choose_host(cls, host)
        runtime = None
        if sandbox is None:
            sandbox = getattr(cls, "sandbox", False)
        if sandbox is not False:
            runtime = await self._isolation_extension().runtime_for(cls, sandbox)
        cell = self._new_cell(cls, args, kwargs, name, parent, mailbox_size, setup, runtime, root)
        if host is not None:
            await self.placement.start_remote(cell, host)
            return cell.ref
        if runtime is None and AtomCell.starts_inline(cls):
            # Nothing in the start can suspend: it runs here, and the atom gets a
            # task when a message first queues (as an idle atom does).
            await checkpoint_if_cancelled()
            cell.start_inline()
            await cancel_shielded_checkpoint()
            return cell.ref
        # start() returns after on_start; an exception before that (SpawnError)
        # is raised here instead of reaching the nursery.
        await self._nursery.start(cell.run)
        return cell.ref

    def _new_cell(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        parent: AtomCell | None,
        mailbox_size: int | None,
        setup: Callable[[AtomCell], None] | None,
        runtime: Any,
        root: bool,
    ) -> AtomCell:
        # The part of a spawn that cannot suspend: the cell, in the tables.
        if name is not None:
            if not isinstance(name, str) or not name:
                raise TypeError(f"an atom name must be a non-empty str, not {name!r}")
            if name in self._names:
                raise NameTaken(f"an atom named {name!r} is already running")
        capacity = mailbox_size or getattr(cls, "mailbox_size", None) or self._mailbox_size
        atom_id = f"{self._prefix}.{next(self._ids)}"
        cell = AtomCell(self, cls, args, kwargs, atom_id, name, parent, capacity)
        if runtime is not None:
            cell.runtime = runtime
            cell.table = runtime.table
        if setup is not None:
            setup(cell)  # e.g. a supervisor's failure plumbing, before the atom runs
        if root:
            cell.add_stop_callback(self._root_stopped)
            self._root = cell
        if name is not None:
            self._names[name] = cell
        if parent is None:
            self._top[atom_id] = cell
        elif parent.children:
            parent.children[atom_id] = cell
        else:
            parent.children = {atom_id: cell}  # its first: it had the shared empty table
        _directory.register(cell)
        return cell

    def spawn_now(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        setup: Callable[[AtomCell], None] | None = None,
    ) -> AtomCell | None:
        """Spawn a native top-level atom in the calling task, without awaiting and
        without a task of its own until its first queued message, if its start
        cannot suspend (:meth:`AtomCell.starts_inline`), and return its cell;
        None, with nothing done, if it can (then :meth:`spawn_cell` is the way).

        The cheap activation of on-demand atoms. Raises :class:`SpawnError` if
        the constructor or ``on_start`` raises.
        """
        if self._closing:
            raise RuntimeError("the atom system is shutting down; no new atoms can be spawned")
        if getattr(cls, "sandbox", False) is not False or not AtomCell.starts_inline(cls):
            return None
        cell = self._new_cell(cls, args, kwargs, None, None, None, setup, None, False)
        cell.start_inline()
        return cell

    def get(self, cls: type[A], key: str) -> Ref[A]:
        """The Ref of the on-demand atom of class ``cls`` with ``key``, without
        spawning anything: its first message activates it (loading its durable
        state), and an idle one is collected. See docs/durability.md."""
        if not (isinstance(cls, type) and issubclass(cls, Atom)):
            raise TypeError(f"get() takes an Atom subclass, not {cls!r}")
        if not isinstance(key, str) or not key:
            raise TypeError(f"an on-demand atom's key is a non-empty str, not {key!r}")
        ref: Ref[A] = self.durability().get(cls, key)
        return ref

    def durability(self) -> Durability:
        """The durability extension (made on first use: the first durable atom)."""
        durability = self._durability
        if durability is None:
            factory = self._factory("durability", "keep durable atoms' state")
            durability = self._durability = factory(self)
        return durability

    def state_store_url(self) -> str | None:
        """Where the hosts this system starts find its durable state store (None:
        none in use yet, or a store they cannot open). Asking never makes the
        extension: that would open the default store for a system that has no
        durable atom (its hosts then use their own default, the same file)."""
        durability = self._durability
        return None if durability is None else durability.url

    def _isolation_extension(self) -> Isolation:
        isolation = self._isolation
        if isolation is None:
            isolation = self._isolation = self._factory("isolation", "run sandboxed atoms")()
        return isolation

    def _factory(self, extension: str, purpose: str) -> Any:
        factory = getattr(self._extensions, extension)
        if factory is None:
            raise RuntimeError(
                f"this atom system was opened without the {extension} extension; open it "
                f"with radon_actors.open_system() to {purpose}"
            )
        return factory

    def forget_cell(self, cell: AtomCell) -> None:
        """Drop a stopped ``cell`` from the name table and the top-level atoms."""
        self.release_name(cell)
        self.remove_top(cell)

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
        return cell.opened().statistics()

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

    def load(self) -> int:
        """Top-level atoms running here (the root's children and atoms placed here
        from other hosts): what a least-loaded placement policy compares."""
        root = self._root
        count = len(self._top)
        if root is not None and self._top.get(root.id) is root:
            # Atoms placed on other hosts from here have a cell here too (away).
            count += sum(1 for c in root.children.values() if c.away is None) - 1
        return count

    async def _shutdown(self) -> None:
        self._closing = True
        for cell in reversed(list(self._top.values())):
            cell.request_stop()
            await cell.stopped.wait()
        if self._placement is not None:
            await self._placement.aclose()


@asynccontextmanager
async def run_system(
    *,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    root: Any = None,
    extensions: Extensions | None = None,
) -> AsyncIterator[System]:
    """Run a system composed with ``extensions`` for an ``async with`` block.

    The engine under ``radon_actors.open_system`` (which documents the behaviour
    users see): ``extensions.start_root(system, root)`` starts the root atom, then
    the block runs; leaving it stops the top-level atoms in reverse order within
    ``shutdown_timeout`` seconds and cancels what is left. The root's reason for
    giving up, else the block's exception, is raised after the shutdown.
    """
    if not isinstance(mailbox_size, int) or mailbox_size < 1:
        raise ValueError(f"mailbox_size must be a positive int, not {mailbox_size!r}")
    extensions = extensions if extensions is not None else Extensions()
    if root is not None and extensions.start_root is None:
        raise RuntimeError("this atom system was opened without supervision; it takes no root")
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        system = System(nursery, mailbox_size=mailbox_size, extensions=extensions)
        try:
            if extensions.start_root is not None:
                await extensions.start_root(system, root)
            yield system
        except BaseException as exc:
            # Re-raised below, outside the nursery, so it reaches the caller as
            # itself and not wrapped in an ExceptionGroup.
            error = exc
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(shutdown_timeout) as scope:
                await system._shutdown()
                if system._durability is not None:
                    await system._durability.aclose()
            if scope.cancelled_caught:
                _log.warning("system.shutdown_timeout", timeout=shutdown_timeout)
            nursery.cancel_scope.cancel()
    system._finish_all()
    if system._crash is not None:
        raise system._crash
    if error is not None:
        raise error
