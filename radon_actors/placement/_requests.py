"""The requests every host answers about itself: its load, and stopping an atom.

(The other requests belong to what they serve: ``_migration``, ``_supervision``
and ``_code``. Every one is listed in the dispatch table, ``_dispatch``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..runtime import lookup
from ._frames import Load, StopAtom

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = ["load", "stop_atom"]


async def load(node: Node, peer: Peer, frame: Load) -> int:
    """How many top-level atoms run here (``HostInfo.load``)."""
    return node.system.load()


async def stop_atom(node: Node, peer: Peer, frame: StopAtom) -> None:
    """Stop an atom that runs here (or whose origin this is); answers once it has."""
    cell = lookup(frame.atom_id)
    if cell is not None:
        cell.request_stop()
        await cell.stopped.wait()
