"""On-demand atoms: a Ref by class and key, activated by its first message and
collected when idle (Orleans' virtual actors, Radon's dynamic atoms).

``system.get(Cart, "user-42")`` returns a Ref whose endpoint is a
:class:`VirtualEndpoint`: nothing runs until a message arrives. The first one
*activates* the atom (a cell of its own, its durable state loaded before
``on_start``); messages sent meanwhile wait in the endpoint, in order, and go
to the activation first. Every later message reaches the same activation.

**Collection.** An activation that received no message for its class's
``collect_after`` seconds (default :data:`COLLECT_AFTER`) is deactivated: it
stops (``on_stop`` runs; nothing is saved implicitly). From the moment the
collector decides, messages wait in the endpoint again, and they activate the
atom anew once the old activation has stopped, so none is lost. A class with
``daemon = True`` is never collected. Activity is a flag set per message and
checked by one collector task per system, every quarter of the shortest
``collect_after`` in use (so an idle activation goes between its age and 1.25
times it), which costs the message path one attribute store.

**Failures.** An on-demand activation has no supervisor: a handler that raises
fails its asker (a tell's failure is logged), and the activation stops, as a
crashed top-level atom does; the next message activates it again, from its
stored state.

**Directory.** The id of an on-demand atom names the process whose
``system.get`` made it (its directory, by the system's id prefix, so placement
routes it there like any atom of that process), its class by import path, and
its key. A Ref of one unpickled on another host sends there, and the
directory activates the atom on the first message, whichever host it came
from (``resolve``): one activation per key and directory. In a cluster
(``radon_actors.cluster``) the directory is the cluster's, shared by its
members: ids carry its prefix, and before activating a key a member claims it
through the :class:`KeyOwners` seam, which may send its messages to the
member where it is active instead.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final, Protocol

import outcome
import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from .._atom import import_atom_class as _import_atom_class
from .._errors import AskTimeout, MailboxFull, SpawnError, WouldBlock
from .._logs import get_logger
from .._ref import Ref
from .._state import atom_type
from ..runtime import CellState, Directive, Reply, resolve, set_virtual_resolver

if TYPE_CHECKING:
    from ..runtime import AtomCell, System

__all__ = [
    "COLLECT_AFTER",
    "Activations",
    "Forwarding",
    "KeyOwners",
    "VirtualEndpoint",
    "class_path",
    "directory_of",
    "import_atom_class",
    "retire",
    "serve",
    "set_directory",
    "virtual_id",
]

_log = get_logger("radon_actors.durable")

# The keyword arguments of every activation (on-demand atoms take none): one
# shared dict, which a cell only unpacks, rather than an empty one per idle atom.
_NO_KWARGS: Final[dict[str, Any]] = {}

FRESH_LIMIT = 1024
"""How many endpoints ``get`` holds that no message has activated yet, before
they go to the weak table (see ``Activations``)."""

COLLECT_AFTER = 900.0
"""Seconds without a message after which an on-demand atom is collected (15
minutes, Orleans' default collection age), unless its class says otherwise."""

_RUNNING = CellState.RUNNING
Pending = tuple[str, tuple[Any, ...], dict[str, Any], Any]
_NOTHING: Any = ()  # an endpoint's ``pending`` while nothing waits


class Forwarding(Protocol):
    """Where an endpoint sends its messages while its key is active in another
    member of a cluster (see :class:`KeyOwners`): the owner's endpoint."""

    @property
    def live(self) -> bool:
        """Whether the owner can still be reached (False: claim the key again)."""
        ...

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any: ...

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any: ...

    def post(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any) -> None: ...


class KeyOwners(Protocol):
    """The seam through which a directory shared by several systems (a cluster,
    ``radon_actors.cluster``) decides where each key is active.

    Without one, every system activates the keys of its own directory. With
    one, an activation first claims its key (:meth:`claim`): the owners either give
    it to this system (None: activate here) or name the member where it is
    active (a :class:`Forwarding`: messages go there). When the activation
    stops, :meth:`released` gives the key up. Both may keep what they need in
    the endpoint's ``claim`` slot, which nothing else touches."""

    async def claim(self, ep: VirtualEndpoint) -> Forwarding | None:
        """Own ``ep``'s key (None), or find the member that does; raise to fail
        the activation (its waiting askers get the reason)."""
        ...

    def released(self, ep: VirtualEndpoint) -> None:
        """``ep``'s activation here stopped: give its key up (synchronously
        marked, so that a claim made next waits for the release to finish)."""
        ...


def _escape(text: str) -> str:
    # Atom ids end in ".<local part>" after their origin's prefix (no dots
    # inside), and the local part is "v:<class>:<key>" (no colons inside either).
    if "%" in text or "." in text or ":" in text:
        return text.replace("%", "%25").replace(".", "%2E").replace(":", "%3A")
    return text


def _unescape(text: str) -> str:
    return text.replace("%3A", ":").replace("%2E", ".").replace("%25", "%")


def class_path(cls: type) -> str:
    """How an on-demand atom's id names its class: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def virtual_id(prefix: str, cls: type, key: str) -> str:
    """The atom id of the on-demand atom ``cls``/``key`` whose directory is the
    system with id prefix ``prefix``: its class by import path, so that the
    directory can activate it when the first message comes from another host."""
    return f"{prefix}.v:{_escape(class_path(cls))}:{_escape(key)}"


class VirtualEndpoint:
    """The endpoint of an on-demand atom's Refs (see the module docs)."""

    __slots__ = (
        "__weakref__",
        "_activations",
        "_ready",
        "cell",
        "claim",
        "closing",
        "cls",
        "forward",
        "id",
        "idle",
        "key",
        "pending",
        "touched",
    )

    def __init__(self, activations: Activations, cls: type[Any], key: str, atom_id: str) -> None:
        self._activations = activations
        self.cls = cls
        self.key = key
        self.id = atom_id
        self.cell: AtomCell | None = None
        # In a cluster: where messages go while another member has the key
        # (``forwarding``), and what the KeyOwners keep about this key's claim.
        self.forward: Forwarding | None = None
        self.claim: Any = None
        self.closing = False  # being collected: messages wait for the next activation
        # Messages waiting for an activation: the shared empty tuple until one
        # waits (most endpoints never need a list; see ``_wait``).
        self.pending: list[Pending] = _NOTHING
        self._ready: trio.Event | None = None  # set when an activation is up (or failed)
        self.touched = False
        self.idle = 0  # collector sweeps without a message

    def __repr__(self) -> str:
        return f"<on-demand {self.cls.__qualname__} {self.key!r}>"

    # ------------------------------------------------------------------
    # The Endpoint protocol (and ``post``, for messages from other hosts)
    # ------------------------------------------------------------------
    def _live(self) -> AtomCell | Forwarding | None:
        cell = self.cell
        if cell is None or self.closing or cell.state != _RUNNING:
            forward = self.forward
            if cell is None and forward is not None and forward.live:
                return forward  # another member of the cluster has the key
            return None
        return cell

    def _live_or_now(self) -> AtomCell | Forwarding | None:
        # The running activation, or one made now if nothing waits and the
        # class allows it (Activations.activate_now); None: the message waits.
        cell = self._live()
        if cell is None and not self.pending:
            cell = self._activations.activate_now(self)
        return cell

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.touched = True
        try:
            cell = self._live_or_now()
        except SpawnError as exc:
            _log.warning("dead_letter", atom=repr(self), handler=_name(h), reason=str(exc))
            return
        if cell is not None:
            cell.tell(h, args, kwargs)
            return
        if len(self.pending) >= self._capacity():
            raise MailboxFull(
                f"{self!r} is being activated and {len(self.pending)} messages wait for it "
                "(its mailbox size); use `await ref.send(...)` to wait for room"
            )
        self._wait((_name(h), args, kwargs, None))
        self._activations.activate_soon(self)

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.touched = True
        live = self._live_or_now()
        if live is None:
            await self._until_live()
            live = self._live()
            if live is None:  # the activation failed: said by _until_live's caller
                raise SpawnError(f"{self!r} could not be activated")
        await live.send(h, args, kwargs)

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self.touched = True
        cell = self._live_or_now()
        if cell is None:  # an activation that must wait (to load state, or elsewhere)
            raise WouldBlock(f"{self!r} is being activated: `await ref.ask(...)` waits for it")
        return cell.ask_nowait(h, args, kwargs)

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        self.touched = True
        cell = self._live_or_now()
        if cell is not None:
            return await cell.ask(h, args, kwargs, timeout)
        # Queued behind what waits already, so it keeps its place in the order.
        reply = Reply(current_task())
        self._wait((_name(h), args, kwargs, reply))
        self._activations.activate_soon(self)
        if timeout is None:
            return await wait_task_rescheduled(reply)
        with trio.move_on_after(timeout):
            return await wait_task_rescheduled(reply)
        raise AskTimeout(f"{self!r} did not answer {_name(h)!r} within {timeout} s")

    def post(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any) -> None:
        """Queue a message from another host (or a forwarder); never raises."""
        self.touched = True
        try:
            cell = self._live_or_now()
        except SpawnError as exc:
            if reply is not None:
                reply.deliver(outcome.Error(exc))
            else:
                _log.warning("dead_letter", atom=repr(self), handler=_name(h), reason=str(exc))
            return
        if cell is not None:
            cell.post(h, args, kwargs, reply)
            return
        self._wait((_name(h), args, kwargs, reply))
        self._activations.activate_soon(self)

    def answer_now(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any) -> bool:
        """An ask from another host as an inline turn of the running activation,
        as ``AtomCell.answer_now`` (False, nothing done: ``post`` it)."""
        cell = self.cell
        if cell is None or self.closing:
            return False
        self.touched = True
        return cell.answer_now(h, args, kwargs, reply)

    async def _until_live(self) -> None:
        while self._live() is None:
            ready = self._ready
            if ready is None or ready.is_set():
                ready = self._ready = trio.Event()
            self._activations.activate_soon(self)
            await ready.wait()
            if self.cell is None and self.forward is None:
                return  # activation failed

    def _wait(self, msg: Pending) -> None:
        pending = self.pending
        if pending is _NOTHING:
            pending = self.pending = []
        pending.append(msg)

    def _capacity(self) -> int:
        return int(getattr(self.cls, "mailbox_size", None) or self._activations.mailbox_size)

    # ------------------------------------------------------------------
    # Activation and deactivation
    # ------------------------------------------------------------------
    def setup(self, cell: AtomCell) -> None:
        """Make ``cell``, before it starts, an activation of this endpoint."""
        cell.on_demand_key = self.key
        # The endpoint itself is the hook (its ``__call__`` is ``stopped``): no
        # bound method, and no callback list, to keep per activation.
        cell.stop_hook = self
        # A failure stops the activation; the next message starts another.
        cell.decider = _stop

    def activated(self, cell: AtomCell) -> None:
        """The activation is up: hand it what waited, in order, and wake senders."""
        self.cell = cell
        self.forward = None
        self.closing = False
        self.idle = 0
        pending = self.pending
        if pending:
            self.pending = _NOTHING
            cell.take_over(pending)
        ready = self._ready
        if ready is not None:
            ready.set()

    def deactivate(self, cell: AtomCell) -> None:
        """Stop the activation ``cell`` (collected, or its member leaving): from
        now on, messages wait for the next activation."""
        self.closing = True
        if not cell.stop_inline():  # an idle atom without a task stops here
            cell.request_stop()

    def forwarding(self, forward: Forwarding) -> None:
        """Another member of the cluster has the key: what waited goes there, in
        order, and so does every later message while ``forward.live``."""
        self.forward = forward
        pending = self.pending
        if pending:
            self.pending = _NOTHING
            for h, args, kwargs, reply in pending:
                forward.post(h, args, kwargs, reply)
        ready = self._ready
        if ready is not None:
            ready.set()

    def unreachable(self) -> None:
        """The member that had the key is gone: the next message claims it again
        (and one waiting now does so at once)."""
        self.forward = None
        ready = self._ready
        if self.pending or (ready is not None and not ready.is_set()):
            self._activations.activate_soon(self)

    def failed(self, exc: BaseException) -> None:
        """The activation failed: every waiting asker gets the reason."""
        pending, self.pending = self.pending, _NOTHING
        error = SpawnError(f"{self!r} could not be activated: {exc!r}")
        for h, _, _, reply in pending:
            if reply is not None:
                reply.deliver(outcome.Error(error))
            else:
                _log.warning("dead_letter", atom=repr(self), handler=h, reason=str(error))
        ready = self._ready
        if ready is not None:
            ready.set()

    def stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        """The activation stopped (collected, failed, or the system is closing)."""
        if self.cell is cell:
            self.cell = None
        self.closing = False
        self._activations.gone(self, cell)
        ready = self._ready
        if self.pending or (ready is not None and not ready.is_set()):
            # Messages, or senders (``send``), wait for the next activation.
            self._activations.activate_soon(self)

    __call__ = stopped  # the activation's stop hook (see ``setup``)


def _name(h: Any) -> str:
    return h if isinstance(h, str) else str(getattr(h, "__name__", h))


class Activations:
    """The on-demand atoms of one system: their endpoints, the activations, the
    collector (one per system; see the module docs)."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.mailbox_size: int = getattr(system, "_mailbox_size", 10_000)
        # The id prefix of the directory whose keys ``get`` names: this system,
        # its parent (a worker host), or a cluster (``owners`` then decide where
        # each key is active).
        self.directory = directory_of(system)
        self.owners: KeyOwners | None = None
        # Every endpoint with a Ref or an activation is in one of three tables:
        # the active ones (running or starting) in ``active``, held; the ones
        # ``get`` made since the last sweep and that no message activated yet in
        # ``fresh``, held; the others in ``endpoints``, weakly, so that a key
        # nobody holds a Ref to costs nothing. An endpoint moves between them as
        # it activates and stops (``_hold``, ``_release``), and ``fresh`` goes to
        # ``endpoints`` whenever it reaches FRESH_LIMIT (``_sweep_fresh``). So
        # the usual life, ``get`` then a message, touches no weak reference (a
        # KeyedRef made and dropped costs more than the rest of ``get``), and an
        # idle activation holds no weak entry, one object fewer for the cyclic
        # GC to walk (docs/benchmarks.md).
        # (A dict of KeyedRefs rather than a WeakValueDictionary, whose ``get``
        # is a Python method: a lookup here is one C call.)
        self.endpoints: dict[str, weakref.KeyedRef[str, VirtualEndpoint]] = {}
        self._unreferenced_cb = self._unreferenced  # one bound method for every entry
        self.active: dict[str, VirtualEndpoint] = {}
        self.fresh: dict[str, VirtualEndpoint] = {}
        self.starting: set[str] = set()
        self.classes: dict[str, type[Any]] = {}  # atom type -> class, for ids from elsewhere
        # Per class checked by ``get``: its ids' middle part (see virtual_id).
        self._heads: dict[type[Any], str] = {}
        # The same classes by class_path: for ``class_at`` (a component's class
        # cannot be imported, only found here).
        self._paths: dict[str, type[Any]] = {}
        self._quantum: float | None = None
        self._wake: trio.Event | None = None

    def get(self, cls: type[Any], key: str) -> Ref[Any]:
        head = self._heads.get(cls)
        if head is None:
            kind = atom_type(cls)
            known = self.classes.setdefault(kind, cls)
            if known is not cls:
                raise TypeError(
                    f"two classes store their state as {kind!r} ({known.__qualname__} and "
                    f"{cls.__qualname__}): give one a different durable_type"
                )
            path = class_path(cls)
            self._paths[path] = cls
            head = self._heads[cls] = f".v:{_escape(path)}:"
        directory = self.directory
        atom_id = f"{directory}{head}{_escape(key)}"  # virtual_id(directory, cls, key)
        if directory != self.system.prefix and self.owners is None:
            # A worker host: the atom lives at its system's directory (placement
            # routes the id there).
            return Ref(atom_id, None, resolve(atom_id, None))
        ep = self._lookup(atom_id)
        if ep is None:
            fresh = self.fresh
            if len(fresh) >= FRESH_LIMIT:
                self._sweep_fresh()
            ep = fresh[atom_id] = VirtualEndpoint(self, cls, key, atom_id)
        return Ref(atom_id, None, ep)

    def _lookup(self, atom_id: str) -> VirtualEndpoint | None:
        ep = self.active.get(atom_id) or self.fresh.get(atom_id)
        if ep is None:
            weak = self.endpoints.get(atom_id)
            if weak is not None:
                ep = weak()
        return ep

    def _hold_weakly(self, atom_id: str, ep: VirtualEndpoint) -> None:
        self.endpoints[atom_id] = weakref.KeyedRef(ep, self._unreferenced_cb, atom_id)

    def _unreferenced(self, weak: weakref.KeyedRef[str, VirtualEndpoint]) -> None:
        # No Ref and no activation holds the endpoint any more.
        if self.endpoints.get(weak.key) is weak:
            del self.endpoints[weak.key]

    def _sweep_fresh(self) -> None:
        # Endpoints ``get`` made that no message has activated since: weakly held
        # from now on (an activation under way has moved its own to ``active``).
        for atom_id, ep in self.fresh.items():
            self._hold_weakly(atom_id, ep)
        self.fresh.clear()

    def class_at(self, path: str) -> type[Any] | None:
        """The atom class at ``path`` (:func:`class_path`): one this system's
        ``get`` has seen (a WebAssembly component's class cannot be imported,
        only loaded: ``System.component_class``), else imported; None if none."""
        cls = self._paths.get(path)
        return cls if cls is not None else import_atom_class(path)

    def resolve(self, atom_id: str) -> VirtualEndpoint | None:
        """The endpoint of an on-demand atom's id (a Ref unpickled here)."""
        ep = self._lookup(atom_id)
        if ep is not None:
            return ep
        prefix, _, local = atom_id.rpartition(".")
        if not local.startswith("v:"):
            return None
        if prefix != self.directory:
            if prefix != self.system.prefix or self.owners is None:
                return None
            # From a worker host of this cluster member, which names its system
            # as the directory: the cluster's atom of that class and key.
            atom_id = f"{self.directory}.{local}"
            ep = self._lookup(atom_id)
            if ep is not None:
                return ep
        path, sep, key = local[2:].partition(":")
        cls = self.class_at(_unescape(path)) if sep else None
        if cls is None:
            _log.warning("durable.unknown_on_demand_class", atom_id=atom_id)
            return None
        kind = atom_type(cls)
        if self.classes.setdefault(kind, cls) is not cls:
            return None  # another class stores under that type here
        ep = VirtualEndpoint(self, cls, _unescape(key), atom_id)
        self._hold_weakly(atom_id, ep)
        return ep

    def activate_soon(self, ep: VirtualEndpoint) -> None:
        if ep.id in self.starting or ep._live() is not None or ep.cell is not None:
            return  # starting, up (here or at another member), or stopping (its
            # stop activates it again)
        self.starting.add(ep.id)
        self._hold(ep)  # held while it runs or starts
        self.system.start_soon(self._activate, ep)

    def activate_now(self, ep: VirtualEndpoint) -> AtomCell | None:
        """Activate ``ep`` in the calling task, if nothing is under way for it and
        its class can start without suspending (no durable state, a plain
        ``on_start``, no host or sandbox to reach): the cheap activation, with no
        task until a message queues. Returns the running cell, or None (then
        messages wait in the endpoint for :meth:`activate_soon`). Raises
        :class:`SpawnError` when the constructor or ``on_start`` raises."""
        if ep.cell is not None or ep.closing or ep.id in self.starting or self.owners is not None:
            return None  # (in a cluster, the key must be claimed first)
        cls = ep.cls
        if getattr(cls, "activate_on", None) is not None or self.system.closing:
            return None
        try:
            cell = self.system.spawn_now(cls, (), _NO_KWARGS, setup=ep.setup)
        except SpawnError as exc:
            _log.warning("durable.activation_failed", atom=repr(ep), error=repr(exc))
            raise SpawnError(f"{ep!r} could not be activated: {exc!r}") from exc
        if cell is None:
            return None
        self._hold(ep)
        ep.activated(cell)
        self._collector(cls)
        return cell

    async def _activate(self, ep: VirtualEndpoint) -> None:
        owners = self.owners
        try:
            if owners is not None:
                forward = await owners.claim(ep)
                if forward is not None:  # active at another member: messages go there
                    self.starting.discard(ep.id)
                    self._release(ep)
                    ep.forwarding(forward)
                    return
            where = getattr(ep.cls, "activate_on", None)
            ref = await self.system.spawn_cell(ep.cls, (), _NO_KWARGS, setup=ep.setup, host=where)
        except Exception as exc:
            self.starting.discard(ep.id)
            self._release(ep)
            if owners is not None:
                owners.released(ep)  # claimed, then failed to start: give the key up
            _log.warning("durable.activation_failed", atom=repr(ep), error=repr(exc))
            ep.failed(exc)
            return
        self.starting.discard(ep.id)
        cell = ref._ep
        ep.activated(cell)  # type: ignore[arg-type]
        self._collector(ep.cls)

    def gone(self, ep: VirtualEndpoint, cell: AtomCell) -> None:
        owners = self.owners
        if owners is not None:
            owners.released(ep)
        if ep.cell is None and not ep.pending and ep.id not in self.starting:
            self._release(ep)

    def _hold(self, ep: VirtualEndpoint) -> None:
        atom_id = ep.id
        if atom_id not in self.active:
            self.active[atom_id] = ep
            if self.fresh.pop(atom_id, None) is None:
                self.endpoints.pop(atom_id, None)

    def _release(self, ep: VirtualEndpoint) -> None:
        atom_id = ep.id
        if self.active.get(atom_id) is ep:
            del self.active[atom_id]
            self._hold_weakly(atom_id, ep)

    async def deactivate_all(self) -> None:
        """Stop every activation of this system (a member leaving its cluster,
        or one that lost its membership) and wait until they have stopped.
        Messages that arrive meanwhile wait for the next activation."""
        stopping = []
        for ep in list(self.active.values()):
            cell = ep.cell
            if cell is None or ep.closing or cell.state != _RUNNING:
                continue
            stopping.append(cell.stopped)  # made before the stop, which sets it
            ep.deactivate(cell)
        for stopped in stopping:
            await stopped.wait()

    # ------------------------------------------------------------------
    # Collection
    # ------------------------------------------------------------------
    def _collector(self, cls: type[Any]) -> None:
        if getattr(cls, "daemon", False):
            return
        age = float(getattr(cls, "collect_after", COLLECT_AFTER))
        quantum = max(age / 4, 0.001)
        if self._quantum is None:
            self._quantum = quantum
            self.system.start_soon(self._collect)
        elif quantum < self._quantum:
            self._quantum = quantum
            if self._wake is not None:
                self._wake.set()

    async def _collect(self) -> None:
        while True:
            quantum = self._quantum
            assert quantum is not None
            self._wake = trio.Event()
            with trio.move_on_after(quantum):
                await self._wake.wait()
            for ep in list(self.active.values()):
                cls = ep.cls
                cell = ep.cell
                if cell is None or getattr(cls, "daemon", False):
                    continue
                if ep.touched:
                    ep.touched = False
                    ep.idle = 0
                    continue
                ep.idle += 1
                age = float(getattr(cls, "collect_after", COLLECT_AFTER))
                if ep.idle * quantum < age or ep.closing:
                    continue
                mailbox = cell.mailbox
                if (
                    cell.busy
                    or (mailbox is not None and (mailbox.user or mailbox.stashed))
                    or cell.state != _RUNNING
                ):
                    continue
                _log.debug("durable.collected", atom=repr(ep))
                ep.deactivate(cell)


def import_atom_class(path: str) -> type[Any] | None:
    """The atom class a ``module:QualName`` path names (:func:`class_path`),
    imported; None if there is none. The paths come from this system's own
    hosts and store, as pickled classes do."""
    try:
        return _import_atom_class(path)
    except ImportError:
        return None


def _stop(cell: AtomCell, exc: BaseException) -> Directive:
    return Directive.STOP


# Process-wide, as the runtime's directory is (an unpickled Ref has no system at
# hand): the on-demand atoms of each system of this process, by id prefix.
_systems: dict[str, Activations] = {}
# In a worker host: the id prefix of the system that started it, whose process
# is the directory of every on-demand atom of the system (``set_directory``).
_directory: str | None = None


def directory_of(system: System) -> str:
    """The id prefix of the directory of ``system``'s on-demand atoms."""
    return _directory or system.prefix


def set_directory(prefix: str | None) -> None:
    """Make the system with id prefix ``prefix`` the directory of the on-demand
    atoms that ``get`` names in this process (a worker host: its parent)."""
    global _directory
    _directory = prefix


def _resolve(atom_id: str) -> VirtualEndpoint | None:
    activations = _systems.get(atom_id.rpartition(".")[0])
    return None if activations is None else activations.resolve(atom_id)


def serve(activations: Activations) -> None:
    """Resolve ids of ``activations``' on-demand atoms in this process (by the
    prefix of their directory: this system's, or its cluster's)."""
    if not _systems:
        set_virtual_resolver(_resolve)
    _systems[activations.system.prefix] = activations
    if activations.directory != activations.system.prefix and activations.owners is not None:
        taken = _systems.setdefault(activations.directory, activations)
        if taken is not activations:
            raise RuntimeError(
                f"another system of this process already serves {activations.directory!r}: "
                "one member of a cluster per process"
            )


def retire(activations: Activations) -> None:
    for prefix in (activations.system.prefix, activations.directory):
        if _systems.get(prefix) is activations:
            del _systems[prefix]
