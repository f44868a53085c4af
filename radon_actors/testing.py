"""Hooks for tests: of radon-actors itself, and of applications built on it.

Tests sometimes need what users never touch: the cell behind a Ref (to wait for
its stop, read its restart count or its mailbox), or the system's placement node
(to watch its peers, kill a worker host, count pending requests). These
functions are the supported way to reach them, so tests do not depend on how a
``System`` stores its extensions. What they return is internal: its attributes
may change between versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .runtime import AtomCell, System, lookup

if TYPE_CHECKING:
    from ._ref import Ref
    from .placement._node import Node

__all__ = ["cell_of", "node_of"]


def cell_of(ref: Ref[Any]) -> AtomCell:
    """The cell behind ``ref`` in this process; ``LookupError`` if there is none."""
    cell = lookup(ref.id)
    if cell is None:
        raise LookupError(f"{ref!r} has no cell in this process (stopped, or elsewhere)")
    return cell


def node_of(system: System) -> Node:
    """``system``'s placement node (made now if the system has none yet)."""
    from .placement._node import Node

    node = system.placement
    if not isinstance(node, Node):
        raise TypeError(f"the system's placement extension is {node!r}, not a Node")
    return node
