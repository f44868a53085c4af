"""Live migration of an atom between hosts (after Orleans 7.2's protocol).

Every migration is coordinated by the atom's *origin* node (the one that
spawned it, named by its id prefix), which is also its directory: every Ref
that is not in the atom's current process routes through the origin.

1. The origin *pauses* its entry for the atom (a forwarder queues what arrives)
   unless the atom is in the origin itself.
2. The current holder puts a ``migrate`` control message in the atom's mailbox,
   so the atom stops at a turn boundary: the current turn finishes, nothing
   else starts.
3. The holder closes the mailbox and repoints the cell at a paused transit
   queue (:class:`_Transit`), where senders, also those that waited for room,
   queue from now on; it snapshots ``instance.__dict__`` with pickle and sends
   it with the queued (and stashed) messages to the target in one ``activate``
   request. Asks among them keep their askers: their replies come back through
   the holder.
4. The target builds the atom from the snapshot (no ``__init__``, no
   ``on_start``), queues the messages in their order, starts it and answers.
5. The holder points the transit at the target if it is the origin, else back
   at the origin, and forwards, in order, what arrived during steps 3-4.
6. The origin switches its entry to the target and replays what it queued
   during the pause, in order.

Any failure before step 5 (state that does not pickle, a class the target
cannot import, the target dying, the deadline) reopens the mailbox with the
messages back at its head and what arrived meanwhile behind them, and the atom
carries on where it was; ``migrate`` raises :class:`MigrationError`.
"""

from __future__ import annotations

import math
import pickle
from typing import TYPE_CHECKING, Any, cast

import trio

from .._atom import HandlerSpec
from .._errors import AtomStopped, NoSuchAtom
from .._ref import Ref
from ..runtime import (
    AtomCell,
    CellState,
    ParkedHook,
    Taken,
    TimerHandle,
    lookup,
    rearm_timers,
    register,
    restoring_timers,
    snapshot_timers,
    start_timers,
    unregister,
)
from . import _code
from ._endpoints import Answer, CallbackReply, Forward, RemoteEndpoint, forward_of
from ._errors import HostDown, MigrationError
from ._flow import release
from ._frames import Activate, Emigrate, Migrate, Stopped
from ._moves import Move, fail_moves
from ._supervision import supervise_from_origin
from ._wire import PICKLE_PROTOCOL, loads

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..sandbox.host import SandboxRuntime
    from ._node import Node
    from ._transport import Peer

__all__ = ["migrate", "serve_activate", "serve_emigrate", "serve_migrate"]

_STOPPING = CellState.STOPPING
_STOPPED = CellState.STOPPED


class _Restoring:
    """The instance runtime of a cell a migration activates: its first incarnation
    is rebuilt from the snapshot (no constructor, no ``on_start``); the cell then
    goes back to its own runtime, so a later restart starts fresh, as anywhere."""

    def __init__(
        self, inner: SandboxRuntime | None, state: Any, table: dict[Any, HandlerSpec]
    ) -> None:
        self.inner = inner
        self.state = state
        self.table = table

    async def start(self, cell: AtomCell) -> Any:
        cell.runtime = self.inner
        if self.state is None:  # placed, not moved: a fresh start, as anywhere
            await cell.start_incarnation()
            return cell.instance
        if self.inner is not None:
            # The guest's own snapshot (a string), plus the host side of its timers.
            snapshot, timers, next_timer = self.state
            guest = await self.inner.restore(cell, snapshot)
            guest.adopt_timers(timers, next_timer)  # re-armed in serve_activate
            return guest
        cls = cell.cls
        instance = cls.__new__(cls)
        instance.__dict__.update(self.state)
        instance._radon_ctx = cell
        return instance


def _origin(atom_id: str) -> str:
    return atom_id.rpartition(".")[0]


def _budget(deadline: float) -> float | None:
    """The seconds left until ``deadline`` (None: no deadline), for a frame."""
    return None if deadline == math.inf else max(0.0, deadline - trio.current_time())


def _deadline(budget: float | None) -> float:
    """The local deadline of a budget that came in a frame."""
    return math.inf if budget is None else trio.current_time() + budget


def _late(label: str, to: str, what: str) -> MigrationError:
    return MigrationError(
        f"moving {label} to host {to} did not finish within its timeout: {what}; it keeps "
        "running where it was, with its messages (pass a longer migrate(timeout=...))"
    )


async def migrate(node: Node, ref: Ref[Any], to: str, timeout: float | None) -> None:
    """Entry point of ``System.migrate``."""
    if timeout is not None and not timeout > 0:
        raise ValueError(f"migrate timeout must be a positive number of seconds, not {timeout!r}")
    deadline = math.inf if timeout is None else trio.current_time() + timeout
    to_id = node.node_id if to == node.name else node.peer_by_name(to).node_id
    origin = _origin(ref.id)
    if origin == node.node_id:
        await coordinate(node, ref.id, to_id, deadline)
    else:
        frame = Migrate("migrate", 0, ref.id, to_id, _budget(deadline))
        await node.request(node.live_peer(origin, ref.id), frame)


async def coordinate(node: Node, atom_id: str, to_id: str, deadline: float) -> None:
    """Move ``atom_id`` (whose origin is ``node``) to node ``to_id`` by ``deadline``."""
    with trio.move_on_at(deadline) as waiting:
        async with node.migration_lock(atom_id):
            waiting.deadline = math.inf  # from here on each step keeps to the deadline
            await _coordinate(node, atom_id, to_id, deadline)
    if waiting.cancelled_caught:
        raise _late(f"atom {atom_id}", to_id, "another migration of it was still under way")


async def _coordinate(node: Node, atom_id: str, to_id: str, deadline: float) -> None:
    cell = lookup(atom_id)
    if cell is None:
        raise NoSuchAtom(f"atom {atom_id} is not running; it cannot be migrated")
    if cell.away is None:
        if to_id != node.node_id:
            await emigrate(node, cell, to_id, deadline)
        return
    fwd = forward_of(cell)
    if atom_id in node.held or not isinstance(fwd.target, RemoteEndpoint):
        raise MigrationError(
            f"{cell.label()} is in its supervisor's hands (its host went down, or it is "
            "being restarted or stopped); migrate it once it runs again"
        )
    holder = fwd.target.peer_id
    if holder == to_id:
        return
    fwd.pause()
    release(cell)
    try:
        # Shielded: once the holder has been asked to move the atom, the
        # directory must learn the outcome, or the two would disagree. The
        # holder keeps to the deadline.
        with trio.CancelScope(shield=True):
            peer = node.live_peer(holder, atom_id)
            await node.request(peer, Emigrate("emigrate", 0, atom_id, to_id, _budget(deadline)))
    except Exception as exc:
        if fwd.arrived is None:
            fwd.resume()
            _settle(node, cell, fwd, moved=False)
            if isinstance(exc, MigrationError):
                raise
            raise MigrationError(
                f"moving atom {atom_id} to host {to_id} failed; it keeps running where it "
                f"was: {exc}"
            ) from exc
        # It did arrive here (the holder failed after handing it over).
    if to_id == node.node_id:
        home = fwd.arrived
        fwd.arrived = None
        assert home is not None
        with trio.CancelScope(shield=True):
            await fwd.resume_into(home)
        register(home)
        node.system.claim_name(home)
    else:
        fwd.resume(RemoteEndpoint(node, to_id, atom_id, cell.name))
        node.forwarders[atom_id] = cell
        _settle(node, cell, fwd, moved=True)


def _settle(node: Node, cell: AtomCell, fwd: Forward, *, moved: bool) -> None:
    """After a move the origin coordinated, pass on a loss its pause held back.

    A host that died during the pause (the holder, or the target just as the
    atom arrived) took the atom with it: the forwarder hands it to its
    supervisor now, as ``Node.peer_down`` would have. An ``atom_stopped`` from
    the holder during a move that then failed is passed on too.
    """
    loss, fwd.loss = fwd.loss, None
    target = fwd.target
    if not isinstance(target, RemoteEndpoint):
        return
    peer = node.peers.get(target.peer_id)
    if peer is None or peer.down is not None:
        node.forwarders.pop(cell.id, None)
        fwd.lost(cell, HostDown(f"host {target.peer_id} went down while atom {cell.id} moved"))
    elif loss is not None and not moved:
        node.forwarders.pop(cell.id, None)
        fwd.lost(cell, loss[0])


class _Emigration(Move):
    """The ``migrate`` control message of one migration, and its outcome."""

    def __init__(self, node: Node, peer: Peer, deadline: float) -> None:
        self.node = node
        self.peer = peer
        self.deadline = deadline
        self.done = trio.Event()
        self.errors: list[BaseException] = []
        self.abandoned = False
        self.started = False

    async def __call__(self, cell: AtomCell) -> bool:
        if self.abandoned:  # the caller gave up before the turn ended: stay here
            return False
        mailbox = cell.opened()
        if any(msg[0] != "migrate" for msg in mailbox.control):
            # A stop, a failure or a supervisor's command queued behind this move:
            # those run first, and the move after them.
            mailbox.put_control(("migrate", self))
            return False
        self.started = True
        try:
            await _move(self.node, cell, self.peer, self.deadline)
        except BaseException as exc:
            self.fail(exc)
            if isinstance(exc, Exception):
                return False
            raise
        self.done.set()
        return True

    def fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.done.set()

    def on_stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        self.fail(AtomStopped(f"{cell.label()} stopped before it could migrate"))


async def emigrate(node: Node, cell: AtomCell, to_id: str, deadline: float) -> None:
    """Move the live atom of ``cell`` (in this process) to node ``to_id`` by ``deadline``.

    What the deadline bounds: waiting for the atom's current turn to end (then
    the move is called off and the atom never notices), shipping a sandboxed
    atom's component, and the target's activation (it refuses to start the atom
    when it cannot within the time left). Once the target has the atom, the
    switch here takes no time.
    """
    peer = node.live_peer(to_id, cell.id)
    if cell.runtime is not None:
        # A sandboxed atom (the only other kind): ship the component first, so that
        # the atom's pause excludes the transfer.
        runtime = cast("SandboxRuntime", cell.runtime)
        try:
            with trio.move_on_at(deadline) as shipping:
                await _code.ship(node, peer, runtime.loaded)
        except Exception as exc:
            raise MigrationError(
                f"moving {cell.label()} to host {peer.label} failed; it keeps running here: "
                f"its component could not be sent there: {exc!r}"
            ) from exc
        if shipping.cancelled_caught:
            raise _late(cell.label(), peer.label, "its component was still being sent there")
    move = _Emigration(node, peer, deadline)
    cell.add_stop_callback(move.on_stopped)
    try:
        if cell.state >= _STOPPING or not cell.opened().put_control(("migrate", move)):
            raise MigrationError(f"{cell.label()} is not running; it cannot be migrated")
        with trio.move_on_at(deadline):
            await move.done.wait()
        if not move.done.is_set():
            if not move.started:  # ``finally`` calls it off
                raise _late(cell.label(), peer.label, "its current turn had not ended")
            # Under way: the target keeps to the deadline, so the outcome is near.
            await move.done.wait()
    finally:
        move.abandoned = not move.done.is_set()
        cell.remove_stop_callback(move.on_stopped)
    if move.errors:
        error = move.errors[0]
        if isinstance(error, trio.TooSlowError):
            raise _late(cell.label(), peer.label, "the target could not activate it in time")
        raise MigrationError(
            f"moving {cell.label()} to host {peer.label} failed; it keeps running here: {error!r}"
        ) from error


class _Transit(Forward):
    """The ``away`` of a cell while its atom is on its way out (steps 3-4).

    Closing the mailbox at step 3 sends everyone to it: senders that waited for
    room in the full mailbox wake and queue here, as does whatever arrives from
    other hosts. So no sender, and above all no connection reader, ever waits on
    an atom that cannot drain its mailbox until a reply on that very connection
    comes in (issue #12's deadlock). Local senders still meet the mailbox's
    bound here (see :class:`Forward`).

    Stop requests and a supervisor's group-restart handover wait for the
    outcome: if the atom stays (:meth:`stay`) they go to its mailbox, if it
    moved (:meth:`moved`) to where it went.
    """

    __slots__ = ("handovers", "settled", "stops")

    def __init__(self) -> None:
        super().__init__(None)
        self.pause()
        self.settled = False
        self.stops: list[BaseException | None] = []
        self.handovers: list[ParkedHook] = []

    def request_stop(self, cell: AtomCell, reason: BaseException | None) -> None:
        if self.settled:
            super().request_stop(cell, reason)
        else:
            self.stops.append(reason)

    def serve_parked(self, cell: AtomCell, parked: ParkedHook) -> None:
        if self.settled:
            super().serve_parked(cell, parked)
        else:
            self.handovers.append(parked)

    def placed_away(self, cell: AtomCell) -> bool:
        if self.settled:
            return super().placed_away(cell)
        return cell.state < _STOPPING  # still a child running here until it has moved

    async def start_incarnation(self, cell: AtomCell) -> None:
        if not self.settled:  # pragma: no cover - the atom's own task is moving it
            raise RuntimeError(f"{cell.label()} is being moved; it cannot be restarted now")
        await super().start_incarnation(cell)

    async def call_on_stop(self, cell: AtomCell) -> None:
        if not self.settled:  # pragma: no cover - the atom's own task is moving it
            raise RuntimeError(f"{cell.label()} is being moved; it cannot be terminated now")
        await super().call_on_stop(cell)

    def stay(self, cell: AtomCell, taken: Taken) -> None:
        """The move failed: the atom carries on here with what was taken out of its
        mailbox in front and what arrived meanwhile behind, in order."""
        later = self.paused or ()
        self.paused = None
        self.settled = True
        self.target = cell  # for a sender that read the cell's away just before
        cell.come_back(taken, later)
        cell.busy = False
        self.wake_senders()
        for reason in self.stops:
            cell.requeue_stop(reason)
        for parked in self.handovers:
            if not cell.call_between_turns(parked.serve):  # pragma: no cover - reopened
                parked.stop_requested(None)

    def moved(self, cell: AtomCell, target: RemoteEndpoint) -> None:
        """The atom runs at ``target`` now: replay what queued here, in order, and
        pass on the stops and handovers that waited."""
        self.settled = True
        self.resume(target)
        for reason in self.stops:
            super().request_stop(cell, reason)
        for parked in self.handovers:
            super().serve_parked(cell, parked)


async def _move(node: Node, cell: AtomCell, peer: Peer, deadline: float) -> None:
    """Steps 3-5, in the atom's own task at a turn boundary."""
    if cell.children:
        raise MigrationError(
            f"{cell.label()} has child atoms; stop them (or migrate a childless atom)"
        )
    # Busy like a turn: no ask may run inline on the source from here on.
    cell.busy = True
    transit = _Transit()
    release(cell, leaving=True)
    taken = cell.move_away(transit)
    tokens: list[int] = []
    try:
        state: Any
        if cell.runtime is not None:
            guest = cell.instance
            # The guest's snapshot export, plus the host's side of its timers:
            # the guest holds them by number, the handles re-arm on the target.
            state = (await guest.snapshot(), *guest.timer_table())
        else:
            state = {k: v for k, v in vars(cell.instance).items() if k != "_radon_ctx"}
        msgs: list[tuple[str, tuple[Any, ...], dict[str, Any], Any, bool]] = []
        fired: list[TimerHandle] = []
        for is_stashed, queue in ((True, taken.stashed), (False, taken.user)):
            for spec, args, kwargs, reply in queue:
                if type(reply) is TimerHandle:
                    # A timer's message: it moves too, still cancellable by its handle.
                    if reply.task is not None:
                        fired.append(reply)
                        msgs.append((spec.name, args, kwargs, ("timer", reply.key()), is_stashed))
                    continue
                token = _token(node, peer, reply)
                if token == -1:
                    continue
                if token is not None:
                    tokens.append(token)
                msgs.append((spec.name, args, kwargs, token, is_stashed))
        # The pending timers, with the time each has left (they keep running here
        # until step 5; one that fires meanwhile is dropped here, not there).
        timers = snapshot_timers(cell, fired)
        blob = pickle.dumps((state, msgs, timers), PICKLE_PROTOCOL)
        cls_blob, ctor, sandbox = await _code.activation(node, peer, cell)
        budget = _budget(deadline)
        if budget is not None and budget <= 0:
            raise trio.TooSlowError
        frame = Activate(
            "activate",
            0,
            cell.id,
            cell.name,
            cls_blob,
            ctor,
            blob,
            cell.capacity,
            cell.restarts,
            sandbox,
            budget,
            cell.on_demand_key,
        )
        await node.request(peer, frame)
    except BaseException:
        for token in tokens:
            node.pending.pop(token, None)
        transit.stay(cell, taken)
        raise
    # Step 5: from here on nothing awaits, so no message can slip in between.
    fail_moves(taken.control, MigrationError(f"{cell.label()} moved to {peer.label} meanwhile"))
    cell.cancel_timers()
    cell.instance = None
    cell.state = _STOPPED
    cell.busy = False
    is_origin = _origin(cell.id) == node.node_id
    next_hop = peer.node_id if is_origin else _origin(cell.id)
    cell.system.remove_top(cell)
    parent = cell.parent
    if parent is not None and parent.children.get(cell.id) is cell:
        del parent.children[cell.id]
    if is_origin:
        node.forwarders[cell.id] = cell
    else:
        unregister(cell)
    transit.moved(cell, RemoteEndpoint(node, next_hop, cell.id, cell.name))
    cell.log.info("atom.migrated", to=peer.name)


def _token(node: Node, peer: Peer, reply: Any) -> int | None:
    """A reply id for a transferred ask; None for a tell; -1 to drop (timer, withdrawn)."""
    if reply is None:
        return None
    if reply.task is not None and type(reply) is not TimerHandle:
        return node.register(peer, reply)
    return -1


# ----------------------------------------------------------------------
# request handlers
# ----------------------------------------------------------------------
async def serve_migrate(node: Node, peer: Peer, frame: Migrate) -> None:
    await coordinate(node, frame.atom_id, frame.to_id, _deadline(frame.budget))


async def serve_emigrate(node: Node, peer: Peer, frame: Emigrate) -> None:
    cell = lookup(frame.atom_id)
    if cell is None or cell.away is not None:
        raise MigrationError(f"atom {frame.atom_id} is not on host {node.name!r}")
    await emigrate(node, cell, frame.to_id, _deadline(frame.budget))


async def serve_activate(node: Node, peer: Peer, frame: Activate) -> None:
    """Run an atom here, placed or migrated (see the module docs, step 4).

    A migration's ``budget`` bounds the preparation (the class, the state, the
    messages, a sandboxed atom's component): an atom that is not ready in time
    is not started at all (``TooSlowError``), so its holder keeps it. Starting
    it is never interrupted: an atom that started here must be answered for.
    """
    deadline = _deadline(frame.budget)
    ready: tuple[AtomCell, Any, AtomCell | None] | None = None
    with trio.move_on_at(deadline):
        ready = await _prepare(node, peer, frame)
        await trio.lowlevel.checkpoint()  # a deadline passed in a long unpickling shows here
    if ready is None or trio.current_time() >= deadline:
        raise trio.TooSlowError(f"atom {frame.atom_id} could not be made ready in time")
    cell, timers, existing = ready
    system = node.system
    await system.start_task(cell.run)
    start_timers(cell, timers)
    system.add_top(cell)
    if existing is not None:
        # Coming home: the paused forwarder hands over to it when the
        # coordinator resumes (so what it queued runs first), and stops with it.
        fwd = forward_of(existing)
        fwd.arrived = cell
        node.forwarders.pop(cell.id, None)
        cell.add_stop_callback(lambda c, reason: fwd.lost(existing, reason))
    else:
        register(cell)
        cell.add_stop_callback(_tell_origin(node, cell.id))


async def _prepare(
    node: Node, peer: Peer, frame: Activate
) -> tuple[AtomCell, Any, AtomCell | None]:
    """The cell of an atom about to run here, its timers, and its forwarder here
    (when it comes home)."""
    _, _, atom_id, name, cls_blob, ctor, blob, capacity, restarts, sandbox, _, key = frame
    home = _origin(atom_id) == node.node_id
    existing = lookup(atom_id) if home else None
    if home and (existing is None or existing.away is None):
        raise MigrationError(f"atom {atom_id} is already running on host {node.name!r}")
    # Back home, keep the original class object (one shipped by value would be a copy).
    cls, args, kwargs = await _code.activated(
        existing.cls if existing is not None else None, cls_blob, ctor, sandbox
    )
    with restoring_timers() as handles:  # the timer handles in the state
        state, msgs, *more = loads(blob)
    cell = AtomCell(node.system, cls, args, kwargs, atom_id, name, None, capacity)
    cell.restarts = restarts
    cell.on_demand_key = key
    runtime = None
    if sandbox is not None:
        runtime = await _code.runtime_from(cls, sandbox)
        cell.table = runtime.table
    if not home:
        # Its supervisor is at its origin: failures here are reported there.
        supervise_from_origin(node, cell)
    timers = rearm_timers(cell, handles, more[0] if more else ())
    for hname, a, k, token, is_stashed in msgs:
        spec = cell.table[hname]
        if isinstance(token, tuple):  # ("timer", key): a timer's message
            reply: Any = handles[token[1]]
        else:
            reply = None if token is None else CallbackReply(Answer(node, peer, token))
        if is_stashed:
            cell.opened().restash((spec, a, k, reply))
        else:
            cell.opened().user_lane().append((spec, a, k, reply))
    cell.runtime = _Restoring(runtime, state, cell.table)
    return cell, timers, existing


def _tell_origin(node: Node, atom_id: str) -> Callable[[AtomCell, BaseException | None], None]:
    """An ``on_stopped`` callback: tell the atom's origin that it stopped here."""

    def stopped(cell: AtomCell, reason: BaseException | None) -> None:
        peer = node.peers.get(_origin(atom_id))
        if peer is not None and peer.down is None:
            why = None if reason is None else repr(reason)
            peer.send(Stopped("atom_stopped", atom_id, why))

    return stopped
