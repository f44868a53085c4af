"""The runtime's seams: what the layers above it plug in through.

The runtime knows nothing of supervision trees, WebAssembly or other hosts. It
defines here, as typed protocols, the few points where those layers attach, and
``open_system`` (in the package root) composes them. Everything a plug-in needs
from a cell or a system is a public, typed operation on :class:`AtomCell` or
:class:`System`; nothing above this layer touches their private state.

* :class:`InstanceRuntime` makes an atom's instance and its handler table
  (native, sandboxed, and later other kinds);
* :class:`ReplySlot` is where an ask's outcome goes (a parked caller, a callback,
  a timer's ticket), so the cell delivers every reply the same way;
* :class:`SupervisorHook` and :class:`ParkedHook` carry a cell's failure path to
  its supervisor;
* :class:`Isolation` and :class:`Placement` are the system-wide extensions
  (the sandbox, hosts and migration), made on first use by the factories in
  :class:`Extensions`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs
import outcome

if TYPE_CHECKING:
    from .._atom import HandlerSpec
    from .._ref import Ref
    from ._cell import AtomCell
    from ._system import System

__all__ = [
    "Away",
    "CellState",
    "DecidesOwnFailures",
    "Directive",
    "Durability",
    "Extensions",
    "InstanceRuntime",
    "Isolation",
    "ParkedHook",
    "Placement",
    "ReplySlot",
    "RootSupervisor",
    "SpawnRequest",
    "SupervisorHook",
]


class CellState(enum.IntEnum):
    """Where a cell is in its life. Ordered: ``state >= STOPPING`` means "going away"."""

    STARTING = 0
    """Its first incarnation's constructor and ``on_start`` are running."""
    RUNNING = 1
    """Serving turns (possibly parked under its supervisor, or placed on another host)."""
    STOPPING = 2
    """Stopping its children, running ``on_stop``; no new message is accepted."""
    STOPPED = 3
    """Gone: its mailbox is closed and its Refs are dead ends."""


class Directive(enum.Enum):
    """What happens to an atom after one of its handlers raised."""

    RESUME = "resume"
    """Keep the atom and its state; the failing message is dropped."""
    RESTART = "restart"
    """Replace the instance by a fresh one built from the spawn arguments; the
    Ref and the queued messages are kept."""
    STOP = "stop"
    """Stop the atom."""
    ESCALATE = "escalate"
    """Fail the atom's parent with the same error."""


class ReplySlot(Protocol):
    """Where one message's outcome goes; queued beside the message.

    ``task`` is None once the slot is settled or its asker gave up (the atom then
    skips a message that has not started); anything else means an outcome is still
    wanted. ``deliver`` hands the outcome over, at most once. The runtime's
    :class:`~radon_actors.runtime.Reply` parks a caller task; placement's slots
    send the outcome to another host; a timer's handle is a slot whose outcome
    nobody reads.
    """

    task: Any

    def deliver(self, result: outcome.Outcome[Any]) -> None:
        """Hand ``result`` to whoever waits (a no-op once settled or withdrawn)."""


class InstanceRuntime(Protocol):
    """How a cell makes and calls its atom's instance (the native kind is built in).

    ``table`` is the handler table the cell dispatches through: for a sandboxed
    atom its entries forward into the guest. ``start`` builds one incarnation in
    the cell's task (constructor, then ``on_start``) and returns the object the
    table's functions are called on.
    """

    table: dict[Any, HandlerSpec]

    async def start(self, cell: AtomCell) -> Any:
        """Build and start a fresh incarnation of ``cell``'s atom."""


class Isolation(Protocol):
    """The extension that runs atoms in another kind of instance (the sandbox)."""

    async def runtime_for(self, cls: type[Any], options: Any) -> InstanceRuntime | None:
        """The instance runtime for ``cls`` spawned with ``sandbox=options`` (None:
        the options ask for a native atom after all)."""

    async def component_class(self, component: Any, atom: str) -> type[Any]:
        """The class that stands for atom class ``atom`` of ``component`` (a path
        or a content hash), built from the component's manifest."""


class SupervisorHook(Protocol):
    """What a supervised cell calls when it fails or exits (see radon_actors.supervisor)."""

    async def child_failed(
        self, cell: AtomCell, exc: BaseException | None, directive: Directive
    ) -> None:
        """Runs in the child's task; returns when the child may go on (or has stopped).

        ``exc`` is None for a normal exit (the atom stopped itself)."""


class ParkedHook(Protocol):
    """A cell's task handed over to its supervisor (``AtomCell.parked``): the task
    serves the supervisor's commands (terminate, start, resume, finish) until it is
    resumed or stopped."""

    done: bool
    """True once the cell left the handover (resumed or stopped)."""

    def stop_requested(self, reason: BaseException | None) -> None:
        """A stop request reached the parked cell: it finishes as soon as it can."""

    async def serve(self) -> None:
        """Serve the supervisor's commands in the calling task until resumed or stopped."""


class Away(Protocol):
    """Where a cell's atom is while it does not run in this process (placement's
    forwarder: the atom was placed on, or migrated to, another host).

    The cell stays the atom's directory entry, so every Ref keeps reaching it;
    while ``AtomCell.away`` is set its mailbox is closed and it delegates here:
    messages (handlers by name, already checked against the atom's table), the
    supervisor's start and terminate of an incarnation, stop requests and the
    group-restart handover. Each method gets the cell it acts for.
    """

    @property
    def via(self) -> str | None:
        """The location hint a Ref pickled here carries (None while unknown)."""

    def post(
        self,
        cell: AtomCell,
        h: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reply: ReplySlot | None,
    ) -> None:
        """Pass a message on without waiting; errors go to ``reply`` (see ``AtomCell.post``)."""

    async def ask(
        self,
        cell: AtomCell,
        h: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        """Ask where the atom is and return its answer."""

    def tell(self, cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Tell where the atom is (a full mailbox there may raise ``MailboxFull``)."""

    async def send(
        self, cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Tell, waiting for room (backpressure) where the atom is."""

    async def start_incarnation(self, cell: AtomCell) -> None:
        """A supervisor's start of a fresh incarnation (on some host, or here)."""

    async def call_on_stop(self, cell: AtomCell) -> None:
        """A supervisor's terminate: the incarnation's ``on_stop`` runs where it lives."""

    def request_stop(self, cell: AtomCell, reason: BaseException | None) -> None:
        """Stop the atom where it lives; the cell's ``stopped`` is set once it has."""

    def finished(self, cell: AtomCell) -> None:
        """The cell stopped for good (``AtomCell.finish``): drop what was kept for
        it and fail what was held."""

    def placed_away(self, cell: AtomCell) -> bool:
        """Whether the supervisor's group restarts act on this child (it runs
        elsewhere, or is being recovered, and nobody asked it to stop)."""

    def serve_parked(self, cell: AtomCell, parked: ParkedHook) -> None:
        """Serve a supervisor's group-restart handover (in a task of its own)."""


@runtime_checkable
class DecidesOwnFailures(Protocol):
    """An atom that decides its own handler failures where no local supervisor
    does (a supervisor placed on another host: its give-ups escalate to the
    origin, its handlers' other errors only reach their caller)."""

    def radon_decide_own_failure(self, exc: BaseException) -> Directive:
        """The directive for ``exc``, raised by one of this atom's handlers."""


@attrs.frozen
class SpawnRequest:
    """One ``System.spawn`` call, as the root supervisor receives it."""

    cls: type[Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str | None = None
    mailbox_size: int | None = None
    sandbox: Any = None
    host: Any = None


class RootSupervisor(Protocol):
    """The root atom's instance: ``System.spawn`` adds top-level atoms through it."""

    async def adopt(self, request: SpawnRequest) -> Ref[Any]:
        """Start the requested atom as a child of the root (with its restart rules)."""


class Durability(Protocol):
    """The extension that keeps atoms' declared state in a store (durable).

    A cell's atom reads and writes its declared states (``Atom._radon_states``)
    through :meth:`read_state`, :meth:`write_state` and :meth:`clear_state`:
    the atom names the state; its type and key are the cell's (a sandboxed
    atom's guest goes through the same calls). :meth:`aclose` runs when the
    system closes."""

    url: str | None
    """How other processes of the system reach the same store (placement passes
    it to the hosts it starts); None: they cannot."""

    async def read_state(self, cell: AtomCell, name: str) -> tuple[Any, str] | None:
        """The stored state ``name`` of ``cell``'s atom: None if none was ever
        stored, else its document (a value; None after a clear) and etag."""
        ...

    async def write_state(self, cell: AtomCell, name: str, doc: Any, etag: str | None) -> str:
        """Store ``doc`` as state ``name`` if its etag is still ``etag``; the new
        etag (raises :class:`~radon_actors.StateConflict` otherwise)."""
        ...

    async def clear_state(self, cell: AtomCell, name: str, etag: str | None) -> str:
        """Clear state ``name`` (a tombstone) if its etag is still ``etag``."""
        ...

    def get(self, cls: type[Any], key: str) -> Ref[Any]:
        """The Ref of the on-demand atom ``cls`` with ``key`` (``System.get``)."""
        ...

    async def remind(
        self,
        cell: AtomCell,
        name: str,
        h: Any,
        args: tuple[Any, ...],
        due: float,
        period: float | None,
        limit: int | None = None,
    ) -> bool:
        """Store (or replace) the reminder ``name`` of ``cell``'s atom (``Atom.remind``).
        With ``limit``, a new name is refused (False, nothing stored) when the
        atom holds that many reminders already (a sandboxed atom's quota)."""
        ...

    async def forget_reminder(self, cell: AtomCell, name: str) -> bool:
        """Remove a reminder; False if there was none of that name."""
        ...

    async def aclose(self) -> None: ...


class Placement(Protocol):
    """The extension that runs atoms on other hosts and moves them (placement)."""

    async def choose_host(self, cls: type[Any], host: Any) -> str | None:
        """The host a ``spawn(..., host=host)`` goes to (None: this process)."""

    async def start_remote(self, cell: AtomCell, host: str) -> None:
        """Activate ``cell``'s atom on ``host``; the cell here forwards to it."""

    async def start_host(self, name: str, **options: Any) -> str:
        """Start a worker host process (``System.start_host``)."""

    async def connect_host(self, address: str, **options: Any) -> str:
        """Join a running host (``System.connect_host``)."""

    async def migrate(self, ref: Ref[Any], to: str, timeout: float | None) -> None:
        """Move a live atom (``System.migrate``), or fail within ``timeout`` seconds."""

    def host_names(self) -> list[str]:
        """Names of the live hosts, ``"local"`` first."""

    async def stop_atom(self, atom_id: str) -> None:
        """Stop an atom whose cell is not in this process."""

    def watch(self, watcher: AtomCell, ref: Ref[Any], spec: HandlerSpec) -> bool:
        """Watch an atom whose origin is another host; False if it is not one."""

    def unwatch(self, watcher: AtomCell, ref: Ref[Any]) -> None:
        """Undo :meth:`watch`."""

    async def aclose(self) -> None:
        """Close connections and worker hosts (the system is closing)."""


@attrs.frozen
class Extensions:
    """The extensions a system is composed with (see ``radon_actors.open_system``).

    Each is a factory called on first use, so a system that never sandboxes or
    places an atom never imports wasmtime or opens a socket. None: not available
    (using it raises a ``RuntimeError`` that says so).
    """

    isolation: Callable[[], Isolation] | None = None
    placement: Callable[[System], Placement] | None = None
    durability: Callable[[System], Durability] | None = None
    """Keeps durable atoms' state (see :class:`Durability`)."""
    start_root: Callable[[System, Any], Awaitable[None]] | None = None
    """Starts the system's root atom (a supervisor) from the ``root=`` argument of
    ``open_system`` (None: the default root); without it atoms have no supervisor."""
