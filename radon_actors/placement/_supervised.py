"""Atoms placed on other hosts, supervised from the process that spawned them.

``system.spawn(Cls, ..., host="w1")`` (and a :class:`ChildSpec` with ``host=``)
creates the atom's cell *here*, in its origin, under its supervisor like any
child, then starts the atom on the host (an ``activate`` request without a
snapshot: ``__init__`` and ``on_start`` run there) and moves the cell's
messages away to it through a :class:`Forward`, exactly as if the atom had been
spawned here and migrated. The cell is the atom's directory entry: every Ref to the
atom reaches it through the cell.

When the host goes down (or the atom stops there), the forwarder pauses (what
arrives is held) and hands itself to its supervisor as a failed child, in a task
of its own (see ``Forward.lost``). The supervisor applies its usual
rules (restart type, directives, restart intensity); a restart calls
:func:`restart_elsewhere`, which starts a fresh instance from the spawn
arguments on a live host (the one it was placed on if it is still up, else the
first other live host, else this process; the supervisor's next attempt after
a failed start skips the hosts where it failed) and resumes the forwarder into it, so
the same Ref and the held messages reach the new incarnation.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from .._errors import SpawnError
from ..runtime import AtomCell, CellState, register
from ._code import activation
from ._endpoints import Forward, RemoteEndpoint, forward_of, post
from ._flow import release
from ._frames import Activate
from ._wire import PICKLE_PROTOCOL

if TYPE_CHECKING:
    from ._node import Node
    from ._transport import Peer

__all__ = ["choose_host", "restart_elsewhere", "start_remote"]

_RUNNING, _STOPPED = CellState.RUNNING, CellState.STOPPED
_FRESH = pickle.dumps((None, []), PICKLE_PROTOCOL)  # an activate with no snapshot


async def choose_host(node: Node, host: Any, cls: type[Any]) -> str | None:
    """The host name ``host`` (a name or a placement policy) stands for; None for this process."""
    if not isinstance(host, str):
        host = await host.choose(node.hosts(), cls)
    if host in (node.name, node.node_id):
        return None
    node.peer_by_name(host)  # NoSuchHost for an unknown name
    return str(host)


async def _activate(node: Node, cell: AtomCell, host: str) -> Peer:
    peer = node.peer_by_name(host)
    node.live_peer(peer.node_id, cell.id)
    cls_blob, ctor, sandbox = await activation(node, peer, cell)
    capacity = cell.capacity
    frame = Activate(
        "activate",
        0,
        cell.id,
        cell.name,
        cls_blob,
        ctor,
        _FRESH,
        capacity,
        cell.restarts,
        sandbox,
        None,
        cell.on_demand_key,
    )
    await node.request(peer, frame)
    return peer


async def start_remote(node: Node, cell: AtomCell, host: str) -> None:
    """Start the atom of ``cell`` (just registered here) on ``host``; see the module docs."""
    try:
        peer = await _activate(node, cell, host)
    except BaseException as exc:
        cell.state = _STOPPED
        cell.opened().close()
        cell.forget()
        cell.stopped.set()
        if isinstance(exc, Exception) and not isinstance(exc, SpawnError):
            raise SpawnError(f"{cell.label()} failed to start on host {host!r}: {exc!r}") from exc
        raise
    node.homes[cell.id] = host
    # Nothing is queued, unless a Ref was looked up meanwhile.
    early = cell.move_away(Forward(RemoteEndpoint(node, peer.node_id, cell.id, cell.name)))
    cell.state = _RUNNING
    node.forwarders[cell.id] = cell
    for spec, args, kwargs, reply in early.messages():
        post(cell, spec.name, args, kwargs, reply)
    cell.log.debug("atom.placed", host=host)


def _reinstate(cell: AtomCell) -> None:
    """The restarted cell is the atom's directory entry (and its name's) again: a
    migration that brought the atom home ran it in another cell object, which
    moved away and died with its host (its stop handed the loss to this one)."""
    register(cell)
    if cell.name is not None:
        cell.system.claim_name(cell)


def _live_hosts(node: Node) -> list[str]:
    return [h.name for h in node.hosts()]


async def restart_elsewhere(node: Node, cell: AtomCell) -> None:
    """A supervisor's restart of a forwarder whose atom was lost: a fresh instance
    on a live host (see the module docs), then the held messages go to it."""
    held = node.held
    fwd = held[cell.id]
    assert fwd is forward_of(cell)
    preferred = node.homes.get(cell.id)
    remote = _live_hosts(node)[1:]
    # Hosts where starting it again failed, during this recovery.
    tried = node.tried.setdefault(cell.id, set())
    order = ([preferred] if preferred in remote else []) + [h for h in remote if h != preferred]
    host = next((h for h in order if h not in tried), None)
    if host is not None:
        try:
            peer = await _activate(node, cell, host)
        except BaseException:
            tried.add(host)  # the supervisor's next attempt tries the next host
            raise
        del node.tried[cell.id]
        fwd.target = RemoteEndpoint(node, peer.node_id, cell.id, cell.name)
        node.homes[cell.id] = host
        node.forwarders[cell.id] = cell
        del held[cell.id]
        _reinstate(cell)
        fwd.resume()
        cell.log.info("atom.restarted_elsewhere", host=host, restarts=cell.restarts)
        return
    # No other host is up: the atom comes back into this process (``carry_on``
    # runs its turns once the supervisor resumes it). What was held goes into
    # its mailbox first, so what is sent while it starts queues behind.
    node.forwarders.pop(cell.id, None)
    held_messages = fwd.paused or ()
    fwd.paused = None
    fwd.target = cell
    cell.come_back(later=held_messages)
    try:
        await cell.start_incarnation()
    except BaseException:
        back = cell.move_away(fwd).messages()
        fwd.pause()
        assert fwd.paused is not None
        fwd.paused.extend((spec.name, args, kwargs, reply) for spec, args, kwargs, reply in back)
        release(cell)
        raise
    fwd.wake_senders()
    del held[cell.id]
    node.tried.pop(cell.id, None)
    _reinstate(cell)
    cell.log.info("atom.restarted_elsewhere", host=node.name, restarts=cell.restarts)
