"""Where a Ref unpickled in this process sends its messages.

The runtime resolves an unpickled Ref's atom id through its directory; an atom
with no cell here goes to placement's remote resolver, :func:`route`, which the
first node installs. The id's prefix names the atom's origin (the node that
spawned it, its directory). A Ref may also carry a location hint (``via``): the
host it was pickled on runs the atom, so messages can go there directly.

These tables are process-wide, not per node, because unpickling is: a Ref is
rebuilt by ``pickle`` with no node at hand, so the resolver finds the node that
serves an origin through :data:`routes`. It holds an entry per node of this
process and per peer node it knows, and a node's entries go when it closes.
:data:`hints` (the last host a Ref said an atom runs on) is bounded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _ref
from ._endpoints import RemoteEndpoint

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["MAX_HINTS", "forget_node", "hints", "route", "routes"]

# Node id (an atom-id prefix) -> the node of this process that reaches it.
routes: dict[str, Node] = {}
# Atom id -> the host a Ref last said it runs on: a Ref that arrives without a
# hint (from a sandboxed guest, which names atoms by id only) goes there too. A
# stale entry costs a hop, never a message (``_delivery``); bounded.
hints: dict[str, str] = {}
MAX_HINTS = 1 << 16


def route(atom_id: str, name: str | None, via: str | None = None) -> _ref.Endpoint | None:
    """The runtime's remote resolver: where an unpickled Ref whose atom has no cell
    here goes. Its host when the Ref names one (``via``, or the last one seen here)
    that is up, else its origin, which always knows where the atom is."""
    prefix = atom_id.rpartition(".")[0]
    node = routes.get(prefix)
    if node is not None and node.node_id != prefix:
        if via is None:
            via = hints.get(atom_id)
        elif hints.get(atom_id) != via:
            if len(hints) >= MAX_HINTS:
                hints.clear()
            hints[atom_id] = via
        if via is not None and via != node.node_id:
            peer = node.peers.get(via)
            if peer is not None and peer.down is None:
                return RemoteEndpoint(node, via, atom_id, name)
        return RemoteEndpoint(node, prefix, atom_id, name)
    # One of this process's own atoms that is not in the directory has stopped.
    return None


def forget_node(node: Node) -> None:
    """Drop ``node``'s routes (it closed)."""
    if routes.get(node.node_id) is node:
        del routes[node.node_id]
        hints.clear()
    for node_id in [n for n, owner in routes.items() if owner is node]:
        del routes[node_id]
