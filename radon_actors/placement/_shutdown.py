"""Closing a node: what it started elsewhere stops with it.

Atoms placed on a host stop with their supervisor, which runs here; but an atom
that migrated away left only a forwarder here, outside the supervision tree, so
it is stopped on its host explicitly (a ``radon host`` joined with
``connect_host`` outlives this system). Worker hosts this node started are told
to shut down, and killed if they have not exited within a few seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from .._logs import get_logger
from ._endpoints import Forward, RemoteEndpoint
from ._frames import Shutdown, StopAtom
from ._routing import forget_node

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = ["close"]

_log = get_logger("radon_actors.placement")

STOP_TIMEOUT = 5.0
EXIT_TIMEOUT = 5.0


async def close(node: Node) -> None:
    """``Node.aclose``: see the module docs."""
    node.closing = True
    await _stop_emigrants(node)
    for peer in node.peers.values():
        if peer.down is None and peer.node_id in node.processes:
            peer.send(Shutdown("shutdown"))
    for proc in node.processes.values():
        with trio.move_on_after(EXIT_TIMEOUT):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    forget_node(node)


async def _stop_emigrants(node: Node) -> None:
    """Stop this node's atoms that migrated to hosts that outlive it."""
    targets: list[tuple[Peer, str]] = []
    for cell in list(node.forwarders.values()):
        fwd = cell.away
        target = fwd.target if isinstance(fwd, Forward) else None
        if isinstance(target, RemoteEndpoint) and target.peer_id not in node.processes:
            peer = node.peers.get(target.peer_id)
            if peer is not None and peer.down is None:
                targets.append((peer, cell.id))
    if not targets:
        return

    async def stop(peer: Peer, atom_id: str) -> None:
        try:
            await node.request(peer, StopAtom("stop_atom", 0, atom_id))
        except Exception as exc:  # the host went away: so did the atom
            _log.info("placement.stop_failed", atom_id=atom_id, error=repr(exc))

    with trio.move_on_after(STOP_TIMEOUT):
        async with trio.open_nursery() as nursery:
            for peer, atom_id in targets:
                nursery.start_soon(stop, peer, atom_id)
