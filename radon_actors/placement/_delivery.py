"""Delivering the messages that arrive from other hosts.

A ``tell`` or ``ask`` frame names its atom by id. The atom may be here (then its
message is queued, or an ask of a handler that cannot suspend runs inline, as a
local ask would), may have moved on (its forwarder here, or its origin, knows
where), or may be gone.

Everything here runs in the connection's reader, synchronously, so the frames of
one connection are delivered in their order. A message the atom cannot take
now (a full mailbox) is held, with everything after it from the same peer for
the same atom, and delivered by a task as room appears (``_flow``): the reader
never waits, so one slow atom holds up no other.

**Per-sender FIFO under migration.** A Ref may say which host runs its atom (a
location hint), so a sender's messages go there directly. If the atom is no
longer there, this host sends the message on to the atom's origin, which knows
where it went. From then on this host sends every hinted message for that atom
through the origin (``Node.rerouted``), even once the atom is back here:
otherwise a later message could overtake one still travelling through the
origin. An entry is dropped once nothing can be travelling any more: the origin
says the atom stopped (a ``down`` frame: this host asked it with a ``watch``) or
the origin is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome
import trio

from .._logs import get_logger
from ..runtime import AtomCell, lookup, resolve
from ._endpoints import RemoteEndpoint, RemoteError, post
from ._flow import accepts, hold
from ._wire import loads

if TYPE_CHECKING:
    from ..mailbox import Mailbox
    from ._node import Node
    from ._transport import Peer

__all__ = ["deliver", "deliver_pickled", "deliver_now", "wait_for_room", "route"]

_log = get_logger("radon_actors.placement")


def deliver_pickled(node: Node, atom_id: str, h: str, blob: bytes, reply: Any, src: Peer) -> None:
    """An ask's message, its arguments still pickled (see ``_wire``)."""
    try:
        args, kwargs = loads(blob)
    except Exception as exc:
        error = RemoteError(
            f"the arguments of {h!r} for atom {atom_id} cannot be unpickled on host "
            f"{node.name!r}: {exc!r} (is the class importable there?)"
        )
        if reply is not None:
            reply.deliver(outcome.Error(error))
        else:
            _log.warning("dead_letter", atom_id=atom_id, handler=h, reason=str(error))
        return
    deliver(node, atom_id, h, args, kwargs, reply, src)


def route(node: Node, atom_id: str, src: Peer) -> Any:
    """Where a message from ``src`` for ``atom_id`` goes: its cell here, or on
    (see the module docs)."""
    ep: Any = lookup(atom_id)
    rerouted = node.rerouted
    if ep is None or (rerouted and atom_id in rerouted):
        origin = atom_id.rpartition(".")[0]
        peer = node.peers.get(origin)
        if origin != src.node_id and peer is not None:
            # Sent here on a Ref's location hint, but the atom is not here: its
            # origin knows where it is, and gets this atom's hinted messages from
            # now on (see the module docs).
            if atom_id not in rerouted and peer.down is None:
                rerouted.add(atom_id)
                node.watches.follow(peer, atom_id)
            ep = RemoteEndpoint(node, origin, atom_id, None)
        elif ep is None:
            ep = resolve(atom_id, None)
    return ep


def deliver(
    node: Node,
    atom_id: str,
    h: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    reply: Any,
    src: Peer,
) -> None:
    """Deliver a message from ``src`` for ``atom_id``, here or on (see the module
    docs), or hold it until the atom can take it (``_flow``)."""
    inflows = src.inflows
    if (inflows and atom_id in inflows) or not deliver_now(
        node, src, atom_id, h, args, kwargs, reply
    ):
        hold(node, src, atom_id, h, args, kwargs, reply)
    elif reply is None:
        due = src.due
        due[atom_id] += 1


def deliver_now(
    node: Node,
    src: Peer,
    atom_id: str,
    h: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    reply: Any,
) -> bool:
    """Deliver the message if its atom can take it without anyone waiting;
    False (nothing done) if it must be held."""
    ep = route(node, atom_id, src)
    if reply is not None:
        if isinstance(ep, AtomCell):
            if ep.away is None and ep.answer_now(h, args, kwargs, reply):
                return True
        else:
            # An endpoint in front of a cell (an on-demand atom's) may answer
            # inline too.
            answer = getattr(ep, "answer_now", None)
            if answer is not None and answer(h, args, kwargs, reply):
                return True
    if not accepts(ep, reply):
        return False
    post(ep, h, args, kwargs, reply)
    return True


async def wait_for_room(node: Node, src: Peer, atom_id: str) -> Mailbox | None:
    """Wait until a message from ``src`` for ``atom_id`` may be taken (room in a
    full mailbox here, credit from the next hop); the caller tries again.

    Returns the mailbox whose room it waited for, if any: the caller then holds
    that mailbox's wake-up, and must pass it on (``Mailbox.room_made``) should
    it not fill the room itself (see ``_flow._drain``)."""
    ep = route(node, atom_id, src)
    if isinstance(ep, AtomCell):
        if ep.away is None:
            mailbox = ep.opened()
            await mailbox.wait_for_room()
            return mailbox
        ep = getattr(ep.away, "target", None)
    wait_room = getattr(ep, "wait_room", None)
    if wait_room is None:
        await trio.lowlevel.checkpoint()
        return None
    await wait_room()
    return None
