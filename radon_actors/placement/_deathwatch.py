"""Death watch across hosts (``Atom.watch`` of an atom whose origin is elsewhere).

An atom's origin is its directory: it sees every incarnation of the atom, here
or on any host, restarted or lost. So a watch of an atom of another origin goes
to that origin as one ``watch`` frame per (watching host, atom), however many
atoms here watch it, and the origin answers with a ``down`` frame per crash and
one when the atom stops. The origin host going down counts as the atom stopping.

Both tables shrink by themselves: an atom's entry goes when it stops (or its
origin is lost), and the origin forgets a watching host when that host goes
down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._ref import Ref
from ..runtime import AtomCell, Down, deliver_down, lookup
from ._errors import HostDown
from ._frames import Down as DownFrame
from ._frames import Watch

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = ["RemoteWatches"]


class RemoteWatches:
    """One node's side of death watch across hosts; see the module docs."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # Watching side: atom id -> its Ref and {watcher cell: handler}.
        self.watching: dict[str, tuple[Ref[Any], dict[AtomCell, Any]]] = {}
        # Origin side: the (peer id, atom id) pairs whose watchers this node notifies.
        self.watched: set[tuple[str, str]] = set()
        # Called with an atom id when its origin says it stopped (``Node.rerouted``).
        self.on_stopped: list[Callable[[str], None]] = []

    def watch(self, watcher: AtomCell, ref: Ref[Any], spec: Any) -> bool:
        """Watch an atom whose origin is another host; False if it is not one."""
        node = self.node
        origin = ref.id.rpartition(".")[0]
        peer = node.peers.get(origin)
        if origin == node.node_id or peer is None:
            return False
        if peer.down is not None:
            reason = HostDown(f"host {peer.label}, the origin of {ref!r}, is down ({peer.down})")
            deliver_down(watcher, spec, Down(ref, reason, stopped=True))
            return True
        entry = self.watching.get(ref.id)
        if entry is None:
            entry = self.watching[ref.id] = (ref, {})
            peer.send(Watch("watch", ref.id))
        entry[1][watcher] = spec
        return True

    def follow(self, peer: Peer, atom_id: str) -> None:
        """Ask ``peer``, the origin of ``atom_id``, to say when it stops (a
        ``down``), for this node's own tables rather than for an atom."""
        if atom_id not in self.watching:
            peer.send(Watch("watch", atom_id))

    def unwatch(self, watcher: AtomCell, ref: Ref[Any]) -> None:
        entry = self.watching.get(ref.id)
        if entry is not None:
            entry[1].pop(watcher, None)
            if not entry[1]:
                del self.watching[ref.id]  # the origin's downs now find nobody

    def notify(self, atom_id: str, reason: BaseException | None, stopped: bool) -> None:
        """A ``down`` from the atom's origin (or the origin lost): tell the watchers."""
        if stopped:
            for callback in self.on_stopped:
                callback(atom_id)
        entry = self.watching.pop(atom_id, None) if stopped else None
        if entry is None:
            entry = self.watching.get(atom_id)
        if entry is None:
            return
        ref, watchers = entry
        for watcher, spec in list(watchers.items()):
            deliver_down(watcher, spec, Down(ref, reason, stopped=stopped))

    def watched_from(self, peer: Peer, atom_id: str) -> None:
        """A ``watch`` frame: notify ``peer`` of this atom's crashes and stop."""
        key = (peer.node_id, atom_id)
        if key in self.watched:
            return
        cell = lookup(atom_id)
        if cell is None or cell.stopped.is_set():
            reason = f"atom {atom_id} was not running when watched"
            peer.send(DownFrame("down", atom_id, reason, True))
            return
        watched = self.watched
        watched.add(key)

        def crashed(c: AtomCell, exc: BaseException) -> None:
            if key in watched and peer.down is None:
                peer.send(DownFrame("down", atom_id, repr(exc), False))

        def stopped(c: AtomCell, reason: BaseException | None) -> None:
            if key in watched and peer.down is None:
                watched.discard(key)
                peer.send(
                    DownFrame("down", atom_id, None if reason is None else repr(reason), True)
                )

        cell.add_stop_callback(stopped)
        if cell.on_crashed is None:
            cell.on_crashed = []
        cell.on_crashed.append(crashed)

    def peer_down(self, peer: Peer, reason: str) -> None:
        """Forget what ``peer`` watched here; its atoms count as stopped for ours."""
        self.watched.difference_update([key for key in self.watched if key[0] == peer.node_id])
        lost = HostDown(f"host {peer.label} (the origin of the atom) went down ({reason})")
        for atom_id in [a for a in self.watching if a.rpartition(".")[0] == peer.node_id]:
            self.notify(atom_id, lost, stopped=True)
