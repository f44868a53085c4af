"""OTP supervision of atoms that run on another host than their origin.

An atom placed on a host (``spawn(..., host=...)``, ``ChildSpec(host=...)``) or
migrated there keeps its cell in its origin, under its supervisor, with a
:class:`Forward` as its ``away``. Its supervisor treats it as any child; two requests
carry what crosses the wire:

* ``child_failed`` (host -> origin). A handler raised on the host: the asker has
  its exception already, the atom's task waits (its mailbox keeps filling), and
  the exception (with its remote traceback) goes to the origin, where the
  cell's decider picks the directive. ``RESUME``: the host carries on with the
  instance's state. Anything else: the origin's forwarder holds what arrives
  and hands itself to the supervisor as a failed child (restart type, restart
  intensity, strategy, escalation: every rule as for a local child), and the
  supervisor's ``terminate`` reaches the host as ``retire``. When the origin
  cannot decide (it is down, the atom is migrating, nobody supervises it) the
  host restarts the atom in place, as an unsupervised atom.
* ``retire`` (origin -> host). The supervisor terminates this incarnation (a
  restart, a stop, a sibling's group restart): at a turn boundary (within the
  shutdown timeout) the host stops the atom's children, cancels its timers, runs
  ``on_stop`` (within the shutdown timeout), turns the cell into a forwarder to
  the origin (as a migration does, so Refs held on the host keep working, and
  atoms there that watched it now watch it through the origin) and
  hands the messages still queued back to the origin, which puts them in front
  of what it held. The supervisor's ``start`` then activates a fresh instance
  on a live host (``_supervised.restart_elsewhere``), which gets them all, in
  order. An atom still in its turn after the shutdown timeout is left to finish
  it and forwards its queued messages to the origin afterwards (they reach the
  new incarnation behind what was sent meanwhile, as a lagging local child
  restarts out of order).
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import outcome
import trio

from .._errors import AtomStopped
from ..mailbox import DeadLetter
from ..runtime import (
    AtomCell,
    CellState,
    DeadEndpoint,
    DecidesOwnFailures,
    Directive,
    TimerHandle,
    lookup,
    unregister,
    watches_of,
)
from ._endpoints import (
    Answer,
    CallbackReply,
    Forward,
    RemoteEndpoint,
    RemoteError,
    _dump_error,
    carry_on,
    forward_of,
    load_outcome,
)
from ._errors import MigrationError
from ._flow import release
from ._frames import ChildFailed, Retire
from ._moves import fail_moves
from ._wire import PICKLE_PROTOCOL, loads

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = [
    "Failing",
    "OriginHook",
    "Retirement",
    "retire_remote",
    "serve_child_failed",
    "serve_retire",
    "supervise_from_origin",
]

_RUNNING, _STOPPING, _STOPPED = CellState.RUNNING, CellState.STOPPING, CellState.STOPPED
_LATE = "late"


def _remote_decider(cell: AtomCell, exc: BaseException) -> Directive:
    """Decider of an atom whose origin is elsewhere: the origin decides (the crash
    report here says ``escalate``), except for a supervisor's own handler errors,
    which only reach their caller (as for a local supervisor)."""
    instance = cell.instance
    if isinstance(instance, DecidesOwnFailures):
        return instance.radon_decide_own_failure(exc)
    return Directive.ESCALATE


def supervise_from_origin(node: Node, cell: AtomCell) -> None:
    """Make ``cell`` (activated here, its origin elsewhere) report its failures there."""
    cell.supervisor = OriginHook(node, cell.id.rpartition(".")[0])
    cell.decider = _remote_decider


class Failing:
    """One failure waiting for its origin: woken by a ``retire`` or the origin's
    loss (``Node.failing``, by cell)."""

    __slots__ = ("event", "peer")

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.event = trio.Event()

    def host_down(self, name: str, reason: str) -> None:
        if self.peer.down is not None:
            self.event.set()


class OriginHook:
    """The ``SupervisorHook`` of an atom whose origin is another host."""

    def __init__(self, node: Node, origin: str) -> None:
        self.node = node
        self.origin = origin

    async def child_failed(
        self, cell: AtomCell, exc: BaseException | None, directive: Directive
    ) -> None:
        if exc is None:
            # A normal exit (it stopped itself): it stops here and the origin hears
            # of it (``atom_stopped``), where its restart type decides.
            await cell.shutdown(None)
            return
        node = self.node
        peer = node.peers.get(self.origin)
        verdict = "restart"
        failings, retires = node.failing, node.retires
        retire = retires.get(cell)
        if retire is None and peer is not None and peer.down is None and not node.closing:
            failing = failings[cell] = Failing(peer)
            node.host_down_callbacks.append(failing.host_down)
            try:
                notes = len(getattr(exc, "__notes__", ()))
                blob = _dump_error(exc, f"host {node.name!r}")
                # The copy that travels has the remote traceback as a note; the
                # exception here (an asker on this host has it) stays as it was.
                if hasattr(exc, "__notes__"):
                    del exc.__notes__[notes:]
                try:
                    verdict = await node.request(
                        peer, ChildFailed("child_failed", 0, cell.id, blob)
                    )
                except Exception as error:  # the origin is down, or too old to decide
                    cell.log.warning("atom.origin_unreachable", error=repr(error))
                while verdict == "held" and cell not in retires and peer.down is None:
                    await failing.event.wait()
                    failing.event = trio.Event()
            finally:
                del failings[cell]
                node.host_down_callbacks.remove(failing.host_down)
            retire = retires.get(cell)
        if retire is not None:
            await retire(cell)  # the origin's supervisor terminates this incarnation
        elif verdict != "resume":
            # Nobody at the origin decides: restart in place, as an unsupervised atom.
            await cell.restart(exc)


class Retirement:
    """One ``retire`` request, run in the atom's task at a turn boundary
    (``Node.retires``, by cell: a retired incarnation and its successor share an
    id)."""

    def __init__(self, node: Node, origin: Peer, timeout: float | None) -> None:
        self.node = node
        self.origin = origin
        self.timeout = timeout
        self.started = trio.Event()
        self.done = trio.Event()
        self.late = False
        self.handed_back: list[tuple[str, bytes, int | None]] = []

    def cell_stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        # It stopped before it could retire: nothing to hand back.
        if self.node.retires.get(cell) is self:
            del self.node.retires[cell]
        self.started.set()
        self.done.set()

    async def __call__(self, cell: AtomCell) -> bool:
        if self.started.is_set():
            return False
        self.started.set()
        if self.node.retires.get(cell) is self:
            del self.node.retires[cell]
        try:
            await self._retire(cell)
        finally:
            self.done.set()
        return True

    async def _retire(self, cell: AtomCell) -> None:
        node = self.node
        cell.busy = True
        if self.timeout is not None:
            cell.shutdown_timeout = self.timeout
        await cell.terminate_incarnation()
        fail_moves(
            cell.opened().control,
            MigrationError(
                f"{cell.label()} was terminated by its supervisor meanwhile; "
                "migrate its next incarnation instead"
            ),
        )
        self._rewatch(cell)
        # A forwarder to the origin from now on, as after a migration: Refs held
        # here reach the next incarnation through the origin. What was queued
        # comes back, the stash first, then the queue, in order.
        left = cell.move_away(
            Forward(RemoteEndpoint(node, self.origin.node_id, cell.id, cell.name))
        ).messages()
        cell.instance = None
        cell.state = _STOPPED
        cell.busy = False
        unregister(cell)
        cell.system.remove_top(cell)
        cell.stopped.set()
        cell.log.info("atom.retired", late=self.late)
        for spec, args, kwargs, reply in left:
            if reply is not None and (reply.task is None or type(reply) is TimerHandle):
                continue  # a timer's message (timers die with the incarnation), or withdrawn
            if self.late or self.origin.down is not None:
                cell.post(spec.name, args, kwargs, reply)
                continue
            try:
                blob = pickle.dumps((args, kwargs), PICKLE_PROTOCOL)
            except Exception as exc:
                _drop(cell, spec.name, args, kwargs, reply, exc)
                continue
            token = None if reply is None else node.register(self.origin, reply)
            self.handed_back.append((spec.name, blob, token))

    def _rewatch(self, cell: AtomCell) -> None:
        """Atoms of this host that watch this incarnation now watch the atom through
        its origin, which sees every incarnation (see ``Node.watch``)."""
        for entry in watches_of(cell):
            if entry.watcher.state < _STOPPING:
                self.node.watch(entry.watcher, cell.ref, entry.spec)


def _drop(
    cell: AtomCell,
    h: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    reply: Any,
    exc: Exception,
) -> None:
    error = AtomStopped(
        f"{cell.label()} was restarted and this message, queued for the old incarnation, "
        f"could not travel to the new one ({exc!r}); send arguments that pickle to atoms "
        "on other hosts"
    )
    if reply is not None:
        reply.deliver(outcome.Error(error))
    else:
        cell.system.dead_letters.record(DeadLetter(cell.id, cell.name, h, args, kwargs, str(error)))


async def retire_remote(cell: AtomCell) -> None:
    """Origin side of a ``terminate``: retire the atom's incarnation on its host and
    put the messages it hands back in front of what the forwarder holds."""
    fwd = forward_of(cell)
    target = fwd.target
    if not isinstance(target, RemoteEndpoint):
        await trio.lowlevel.checkpoint()
        return
    node = target._node
    fwd.pause()
    release(cell)
    fwd.target = DeadEndpoint(cell.id, cell.name)  # until the next start
    peer = node.peers.get(target.peer_id)
    if peer is None or peer.down is not None:
        await trio.lowlevel.checkpoint()  # lost with its host: nothing to stop
        return
    timeout = cell.shutdown_timeout
    node.homes[cell.id] = peer.name  # the next start goes back there if it is up
    try:
        result = await node.request(peer, Retire("retire", 0, cell.id, timeout))
    except Exception as exc:  # its host died meanwhile: so did the atom
        cell.log.warning("atom.remote_stop_failed", host=peer.name, error=repr(exc))
        return
    if result == _LATE:
        cell.log.warning(
            "supervisor.child_unresponsive", command="terminate", timeout=timeout, host=peer.name
        )
        return
    back: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = []
    for h, blob, token in result:
        reply = None if token is None else CallbackReply(Answer(node, peer, token))
        try:
            args, kwargs = loads(blob)
        except Exception as exc:
            _drop(cell, h, (), {}, reply, exc)
            continue
        back.append((h, args, kwargs, reply))
    paused = fwd.paused
    assert paused is not None
    paused.extendleft(reversed(back))


# ----------------------------------------------------------------------
# request handlers
# ----------------------------------------------------------------------
async def serve_child_failed(node: Node, peer: Peer, frame: ChildFailed) -> str:
    """Origin side: a handler of the atom raised on host ``peer``; the verdict is
    ``resume``, ``restart`` (in place, undecided here) or ``held`` (the supervisor
    acts, and retires the incarnation there)."""
    atom_id = frame.atom_id
    error = load_outcome(frame.blob)
    exc: BaseException = (
        error.error if isinstance(error, outcome.Error) else RemoteError(repr(error.unwrap()))
    )
    cell = lookup(atom_id)
    if (
        cell is None
        or not isinstance(cell.away, Forward)
        or cell.supervisor is None
        or cell.stop_requested
        or cell.stopped.is_set()
        or cell.system.closing
        or getattr(cell.away.target, "peer_id", None) != peer.node_id
    ):
        return "restart"
    if cell.parked is not None or atom_id in node.held:
        return "held"  # its supervisor is acting on it already (a group restart)
    directive = cell.decider(cell, exc)
    cell.log.error(
        "atom.crashed",
        host=peer.name,
        reason=repr(exc),
        directive=directive.value,
        restarts=cell.restarts,
        exc_info=exc,
    )
    if directive is Directive.RESUME:
        if cell.on_crashed:
            for callback in list(cell.on_crashed):
                callback(cell, exc)
        return "resume"
    taken: bool = await node.nursery.start(_take_over, node, cell, exc, directive)
    return "held" if taken else "restart"


async def _take_over(
    node: Node,
    cell: AtomCell,
    exc: BaseException,
    directive: Directive,
    *,
    task_status: trio.TaskStatus[bool] = trio.TASK_STATUS_IGNORED,
) -> None:
    if not node.try_migration_lock(cell.id):
        # A migration of this atom waits for its turn to end: no supervisor now.
        task_status.started(False)
        return
    try:
        fwd = forward_of(cell)
        fwd.pause()
        release(cell)
        node.held[cell.id] = fwd
        cell.state = _RUNNING
        task_status.started(True)
        await fwd.supervise(cell, exc, directive)
    finally:
        node.release_migration_lock(cell.id)
    # (its turns, if it came back into this process)
    await carry_on(cell, exc)


async def serve_retire(node: Node, peer: Peer, frame: Retire) -> Any:
    """Host side of ``retire_remote``: the messages handed back, or ``late``."""
    timeout = frame.timeout
    cell = lookup(frame.atom_id)
    if cell is None or cell.away is not None or cell.state >= _STOPPING:
        return []
    retire = node.retires[cell] = Retirement(node, peer, timeout)
    cell.add_stop_callback(retire.cell_stopped)
    failing = node.failing.get(cell)
    if failing is not None:
        failing.event.set()  # it waits in its failure path: it retires from there
    elif not cell.opened().put_control(("migrate", retire)):
        retire.cell_stopped(cell, None)
    if timeout is not None:
        with trio.move_on_after(timeout):
            await retire.started.wait()
        if not retire.started.is_set():
            retire.late = True  # still in its turn: it retires when the turn ends
            return _LATE
    await retire.done.wait()
    return retire.handed_back
