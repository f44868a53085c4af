"""Credit-based flow control of tells between hosts, per atom.

A local ``tell`` raises :class:`~radon_actors.MailboxFull` when the atom's
mailbox is full and ``send`` waits for room; this module makes the same hold
for an atom on another host, without one slow atom holding up the others that
share the connection.

**The sender** (:class:`Flow`, one per peer and atom it tells): every ``tell``
frame spends one unit of credit, and the receiving host gives it back
(``credit`` frames, batched) once the message is in the atom's mailbox, or on
its way on from there. With no credit left, ``tell`` raises ``MailboxFull`` and
``send`` waits for a ``credit`` frame. The window is the atom's mailbox size:
the sender knows it when the atom has a cell here (its origin, or a forwarder),
otherwise it starts from :data:`INITIAL_WINDOW` and the first ``credit`` frame
says the real one. So one host can have at most a mailbox's worth of tells in
flight to a remote atom beyond what its mailbox holds; the sender's own buffer
for the atom is bounded by the same window.

**The receiver** (:class:`Inflow`, one per peer and atom, only while needed): a
message that cannot be accepted now (the mailbox is full, the atom is moving
and its pause queue is full, or the next hop has no credit) is held in that
atom's inflow, and so is everything after it from the same peer for the same
atom (per-sender order). A task drains the inflow as room appears, waiting the
way a local sender does, and gives the credit back as it goes. The
connection's reader never waits, so messages to other atoms go on. A peer that
sends past its credit (more than twice the window it may have outstanding) is
broken or hostile: its connection is closed (:class:`ProtocolError`).

Asks spend no credit: each has a caller waiting for its reply, which bounds
them. They are held behind the tells that came before them, and a full mailbox
holds them in the inflow rather than the reader.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, cast

import outcome
import trio

from .._errors import MailboxFull
from .._logs import get_logger
from ..runtime import DEFAULT_MAILBOX_SIZE, AtomCell, lookup
from ._errors import ProtocolError
from ._frames import Credit

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ._node import Node
    from ._transport import Peer

__all__ = [
    "INITIAL_WINDOW",
    "Flow",
    "Inflow",
    "accepts",
    "credit_frames",
    "grant",
    "hold",
    "release",
    "window_of",
]

_log = get_logger("radon_actors.placement")

INITIAL_WINDOW = DEFAULT_MAILBOX_SIZE
"""The credit a sender assumes for an atom it knows nothing of, until the
receiving host's first ``credit`` frame says the atom's mailbox size."""


class Flow:
    """The sender's credit for one atom over one connection (see the module docs)."""

    __slots__ = ("out", "room", "window")

    def __init__(self, window: int) -> None:
        self.out = 0  # tells sent and not yet credited
        self.window = window
        self.room: trio.Event | None = None  # set when credit comes back

    async def wait_room(self) -> None:
        room = self.room
        if room is None:
            room = self.room = trio.Event()
        await room.wait()


def window_of(atom_id: str) -> int:
    """The window to start a flow to ``atom_id`` with: its mailbox size when it
    has a cell here, else :data:`INITIAL_WINDOW`."""
    cell = lookup(atom_id)
    return cell.capacity if cell is not None else INITIAL_WINDOW


def grant(peer: Peer, grants: list[tuple[str, int, int]]) -> None:
    """A ``credit`` frame from ``peer``: ``(atom id, tells, window)`` each."""
    flows = peer.flows
    for atom_id, n, window in grants:
        flow = flows.get(atom_id)
        if flow is None:
            continue
        flow.out -= n
        if window > 0:
            flow.window = window
        room = flow.room
        if room is not None:
            if flow.out < flow.window:
                flow.room = None
                room.set()
        elif flow.out <= 0:
            del flows[atom_id]


def credit_frames(due: dict[str, int]) -> list[Credit]:
    """The ``credit`` frames for what ``due`` owes (each atom's window with it),
    :data:`_GRANTS` atoms a frame so that each stays a small one."""
    grants = []
    for atom_id, n in due.items():
        cell = lookup(atom_id)
        grants.append((atom_id, n, cell.capacity if cell is not None else 0))
    return [Credit("credit", grants[i : i + _GRANTS]) for i in range(0, len(grants), _GRANTS)]


_GRANTS = 512


class Inflow:
    """Messages from one peer for one atom, held until it can take them."""

    __slots__ = ("limit", "queue")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queue: deque[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = deque()


def hold(
    node: Node,
    peer: Peer,
    atom_id: str,
    h: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    reply: Any,
) -> None:
    """Hold a message in ``atom_id``'s inflow from ``peer`` (made, with its drain
    task, if there is none)."""
    inflow = peer.inflows.get(atom_id)
    if inflow is None:
        inflow = peer.inflows[atom_id] = Inflow(2 * max(window_of(atom_id), INITIAL_WINDOW))
        node.nursery.start_soon(_drain, node, peer, atom_id, inflow)
    queue = inflow.queue
    if len(queue) >= inflow.limit:
        if reply is None:
            raise ProtocolError(
                f"host {peer.label} sent atom {atom_id} more than {inflow.limit} messages "
                "past its credit"
            )
        # Asks take no credit (each asker waits for its answer), but what one
        # peer may leave waiting for one atom is bounded all the same: past
        # the bound, the asker is told the mailbox is full, as a local asker
        # that cannot wait would be.
        reply.deliver(
            outcome.Error(
                MailboxFull(
                    f"atom {atom_id} has a full mailbox and {len(queue)} messages from "
                    f"this host wait for room in it; ask again later"
                )
            )
        )
        return
    queue.append((h, args, kwargs, reply))


async def _drain(node: Node, peer: Peer, atom_id: str, inflow: Inflow) -> None:
    """Deliver ``inflow`` in order as the atom can take it, waiting as a local
    sender would (never with a message in hand: :func:`release` may take them
    all at any time), and give the credit back."""
    from ._delivery import deliver_now, wait_for_room

    queue = inflow.queue
    # A full mailbox wakes one waiting sender per message its atom takes. Woken,
    # this task may not fill the room: an ask can be answered inline (an idle
    # atom, empty lanes), the atom can have moved, the queue can be gone. Then
    # the wake-up is passed on, or a local sender waiting behind this one would
    # wait by an empty mailbox for good.
    woken: Mailbox | None = None
    try:
        while queue:
            h, args, kwargs, reply = queue[0]
            delivered = (reply is not None and reply.task is None) or deliver_now(
                node, peer, atom_id, h, args, kwargs, reply
            )
            if woken is not None:
                _pass_on(woken)
                woken = None
            if delivered:
                queue.popleft()
                if reply is None and peer.down is None:
                    due = peer.due
                    due[atom_id] += 1
                    peer.kick()
            else:
                woken = await wait_for_room(node, peer, atom_id)
    finally:
        if woken is not None:
            _pass_on(woken)
        if peer.inflows.get(atom_id) is inflow:
            del peer.inflows[atom_id]
        if queue:
            # Only when the node is closing (its nursery cancelled us).
            _log.debug("placement.inflow_dropped", atom_id=atom_id, messages=len(queue))


def _pass_on(mailbox: Mailbox) -> None:
    """Wake the next sender waiting for room in ``mailbox``, if it has room (a
    spurious wake-up costs a waiter one more look)."""
    if len(mailbox.user) < mailbox.capacity:
        mailbox.room_made()


def release(cell: AtomCell, *, leaving: bool = False) -> None:
    """``cell``'s atom is moving: deliver what every peer's inflow holds for it
    now, in order. Held back, those messages would reach the atom's new place
    after later ones from the same sender that go there directly.

    ``leaving``: the atom runs here and is about to be taken out of its mailbox
    (``_migration``): the held messages join the mailbox, over its bound, and
    travel with it, ahead of whatever arrives during the move. Otherwise its
    forwarder here has just paused: they join its pause queue.
    """
    from ._delivery import deliver_now

    node = cast("Node", cell.system.placement)
    atom_id = cell.id
    for peer in list(node.peers.values()):
        inflow = peer.inflows.get(atom_id)
        if inflow is None:
            continue
        queue = inflow.queue
        if leaving:
            cell.take_over(list(queue))
            taken = sum(1 for item in queue if item[3] is None)
            queue.clear()
        else:
            taken = 0
            while queue:
                h, args, kwargs, reply = queue[0]
                if not deliver_now(node, peer, atom_id, h, args, kwargs, reply):
                    break  # pragma: no cover - a paused atom takes everything
                queue.popleft()
                taken += reply is None
        if taken and peer.down is None:
            peer.due[atom_id] += taken
            peer.kick()


def accepts(ep: Any, reply: Any) -> bool:
    """Whether ``ep`` can take a message now, without anyone waiting: False when
    a tell (or any message, for a full local mailbox) must be held."""
    if isinstance(ep, AtomCell):
        away = ep.away
        if away is None:
            mailbox = ep.mailbox
            return mailbox is None or len(mailbox.user) < mailbox.capacity or mailbox.closed
        if getattr(away, "paused", None) is not None:
            # Moving: what arrives from other hosts queues for the move, which
            # replays it in order (waiting here could let later messages from
            # the same sender overtake it at the atom's new place).
            return True
        return accepts(getattr(away, "target", None), reply)
    if reply is None:
        has_room = getattr(ep, "has_room", None)
        if has_room is not None:
            return bool(has_room())
    return True
