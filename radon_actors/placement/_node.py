"""``Node``: one process's membership in a cluster of hosts.

A node belongs to a :class:`~radon_actors.System`, which sees it as its
``Placement`` extension; its id is the system's atom-id prefix, so the id of
every atom says which node spawned it (its *origin*). The origin is the atom's
directory: a Ref unpickled anywhere routes to the origin (``_routing``), which
delivers to the atom if it is there, or forwards to wherever the atom migrated
(``_migration``).

The node holds the state of its cluster membership: its peers (``_transport``),
the requests and asks in flight both ways, the atoms of its own that run
elsewhere, and the bookkeeping of recoveries in progress. The work is done in
the modules named for it: connecting (``_handshake``), what each frame does
(``_dispatch``, the one table), delivering messages (``_delivery``), death watch
(``_deathwatch``), placing and restarting atoms (``_supervised``), supervision
across hosts (``_supervision``), migration (``_migration``), closing
(``_shutdown``).

Every table here shrinks as well as grows: entries go when their request is
answered, their atom stops or their peer goes down (see ``peer_down``).
"""

from __future__ import annotations

import itertools
import secrets
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import outcome
import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from .._logs import get_logger
from .._ref import Ref
from ..runtime import AtomCell, Reply, set_remote_resolver
from . import _handshake, _hosts, _migration, _shutdown, _supervised, _supervision
from ._deathwatch import RemoteWatches
from ._dispatch import frame_table
from ._endpoints import CallbackReply, Forward
from ._errors import HostDown, NoSuchHost
from ._frames import Peers, Request, StopAtom, with_req
from ._policy import HostInfo
from ._routing import route, routes
from ._transport import HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Peer

if TYPE_CHECKING:
    from ..runtime import System
    from ._supervision import Failing, Retirement

__all__ = ["LOCAL_NAME", "Node", "get_node", "make_node"]

_log = get_logger("radon_actors.placement")

LOCAL_NAME = "local"


class Node:
    """The placement runtime of one process; see the module docs."""

    def __init__(
        self,
        system: System,
        secret: bytes,
        *,
        name: str = LOCAL_NAME,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> None:
        self.system = system
        self.secret = secret
        self.name = name
        self.node_id: str = system.prefix
        self.nursery: trio.Nursery = system.nursery
        self.address: str | None = None
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        # Optional TLS (trio.SSLStream) around the connections this node accepts;
        # dials use TLS when given a client context. The HMAC handshake still runs
        # inside it.
        self.ssl_server: ssl.SSLContext | None = None
        # How this node checks the hosts it dials on its own (hosts it learnt of
        # from a peer, which listen with TLS): None until a connect_host with a
        # context or the host's own settings give one (see client_context).
        self.ssl_client: ssl.SSLContext | None = None
        self._default_client: ssl.SSLContext | None = None
        # Connections still in their handshake, by remote address (see _handshake).
        self.handshaking: dict[str, int] = {}
        self.refused_handshakes = 0
        self.refused_auth = 0  # handshakes that failed (see _handshake._refused)
        self.shutdown_requested = trio.Event()
        # Whether a peer's ``shutdown`` frame stops this node: only a worker
        # host's (its parent sends it); see serve_host.
        self.obeys_shutdown = False
        self.closing = False

        # The cluster: peers by node id, node ids by host name, worker processes.
        self.peers: dict[str, Peer] = {}
        self.names: dict[str, str] = {name: self.node_id}
        self.processes: dict[str, trio.Process] = {}
        # Called with (host name, reason) when a peer goes down.
        self.host_down_callbacks: list[Callable[[str, str], None]] = []

        # In flight: our requests and asks by id (until answered, withdrawn or
        # their peer is lost), and peers' asks not answered yet (so a ``cancel``
        # frame can withdraw them).
        self.pending: dict[int, tuple[Peer, Any]] = {}
        self._ids = itertools.count(1)
        self.inbound: dict[tuple[str, int], CallbackReply] = {}

        # This node's atoms that run elsewhere (it is their origin): their cells
        # by atom id (``cell.away`` is a Forward), the host each placed atom was
        # asked to run on (a restart goes back there while it is up), the paused
        # Forwards of atoms in their supervisor's hands (lost, failed, or in a
        # group restart), and the hosts a restart failed on, per atom.
        self.forwarders: dict[str, AtomCell] = {}
        self.homes: dict[str, str] = {}
        self.held: dict[str, Forward] = {}
        self.tried: dict[str, set[str]] = {}
        # One migration (or supervisor takeover) of an atom at a time; a lock
        # goes when nobody holds or waits for it.
        self._migration_locks: dict[str, trio.Lock] = {}

        # Atoms of other origins running here: failures waiting for the origin's
        # verdict, and retire requests not run yet (``_supervision``).
        self.failing: dict[AtomCell, Failing] = {}
        self.retires: dict[AtomCell, Retirement] = {}
        # Components being received, by (sender's node id, hash) (``_code``).
        self.staging: dict[tuple[str, str], bytearray] = {}

        # Atoms of other origins whose hinted messages go through their origin
        # (``_delivery``): until the origin says the atom stopped, or is lost.
        self.rerouted: set[str] = set()
        self.watches = RemoteWatches(self)
        self.watches.on_stopped.append(self.rerouted.discard)

        # Built last: the handlers keep references to the tables above.
        self.table = frame_table(self)
        routes[self.node_id] = self
        set_remote_resolver(route)

    @property
    def label(self) -> str:
        """How errors name this host (``host 'w1'``)."""
        return f"host {self.name!r}"

    # ------------------------------------------------------------------
    # peers
    # ------------------------------------------------------------------
    def live_peer(self, peer_id: str, atom_id: str = "") -> Peer:
        peer = self.peers.get(peer_id)
        if peer is None:
            raise HostDown(f"no connection to the host of atom {atom_id} (node {peer_id})")
        if peer.down is not None:
            raise HostDown(
                f"host {peer.label} of atom {atom_id} is down ({peer.down}); its atoms are lost "
                "unless they were migrated away"
            )
        return peer

    def peer_by_name(self, name: str) -> Peer:
        node_id = self.names.get(name)
        peer = None if node_id is None else self.peers.get(node_id)
        if peer is None:
            known = ", ".join(sorted(self.names)) or "none"
            raise NoSuchHost(
                f"no host named {name!r} (known hosts: {known}); start one with "
                "`await system.start_host(name)` or join one with `system.connect_host(...)`"
            )
        return peer

    def add_peer(
        self,
        node_id: str,
        name: str,
        address: str | None,
        *,
        tls: bool = False,
        connected: bool = False,
    ) -> Peer:
        """The peer ``node_id`` (made if new); ``tls``: it listens with TLS, so
        this node dials it with :meth:`client_context`. ``connected``: a new
        connection with it has just been authenticated, so a peer that was down
        is made anew (what was lost with the old one stays lost; the node came
        back, or a broken connection was replaced: cluster members redial)."""
        peer = self.peers.get(node_id)
        if peer is not None and connected and peer.down is not None:
            _log.info("placement.peer_reconnected", node=node_id, was=peer.down)
            tls = tls or peer.tls
            peer = None
        if peer is None:
            peer = self.peers[node_id] = Peer(self, node_id, name, address)
            routes.setdefault(node_id, self)
        elif address is not None:
            peer.address = address
        peer.tls = peer.tls or tls
        self.names.setdefault(name, node_id)
        return peer

    def announce(self) -> None:
        """Tell every peer about every other (so hosts can talk to each other directly)."""
        table = [
            (p.node_id, p.name, p.address, p.tls) for p in self.peers.values() if p.down is None
        ]
        table.append((self.node_id, self.name, self.address, self.ssl_server is not None))
        for peer in self.peers.values():
            if peer.down is None:
                peer.send(Peers("peers", table))

    def client_context(self) -> ssl.SSLContext:
        """The TLS context for dialing a host that listens with TLS: the one
        configured, else the platform's default (its trusted CAs, names checked;
        made once, and not kept as configured, so a later connect_host's
        context still becomes this node's)."""
        if self.ssl_client is not None:
            return self.ssl_client
        if self._default_client is None:
            self._default_client = ssl.create_default_context()
        return self._default_client

    async def dial(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Peer:
        """Connect to the host at ``host:port``, authenticate, and exchange hellos."""
        return await _handshake.dial(self, address, ssl_context)

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one incoming connection (the listener's handler)."""
        await _handshake.accept(self, stream)

    def peer_down(self, peer: Peer, reason: str) -> None:
        """``peer`` is lost: fail what waits on it and forget what it asked."""
        error = HostDown(
            f"host {peer.label} went down ({reason}) before answering; the outcome of the "
            "message is unknown"
        )
        for req, (p, reply) in list(self.pending.items()):
            if p is peer:
                del self.pending[req]
                reply.deliver(outcome.Error(error))
        lost = peer.node_id
        for key in [k for k in self.inbound if k[0] == lost]:
            del self.inbound[key]
        for part in [k for k in self.staging if k[0] == lost]:
            del self.staging[part]
        # Nothing travels through a lost origin any more.
        self.rerouted.difference_update([a for a in self.rerouted if a.rpartition(".")[0] == lost])
        for callback in list(self.host_down_callbacks):
            callback(peer.name, reason)
        self.watches.peer_down(peer, reason)
        # Atoms of ours that had moved there are lost with it.
        for cell in list(self.forwarders.values()):
            fwd = cell.away
            if isinstance(fwd, Forward) and getattr(fwd.target, "peer_id", None) == lost:
                del self.forwarders[cell.id]
                fwd.lost(cell, HostDown(f"host {peer.label} went down ({reason})"))

    # ------------------------------------------------------------------
    # requests
    # ------------------------------------------------------------------
    def register(self, peer: Peer, reply: Any) -> int:
        """A fresh request id whose reply goes to ``reply``."""
        req = next(self._ids)
        self.pending[req] = (peer, reply)
        return req

    async def request(self, peer: Peer, frame: Request) -> Any:
        """Send ``frame`` with a fresh request id and await the reply."""
        reply = Reply(current_task())
        req = self.register(peer, reply)
        try:
            peer.send(with_req(frame, req), urgent=True)
            return await wait_task_rescheduled(reply)
        finally:
            self.pending.pop(req, None)

    # ------------------------------------------------------------------
    # one migration of an atom at a time
    # ------------------------------------------------------------------
    @asynccontextmanager
    async def migration_lock(self, atom_id: str) -> AsyncIterator[None]:
        lock = self._migration_locks.setdefault(atom_id, trio.Lock())
        try:
            async with lock:
                yield
        finally:
            self._drop_idle_lock(atom_id, lock)

    def try_migration_lock(self, atom_id: str) -> bool:
        """Take the atom's lock if it is free (False: a migration holds it)."""
        lock = self._migration_locks.setdefault(atom_id, trio.Lock())
        try:
            lock.acquire_nowait()
        except trio.WouldBlock:
            return False
        return True

    def release_migration_lock(self, atom_id: str) -> None:
        lock = self._migration_locks[atom_id]
        lock.release()
        self._drop_idle_lock(atom_id, lock)

    def _drop_idle_lock(self, atom_id: str, lock: trio.Lock) -> None:
        if (
            not lock.locked()
            and lock.statistics().tasks_waiting == 0
            and self._migration_locks.get(atom_id) is lock
        ):
            del self._migration_locks[atom_id]

    # ------------------------------------------------------------------
    # The runtime's Placement seam (what System calls)
    # ------------------------------------------------------------------
    async def choose_host(self, cls: type[Any], host: Any) -> str | None:
        """The host ``spawn(..., host=host)`` goes to (None: this process)."""
        return await _supervised.choose_host(self, host, cls)

    async def start_remote(self, cell: AtomCell, host: str) -> None:
        """Activate ``cell``'s atom on ``host``; ``cell`` forwards to it."""
        await _supervised.start_remote(self, cell, host)

    async def start_host(self, name: str, **options: Any) -> str:
        """``System.start_host``: a worker host process on this machine."""
        return await _hosts.start_host(self, name, **options)

    async def connect_host(self, address: str, **options: Any) -> str:
        """``System.connect_host``: join a ``radon host``."""
        return await _hosts.connect_host(self, address, **options)

    async def migrate(self, ref: Ref[Any], to: str, timeout: float | None) -> None:
        """``System.migrate``: move a live atom."""
        await _migration.migrate(self, ref, to, timeout)

    def host_names(self) -> list[str]:
        """Names of the live hosts, this one first."""
        return [h.name for h in self.hosts()]

    def hosts(self) -> list[HostInfo]:
        """The live hosts this node knows, itself first."""
        me = HostInfo(self.name, self.address, self, self.node_id)
        others = [
            HostInfo(name, peer.address, self, peer.node_id)
            for name, node_id in self.names.items()
            if node_id != self.node_id
            and (peer := self.peers.get(node_id)) is not None
            and peer.down is None
        ]
        return [me, *others]

    def watch(self, watcher: AtomCell, ref: Ref[Any], spec: Any) -> bool:
        """Watch an atom whose origin is another host; False if it is not one
        (see ``_deathwatch``)."""
        return self.watches.watch(watcher, ref, spec)

    def unwatch(self, watcher: AtomCell, ref: Ref[Any]) -> None:
        self.watches.unwatch(watcher, ref)

    async def stop_atom(self, atom_id: str) -> None:
        """Stop an atom that lives on another host (through its origin)."""
        origin = atom_id.rpartition(".")[0]
        peer = self.peers.get(origin)
        if peer is None or peer.down is not None:
            await trio.lowlevel.checkpoint()
            return
        await self.request(peer, StopAtom("stop_atom", 0, atom_id))

    async def aclose(self) -> None:
        await _shutdown.close(self)

    # ------------------------------------------------------------------
    # what this node's forwarders call (``_endpoints.Forward``)
    # ------------------------------------------------------------------
    async def restart_elsewhere(self, cell: AtomCell) -> None:
        """A supervisor's restart of an atom that was lost with its host."""
        await _supervised.restart_elsewhere(self, cell)

    async def retire_remote(self, cell: AtomCell) -> None:
        """A supervisor's terminate of an atom that runs on another host."""
        await _supervision.retire_remote(cell)

    def forget(self, atom_id: str) -> None:
        """Drop what was kept about a placed atom that stopped for good."""
        self.homes.pop(atom_id, None)
        self.tried.pop(atom_id, None)


def get_node(system: System) -> Node:
    """The system's node, made on first use (with a fresh random cluster secret)."""
    return cast(Node, system.placement)


def make_node(system: System, secret: bytes | None = None, name: str = LOCAL_NAME) -> Node:
    """The placement extension of ``system`` (``Extensions.placement``): a node
    with ``secret`` (default: a fresh random one) called ``name``."""
    return Node(system, secret if secret is not None else secrets.token_bytes(32), name=name)
