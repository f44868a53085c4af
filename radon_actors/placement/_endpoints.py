"""Endpoints of atoms that are not (or no longer) in this process.

* :class:`RemoteEndpoint` sends ``ask``/``tell`` frames to one host.
* :class:`Forward` is the ``away`` of a cell whose atom runs on another host
  (placed or migrated there): the cell stays the same object (so every Ref
  that points at it keeps working) and its ``ask``/``tell``/``send`` go through
  the Forward to the atom's location. While a migration is being coordinated
  the Forward can be *paused*: it queues what arrives and replays it, in order,
  to the new location.
* :func:`post` is the synchronous delivery used by the network reader: it
  queues a message (with a reply object) on any endpoint without yielding, so
  frames from one connection keep their order. For a local atom it is the
  runtime's one delivery path, ``AtomCell.post`` (``post_when_room`` waits for
  room in a full mailbox).
* :class:`Answer` sends an ask's outcome back to the host that asked.
"""

from __future__ import annotations

import pickle
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import outcome
import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from .._atom import handler_name
from .._errors import AskTimeout, AtomStopped, MailboxFull, RadonError, WouldBlock
from .._logs import get_logger
from ..mailbox import BUDGET, budget
from ..runtime import AtomCell, CellState, DeadEndpoint, Directive, ParkedHook, Reply
from ._errors import HostDown
from ._flow import Flow, release, window_of
from ._frames import Cancel, StopAtom
from ._wire import MAX_MESSAGE, PICKLE_PROTOCOL, check_size, loads, too_large

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = [
    "Answer",
    "CallbackReply",
    "Forward",
    "RemoteEndpoint",
    "RemoteError",
    "carry_on",
    "forward_of",
    "post",
]

_log = get_logger("radon_actors.placement")

_RUNNING = CellState.RUNNING
_STOPPING = CellState.STOPPING
_STOPPED = CellState.STOPPED
# Outgoing bytes queued for one peer above which ``send`` waits (backpressure).
HIGH_WATER = 4 << 20


class RemoteError(RadonError):
    """A remote handler raised an exception that could not be sent back as itself
    (it does not pickle); the message carries its type, text and traceback."""


class CallbackReply:
    """A :class:`~radon_actors.runtime.ReplySlot` whose outcome goes to a callback
    (an ask from another host, or one a moved atom's forwarder passed on).

    ``task`` holds the callback until the outcome is delivered (or the asker
    withdraws it: a ``cancel`` frame sets it to None).
    """

    __slots__ = ("task",)

    def __init__(self, callback: Callable[[outcome.Outcome[Any]], object]) -> None:
        self.task: Callable[[outcome.Outcome[Any]], object] | None = callback

    def deliver(self, result: outcome.Outcome[Any]) -> None:
        """Call the callback with ``result``, once."""
        callback = self.task
        if callback is not None:
            self.task = None
            callback(result)


class Answer:
    """Sends an ask's outcome back to the peer that asked (a reply callback)."""

    __slots__ = ("node", "peer", "req")

    def __init__(self, node: Node, peer: Peer, req: int) -> None:
        self.node = node
        self.peer = peer
        self.req = req

    def __call__(self, result: outcome.Outcome[Any]) -> None:
        peer = self.peer
        node = self.node
        node.inbound.pop((peer.node_id, self.req), None)
        if peer.down is None:
            blob = dump_outcome(result, node.label)
            peer.send(("reply", self.req, blob), urgent=True)


def dump_outcome(result: outcome.Outcome[Any], where: str) -> bytes:
    """Pickle an ask's outcome; an exception gets its traceback as a note."""
    if isinstance(result, outcome.Value):
        try:
            blob = pickle.dumps((True, result.value), PICKLE_PROTOCOL)
            check_size(blob, "the reply")
            return blob
        except Exception as unpicklable:  # MessageTooLarge included: the asker gets it
            error: BaseException = unpicklable
    else:
        assert isinstance(result, outcome.Error)
        error = result.error
    return _dump_error(error, where)


def _dump_error(exc: BaseException, where: str) -> bytes:
    tb = "".join(traceback.format_exception(exc))
    try:
        exc.add_note(f"remote traceback ({where}):\n{tb}")
        return pickle.dumps((False, exc), PICKLE_PROTOCOL)
    except Exception:
        return pickle.dumps(
            (False, RemoteError(f"{type(exc).__qualname__}: {exc} (raised on {where})\n{tb}")),
            PICKLE_PROTOCOL,
        )


def load_outcome(blob: bytes) -> outcome.Outcome[Any]:
    try:
        ok, value = loads(blob)
    except Exception as exc:
        return outcome.Error(RemoteError(f"the reply could not be unpickled here: {exc!r}"))
    return outcome.Value(value) if ok else outcome.Error(value)


class RemoteEndpoint:
    """Delivers messages for one atom to the host ``peer_id`` (it routes them on).

    ``peer_id`` is the atom's origin (its directory), or the host that runs it
    when a Ref said so (``via``): then messages go there directly, and should
    that host go down, to the origin, which knows where the atom went.
    """

    __slots__ = ("_node", "atom_id", "name", "peer_id")

    def __init__(self, node: Node, peer_id: str, atom_id: str, name: str | None) -> None:
        self._node = node
        self.peer_id = peer_id
        self.atom_id = atom_id
        self.name = name

    def __repr__(self) -> str:
        return f"<RemoteEndpoint {self.atom_id} via {self.peer_id}>"

    @property
    def via(self) -> str | None:
        """The location hint for a Ref pickled here: the host, unless it is the origin."""
        peer_id = self.peer_id
        return None if peer_id == self.atom_id.rpartition(".")[0] else peer_id

    def _peer(self) -> Peer:
        node = self._node
        peer = node.peers.get(self.peer_id)
        if peer is None or peer.down is not None:
            origin = self.atom_id.rpartition(".")[0]
            if self.peer_id != origin and origin in node.peers:
                # The host a Ref pointed at is gone; the origin restarts or
                # knows the atom, so go there from now on.
                self.peer_id = origin
        return node.live_peer(self.peer_id, self.atom_id)

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        peer = self._peer()
        blob = pickle.dumps((args, kwargs), PICKLE_PROTOCOL)
        if len(blob) > MAX_MESSAGE:  # refused here, before anything is sent
            raise too_large(len(blob), f"the arguments of {handler_name(h)!r}")
        reply = Reply(current_task())
        node = self._node
        req = node.register(peer, reply)
        peer.send(("ask", req, self.atom_id, handler_name(h), blob), urgent=True)
        try:
            if timeout is None:
                return await wait_task_rescheduled(reply)
            with trio.move_on_after(timeout):
                return await wait_task_rescheduled(reply)
        finally:
            if node.pending.pop(req, None) is not None and peer.down is None:
                # No reply yet (timeout or cancellation): withdraw the message if
                # it is still queued over there.
                peer.send(Cancel("cancel", req))
        raise AskTimeout(
            f"atom {self.name or self.atom_id} on host {peer.label} did not answer "
            f"{handler_name(h)!r} within {timeout} s"
        )

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise WouldBlock(f"{self!r} runs on another host: its answer needs a round trip")

    def post(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any) -> None:
        """Queue a message whose reply (if any) goes to ``reply`` (synchronous).

        A tell spends credit (``_flow``) but is sent even with none left: what
        comes here was accepted once already (a paused queue replayed, a
        receiver that checked :meth:`has_room`)."""
        try:
            peer = self._peer()
        except HostDown as exc:
            if reply is not None:
                reply.deliver(outcome.Error(exc))
            else:
                _log.warning("dead_letter", atom_id=self.atom_id, reason=str(exc))
            return
        if reply is None:
            atom_id = self.atom_id
            peer.send(("tell", atom_id, handler_name(h), args, kwargs))
            flow = peer.flows.get(atom_id)
            if flow is None:
                flow = peer.flows[atom_id] = Flow(window_of(atom_id))
            flow.out += 1
        else:
            blob = pickle.dumps((args, kwargs), PICKLE_PROTOCOL)
            if len(blob) > MAX_MESSAGE:
                reply.deliver(
                    outcome.Error(too_large(len(blob), f"the arguments of {handler_name(h)!r}"))
                )
                return
            req = self._node.register(peer, reply)
            peer.send(("ask", req, self.atom_id, handler_name(h), blob))

    def has_room(self) -> bool:
        """Whether a tell can go now: the atom's host has given credit for it."""
        peer = self._node.peers.get(self.peer_id)
        if peer is None or peer.down is not None:
            return True  # ``post`` reroutes it, or makes it a dead letter
        flow = peer.flows.get(self.atom_id)
        return flow is None or flow.out < flow.window

    async def wait_room(self) -> None:
        """Wait until :meth:`has_room` may hold (credit came, or the host is down);
        the caller checks again, as the atom may have moved meanwhile."""
        peer = self._node.peers.get(self.peer_id)
        flow = None if peer is None or peer.down is not None else peer.flows.get(self.atom_id)
        if flow is None or flow.out < flow.window:
            await trio.lowlevel.checkpoint()
            return
        await flow.wait_room()

    async def wait_ready(self) -> None:
        """Wait until :meth:`send_if_ready` may send: credit came, the
        connection's queue drained, or the host is down."""
        peer = self._node.peers.get(self.peer_id)
        if peer is not None and peer.down is None and peer.backlog() > HIGH_WATER:
            await peer.wait_drained()
        else:
            await self.wait_room()

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Send a tell; :class:`MailboxFull` when the atom's host has given no
        credit for it (its mailbox is full and a mailbox's worth is on its way)."""
        try:
            peer = self._peer()
        except HostDown as exc:
            _log.warning("dead_letter", atom_id=self.atom_id, reason=str(exc))
            return
        atom_id = self.atom_id
        flow = peer.flows.get(atom_id)
        if flow is None:
            flow = peer.flows[atom_id] = Flow(window_of(atom_id))
        elif flow.out >= flow.window:
            raise self._full(peer, flow)
        peer.send(("tell", atom_id, handler_name(h), args, kwargs))
        flow.out += 1

    def _full(self, peer: Peer, flow: Flow) -> MailboxFull:
        return MailboxFull(
            f"atom {self.name or self.atom_id} on host {peer.label} has a full mailbox and "
            f"{flow.out} messages from this host on their way to it (its mailbox size is "
            f"{flow.window}); use `await ref.send(...)` to wait for room"
        )

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Send a tell, waiting for credit (room in the atom's mailbox) and for the
        connection's queue to drain below its high-water mark."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self.send_if_ready(h, args, kwargs):
            await self.wait_ready()
        # Yield now and then (the shared coop budget), so the writer can flush
        # while the sender keeps going: the two overlap instead of taking turns.
        b = budget
        b.left -= 1
        if b.left <= 0:
            b.left = BUDGET
            await trio.lowlevel.cancel_shielded_checkpoint()

    def send_if_ready(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Send a tell if there is credit for it and the connection's queue is
        under its high-water mark (or the host is down: then as ``post`` does);
        False, nothing done, if the caller must wait (:meth:`wait_ready`).
        One lookup of the peer and of the flow: this is ``send``'s per-message
        path."""
        atom_id = self.atom_id
        peer = self._node.peers.get(self.peer_id)
        if peer is None or peer.down is not None:
            self.post(h, args, kwargs, None)  # the origin, or a dead letter, as a tell
            return True
        flow = peer.flows.get(atom_id)
        if flow is None:
            flow = peer.flows[atom_id] = Flow(window_of(atom_id))
        elif flow.out >= flow.window:
            return False
        if len(peer.out) > HIGH_WATER or (peer.bulk and peer.backlog() > HIGH_WATER):
            return False
        peer.send(("tell", atom_id, handler_name(h), args, kwargs))
        flow.out += 1
        return True


class Forward:
    """The :class:`~radon_actors.runtime.Away` of a cell whose atom runs on another
    host (or is being moved or recovered): see the module docs.

    ``target`` is where messages go (a :class:`RemoteEndpoint`, the cell of an
    atom that came back into this process, or a dead end); while ``paused`` is a
    queue, what arrives waits there and is replayed in order on resume.

    The pause queue has the atom's mailbox bound for its local senders: beyond
    it ``send`` waits for the resume and ``tell`` raises ``MailboxFull``, as a
    full mailbox would. What arrives from other hosts, and asks (one per
    waiting caller), always queue: a connection's reader must never wait on an
    atom that is between two places.
    """

    __slots__ = ("_resumed", "arrived", "loss", "paused", "target")

    def __init__(self, target: Any) -> None:
        self.target = target
        self.paused: deque[tuple[Any, tuple[Any, ...], dict[str, Any], Any]] | None = None
        # A cell activated here while paused (the atom is coming back home).
        self.arrived: AtomCell | None = None
        # Set when the pause ends: senders waiting for room in the queue go on.
        self._resumed: trio.Event | None = None
        # The atom was lost while a migration had this paused: (reason,).
        self.loss: tuple[BaseException | None] | None = None

    def __repr__(self) -> str:
        return f"<Forward to {self.target!r}{' (paused)' if self.paused is not None else ''}>"

    def pause(self) -> None:
        if self.paused is None:
            self.paused = deque()

    async def resume_into(self, cell: AtomCell) -> None:
        """Switch to ``cell`` (the atom came back to this process) and hand it the
        pause queue, behind what it has queued, in one go and over its mailbox's
        bound if need be: replaying it while waiting for room would let senders
        on other hosts (whose messages a paused queue always takes) keep it
        growing faster than the atom drains it. Senders that come after wait for
        room as usual."""
        await trio.lowlevel.checkpoint()
        self.target = cell
        paused = self.paused
        self.paused = None
        if paused:
            cell.take_over(paused)
        self.wake_senders()

    def wake_senders(self) -> None:
        """The pause is over: senders waiting for room in its queue go on."""
        resumed = self._resumed
        if resumed is not None:
            self._resumed = None
            resumed.set()

    async def _wait_for_room(self, cell: AtomCell) -> None:
        """Wait while the pause queue holds a mailbox's worth (see the class docs)."""
        capacity = cell.capacity
        while self.paused is not None and len(self.paused) >= capacity:
            resumed = self._resumed
            if resumed is None:
                resumed = self._resumed = trio.Event()
            await resumed.wait()

    def resume(self, target: Any | None = None) -> None:
        """Replay what queued during the pause to ``target`` (default: unchanged)."""
        if target is not None:
            self.target = target
        paused = self.paused
        self.paused = None
        if paused:
            for h, args, kwargs, reply in paused:
                post(self.target, h, args, kwargs, reply)
        self.wake_senders()

    # ------------------------------------------------------------------
    # The Away seam: what the cell delegates while its atom is elsewhere.
    # Handlers travel on by name: the atom's class on its new host may be
    # another class object (a class shipped by value with cloudpickle).
    # ------------------------------------------------------------------
    @property
    def via(self) -> str | None:
        """Where the atom runs now, for a Ref pickled here (None while it moves)."""
        if self.paused is not None:
            return None
        return getattr(self.target, "via", None)

    def post(
        self, cell: AtomCell, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any
    ) -> None:
        h = handler_name(h)
        paused = self.paused
        if paused is not None:
            paused.append((h, args, kwargs, reply))
        else:
            post(self.target, h, args, kwargs, reply)

    async def ask(
        self,
        cell: AtomCell,
        h: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        paused = self.paused
        if paused is None:
            return await self.target.ask(h, args, kwargs, timeout)
        reply = Reply(current_task())
        paused.append((h, args, kwargs, reply))
        if timeout is None:
            return await wait_task_rescheduled(reply)
        with trio.move_on_after(timeout):
            return await wait_task_rescheduled(reply)
        raise AskTimeout(f"{cell.label()} did not answer {h!r} within {timeout} s")

    def tell(self, cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        paused = self.paused
        if paused is not None:
            if len(paused) >= cell.capacity:
                raise MailboxFull(
                    f"{cell.label()} is moving and {len(paused)} messages wait for it (its "
                    "mailbox size); use `await ref.send(...)` to wait for room"
                )
            paused.append((h, args, kwargs, None))
        else:
            self.target.tell(h, args, kwargs)  # a full local mailbox raises MailboxFull

    async def send(
        self, cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            paused = self.paused
            if paused is not None:
                if len(paused) < cell.capacity:
                    paused.append((h, args, kwargs, None))
                    return
                await self._wait_for_room(cell)
                continue
            target = self.target
            if not isinstance(target, RemoteEndpoint):
                await target.send(h, args, kwargs)  # back in this process, or a dead end
                return
            if target.send_if_ready(h, args, kwargs):
                b = budget
                b.left -= 1
                if b.left <= 0:
                    b.left = BUDGET
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return
            # Wait here, not in the endpoint: the atom may move meanwhile, and
            # then the message must follow this forwarder's new target, behind
            # what it queued.
            await target.wait_ready()

    async def start_incarnation(self, cell: AtomCell) -> None:
        # A supervisor's restart of the lost atom (see ``lost``).
        await _node_of(cell).restart_elsewhere(cell)

    async def call_on_stop(self, cell: AtomCell) -> None:
        # ``on_stop`` runs on the atom's host: the supervisor's terminate retires
        # that incarnation there (nothing to do if its host is gone).
        await _node_of(cell).retire_remote(cell)

    def request_stop(self, cell: AtomCell, reason: BaseException | None) -> None:
        """Stop the atom where it now lives; ``stopped`` is set once it has."""
        if cell.id in _node_of(cell).held:
            # Being restarted by its supervisor: the handover stops it instead.
            if cell.parked is not None:
                cell.parked.stop_requested(reason)
            return
        cell.system.start_soon(self._stop_remote, cell)

    async def _stop_remote(self, cell: AtomCell) -> None:
        target = self.target
        try:
            if isinstance(target, RemoteEndpoint):
                node = target._node
                peer = node.live_peer(target.peer_id)
                await node.request(peer, StopAtom("stop_atom", 0, cell.id))
            elif isinstance(target, AtomCell):
                target.request_stop()
                await target.stopped.wait()
            else:
                await trio.lowlevel.checkpoint()  # a dead end: nothing left to stop
        except Exception as exc:  # the host is gone: so is the atom
            cell.log.warning("atom.remote_stop_failed", error=repr(exc))
        finally:
            cell.state = _STOPPED
            cell.stopped.set()

    def finished(self, cell: AtomCell) -> None:
        node = _node_of(cell)
        node.forget(cell.id)
        node.held.pop(cell.id, None)
        if node.forwarders.get(cell.id) is cell:
            del node.forwarders[cell.id]
        self.target = DeadEndpoint(cell.id, cell.name)
        self.resume()  # what was held fails (asks) or is a dead letter

    def placed_away(self, cell: AtomCell) -> bool:
        """Whether its supervisor's group restarts act on this atom: it runs on
        another host (or is being recovered) and nobody asked it to stop. Not once
        it migrated back into this process: that cell is not the child any more."""
        if cell.stopped.is_set() or cell.stop_requested:
            return False
        return cell.id in _node_of(cell).held or isinstance(self.target, RemoteEndpoint)

    def serve_parked(self, cell: AtomCell, parked: ParkedHook) -> None:
        """Its supervisor acts on this atom as a sibling of a failed child (a group
        restart): hold what arrives and serve the supervisor's commands in a task
        here (``terminate`` retires the instance on its host, ``start`` starts a
        fresh one on a live host; see ``_supervision``)."""
        cell.system.start_soon(self._handover, cell, parked)

    # ------------------------------------------------------------------
    # Losing the atom, and its supervision from here.
    # ------------------------------------------------------------------
    def lost(self, cell: AtomCell, reason: BaseException | None) -> None:
        """The atom stopped where it lived, or its host died.

        A supervised atom (every atom spawned with ``system.spawn``, or declared in
        a supervisor) that nobody asked to stop goes to its supervisor as a failed
        child (``HostDown``, or the remote reason; None: it stopped itself): what
        arrives meanwhile is held, and a restart brings a fresh instance up on a
        live host behind this same cell (see ``_supervised``).

        Otherwise the cell stops too: its ``stopped`` event is set and its
        ``on_stopped`` callbacks run (what watchers of the original cell rely
        on); Refs that still point here now fail fast with ``AtomStopped``.
        """
        if cell.stopped.is_set():
            return
        if self.paused is not None:
            if cell.id not in _node_of(cell).held:
                # Paused by a migration under way: its coordinator hands this on
                # once the move has settled (``_migration.settle``).
                self.loss = (reason,)
            return
        system = cell.system
        if cell.supervisor is not None and not cell.stop_requested and not system.closing:
            self.pause()
            release(cell)
            _node_of(cell).held[cell.id] = self
            cell.state = _RUNNING
            log = cell.log.info if reason is None else cell.log.warning
            log("atom.lost", reason=None if reason is None else repr(reason), supervised=True)
            system.start_soon(self._recover, cell, reason)
            return
        self.target = DeadEndpoint(cell.id, cell.name)
        system.release_name(cell)
        cell.log.info("atom.lost", reason=None if reason is None else repr(reason))
        cell.state = _STOPPED
        cell.stopped.set()
        cell.notify_stopped(reason)

    async def _recover(self, cell: AtomCell, reason: BaseException | None) -> None:
        """The lost atom's supervision, in a task of its own (a forwarder has none)."""
        await self.supervise(cell, reason)
        await carry_on(cell, reason)

    async def supervise(
        self,
        cell: AtomCell,
        reason: BaseException | None,
        directive: Directive | None = None,
        parked: ParkedHook | None = None,
    ) -> None:
        """Hand the atom to its supervisor; returns once it resumed or stopped.

        Three cases: the atom was lost (``lost``); its handler failed on its host
        and the supervisor decides (``directive``, see ``_supervision``); or the
        supervisor acts on it as a sibling of a failed child (``parked``: a group
        restart). In the last two the atom is still alive on its host until the
        supervisor terminates it there.
        """
        supervisor = cell.supervisor
        assert supervisor is not None
        alive = directive is not None or parked is not None
        if directive is None:
            if reason is None:
                directive = Directive.STOP  # a normal exit: restart types decide
            else:
                directive = cell.decider(cell, reason)
                if directive is Directive.RESUME:
                    directive = Directive.RESTART  # the state is gone with the host
        try:
            if parked is not None:
                await parked.serve()
            else:
                await supervisor.child_failed(cell, reason, directive)
        finally:
            held = _node_of(cell).held
            if cell.state < _STOPPING and held.get(cell.id) is self:
                if alive and isinstance(self.target, RemoteEndpoint) and not cell.system.closing:
                    # Resumed without being terminated: it carries on where it is.
                    del held[cell.id]
                    self.resume()
                else:
                    # Neither restarted nor stopped (cancelled: the system is closing).
                    cell.state = _STOPPING
                    cell.finish(reason)

    async def _handover(self, cell: AtomCell, parked: ParkedHook) -> None:
        node = _node_of(cell)
        # Never while a migration of this atom is under way: it would resume the
        # forwarder under the supervisor's feet. A child busy migrating is like
        # one busy in a turn (the supervisor waits its shutdown timeout).
        async with node.migration_lock(cell.id):
            if parked.done or cell.id in node.held or cell.stopped.is_set():
                return  # stopped meanwhile, or lost: that recovery serves it
            self.pause()
            release(cell)
            node.held[cell.id] = self
            cell.state = _RUNNING  # a migrated-away forwarder counts as stopped
            await self.supervise(cell, None, parked=parked)
        await carry_on(cell, None)


async def carry_on(cell: AtomCell, reason: BaseException | None) -> None:
    """After ``Forward.supervise``: tell death watchers of a crash the atom
    survived, and run its turns here if it was restarted in this process."""
    if cell.state >= _STOPPING:
        return
    if reason is not None and cell.on_crashed:
        for callback in list(cell.on_crashed):
            callback(cell, reason)  # death watchers: Down(stopped=False)
    if cell.away is None:
        # Restarted in this process (no other host was up): run its turns.
        await cell.run_turns()


def forward_of(cell: AtomCell) -> Forward:
    """The :class:`Forward` of a cell whose atom is elsewhere (placement's own)."""
    away = cell.away
    assert isinstance(away, Forward), f"{cell!r} runs here, not elsewhere"
    return away


def _node_of(cell: AtomCell) -> Node:
    """The node of ``cell``'s system (a forwarder only exists with one)."""
    return cast("Node", cell.system.placement)


def post(ep: Any, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any) -> None:
    """Queue ``h(*args, **kwargs)`` on any endpoint without yielding.

    A cell posts it (``AtomCell.post``; one whose atom is elsewhere sends it on),
    a :class:`RemoteEndpoint` sends it. Errors (unknown handler, bad arguments,
    stopped atom, full mailbox) go to ``reply``, or to the dead letters for a tell.
    """
    if isinstance(ep, (AtomCell, RemoteEndpoint)):
        ep.post(h, args, kwargs, reply)
        return
    posts = getattr(ep, "post", None)
    if posts is not None:  # an on-demand atom's endpoint (durable), say
        posts(h, args, kwargs, reply)
        return
    # A dead end (the atom is unknown here).
    label = getattr(ep, "_name", None) or getattr(ep, "_id", "?")
    error = AtomStopped(f"atom {label} is not running")
    if reply is not None:
        reply.deliver(outcome.Error(error))
    else:
        _log.warning("dead_letter", atom_id=getattr(ep, "_id", None), reason=str(error))
