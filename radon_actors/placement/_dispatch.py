"""The one dispatch table: every frame kind, and what a node does with it.

:func:`frame_table` builds it, for one node, in this one place: the reader of
each connection (``_transport.read_frames``) looks a decoded frame's kind up in
it and calls the handler with the peer and the frame. A handler runs
synchronously in the reader, so frames are handled in their order, and never
waits (a message for a full atom is held for it: ``_flow``).

``tell``, ``ask`` and ``reply`` are typed tuples and go to their handlers as
decoded; every other kind is made its class first (``_frames``). Requests run
in a task of their own, and their outcome goes back to the peer as a ``reply``
with the request's id. Their handlers live with what they serve (migration,
supervision, code shipping) and are only named here, so nothing registers
itself on import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import outcome

from .._logs import get_logger
from ..runtime import lookup
from . import _code, _migration, _requests, _supervision
from ._delivery import deliver, deliver_pickled
from ._endpoints import (
    Answer,
    CallbackReply,
    Forward,
    RemoteError,
    dump_outcome,
    load_outcome,
)
from ._errors import ProtocolError
from ._flow import grant
from ._frames import (
    Activate,
    Ask,
    Cancel,
    ChildFailed,
    CodeDone,
    CodeHas,
    CodePart,
    Credit,
    Down,
    Emigrate,
    Frame,
    Load,
    Migrate,
    Peers,
    Reply,
    Request,
    Retire,
    Shutdown,
    StopAtom,
    Stopped,
    Tell,
    Undecodable,
    Watch,
)
from ._transport import FrameHandler, FrameTable

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = ["frame_table"]

_log = get_logger("radon_actors.placement")

RequestHandler = Callable[["Node", "Peer", Any], Awaitable[Any]]
_new = tuple.__new__


def frame_table(node: Node) -> FrameTable:
    """What ``node`` does with each kind of frame."""
    rerouted = node.rerouted
    forwarders = node.forwarders

    def tell(peer: Peer, frame: Tell) -> None:
        _, atom_id, h, args, kwargs = frame
        cell = lookup(atom_id)
        if (
            cell is not None
            and not peer.inflows
            and not (rerouted and atom_id in rerouted)
            and cell.queue_now(h, args, kwargs, None)
        ):
            # The fast path: a live atom here with room in its mailbox.
            due = peer.due
            due[atom_id] += 1
            return
        deliver(node, atom_id, h, args, kwargs, None, peer)

    def ask(peer: Peer, frame: Ask) -> None:
        _, req, atom_id, h, blob = frame
        reply = CallbackReply(Answer(node, peer, req))
        node.inbound[(peer.node_id, req)] = reply
        deliver_pickled(node, atom_id, h, blob, reply, peer)

    def reply(peer: Peer, frame: Reply) -> None:
        _, req, blob = frame
        entry = node.pending.pop(req, None)
        if entry is not None:
            entry[1].deliver(load_outcome(blob))

    def credit(peer: Peer, frame: Credit) -> None:
        grant(peer, frame.grants)

    def cancel(peer: Peer, frame: Cancel) -> None:
        # The asker gave up: withdraw the ask if its turn has not begun.
        withdrawn = node.inbound.pop((peer.node_id, frame.req), None)
        if withdrawn is not None:
            withdrawn.task = None

    def atom_stopped(peer: Peer, frame: Stopped) -> None:
        # An atom of ours stopped on the host it had migrated to.
        cell = forwarders.get(frame.atom_id)
        if cell is None:
            return
        fwd = cell.away
        if isinstance(fwd, Forward) and getattr(fwd.target, "peer_id", None) == peer.node_id:
            del forwarders[frame.atom_id]
            fwd.lost(cell, None if frame.reason is None else RemoteError(frame.reason))

    def watch(peer: Peer, frame: Watch) -> None:
        node.watches.watched_from(peer, frame.atom_id)

    def down(peer: Peer, frame: Down) -> None:
        reason = None if frame.reason is None else RemoteError(frame.reason)
        node.watches.notify(frame.atom_id, reason, frame.stopped)

    def peers(peer: Peer, frame: Peers) -> None:
        for node_id, name, address, tls in frame.table:
            if node_id != node.node_id:
                node.add_peer(node_id, name, address, tls=tls is True)

    def shutdown(peer: Peer, frame: Shutdown) -> None:
        # Only a worker host obeys: its parent started it and tells it to stop.
        # A `radon host` outlives the systems that join it, so no peer may stop it.
        if not node.obeys_shutdown:
            _log.warning("placement.shutdown_refused", host=peer.name)
            return
        node.closing = True
        node.shutdown_requested.set()

    def undecodable(peer: Peer, frame: Undecodable) -> None:
        _log.warning("dead_letter", host=peer.name, reason=f"undecodable message: {frame.error}")

    def unknown(peer: Peer, frame: tuple[Any, ...]) -> None:
        kind = frame[0]
        _log.warning("placement.unknown_frame", kind=kind, host=peer.name)
        req = frame[1] if len(frame) > 1 else None
        if type(req) is int and peer.down is None:  # a request: refuse it, not silence
            error = ProtocolError(
                f"host {node.name!r} does not know the request {kind!r}; run the same "
                "radon-actors version on every host"
            )
            peer.send(("reply", req, dump_outcome(outcome.Error(error), node.label)), urgent=True)

    def ignore(peer: Peer, frame: tuple[Any, ...]) -> None:
        return None

    def typed(cls: type[Frame], handler: Callable[[Peer, Any], None]) -> FrameHandler:
        def convert(peer: Peer, frame: tuple[Any, ...]) -> None:
            handler(peer, _shaped(cls, frame))

        return convert

    def request(cls: type[Request], handler: RequestHandler) -> FrameHandler:
        def start(peer: Peer, frame: tuple[Any, ...]) -> None:
            # Checked here, in the reader (a malformed frame ends the connection),
            # not in the request's task, where the error would end the host.
            node.nursery.start_soon(_serve, node, peer, _shaped(cls, frame), handler)

        return start

    return FrameTable(
        unknown,
        {
            # the per-message frames, as decoded (typed tuples)
            "tell": tell,
            "ask": ask,
            "reply": reply,
            # one-way frames
            "hello": ignore,
            "ping": ignore,
            "credit": typed(Credit, credit),
            "cancel": typed(Cancel, cancel),
            "peers": typed(Peers, peers),
            "watch": typed(Watch, watch),
            "down": typed(Down, down),
            "atom_stopped": typed(Stopped, atom_stopped),
            "shutdown": typed(Shutdown, shutdown),
            "undecodable": typed(Undecodable, undecodable),
            # requests
            "load": request(Load, _requests.load),
            "stop_atom": request(StopAtom, _requests.stop_atom),
            "migrate": request(Migrate, _migration.serve_migrate),
            "emigrate": request(Emigrate, _migration.serve_emigrate),
            "activate": request(Activate, _migration.serve_activate),
            "code_has": request(CodeHas, _code.serve_code_has),
            "code_part": request(CodePart, _code.serve_code_part),
            "code_done": request(CodeDone, _code.serve_code_done),
            "child_failed": request(ChildFailed, _supervision.serve_child_failed),
            "retire": request(Retire, _supervision.serve_retire),
        },
    )


def _shaped(cls: Any, frame: tuple[Any, ...]) -> Any:
    """``frame`` as a ``cls`` (a NamedTuple of frame fields), if it has as many
    fields; else :class:`ProtocolError`."""
    if len(frame) != len(cls._fields):
        raise ProtocolError(f"a {frame[0]!r} frame has {len(frame)} fields, not {len(cls._fields)}")
    return _new(cls, frame)


async def _serve(node: Node, peer: Peer, frame: Request, handler: RequestHandler) -> None:
    result = await outcome.acapture(handler, node, peer, frame)
    if peer.down is None:
        peer.send(("reply", frame.req, dump_outcome(result, node.label)), urgent=True)
