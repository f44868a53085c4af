"""``Member``: a system's part in a cluster, and the key owners it plugs into
the durable layer's directory (its ``KeyOwners`` seam).

**Owners.** Each active key has an *owner record* in the shared store naming
the member where it is active. A member that has a message for a key and no
activation of it *claims* the key (``claim``): it reads the record; if it
names another member that is alive (its membership has not run out, see
``_membership``), messages are forwarded there over a placement connection
(dialled on first use, authenticated with the cluster's secret); otherwise the
member writes itself into the record, conditionally on the revision it read,
and activates the key. Two members racing for one key both write against the
same revision and one is refused (``StateConflict``): it reads again, finds
the winner, and forwards to it. When an activation stops (collected, failed)
its member clears the record (``released``), conditionally again, and a claim
made meanwhile waits for that to finish, so a record is never cleared under a
newer activation.

**Failure.** A member that cannot reach a key's owner waits until the owner's
membership runs out (at most a lease), then takes the key: its activation
loads the state the owner last saved. Messages sent to a member that died
before they were answered fail with ``HostDown`` (their outcome is unknown, as
for any host); later ones go to the new activation. Two activations can
overlap only if an owner outlives its lease unseen (a frozen process); its
state writes are then refused by their revision, and a member that finds its
lease run out stops its activations before registering again.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from .._errors import SpawnError, StateConflict
from .._logs import get_logger
from ..durable import Activations, Durability, Forwarding, VirtualEndpoint, serve
from ..placement import (
    AuthenticationFailed,
    HostDown,
    Node,
    Peer,
    ProtocolError,
    RemoteEndpoint,
    advertised,
    make_node,
)
from ._config import Cluster
from ._membership import RECORDS, Membership

if TYPE_CHECKING:
    from ..runtime import System

__all__ = ["Member", "attach"]

_log = get_logger("radon_actors.cluster")

_OWNER = "$owner"
DIAL_TIMEOUT = 5.0
FORWARDS_HELD = 100_000
"""At most this many endpoints forwarding elsewhere are held (about 300 bytes
each), beyond those that Refs hold."""


class _Forward(RemoteEndpoint):
    """Messages for a key that is active at another member (a ``Forwarding``):
    sent there (a RemoteEndpoint of that member) while the connection ``link``
    is up, until ``until`` (trio time). Then the next message claims the key
    again, reading where it is now: a key that moved is followed within that
    time, instead of every message going through the member it left."""

    __slots__ = ("link", "until")

    def __init__(self, node: Node, peer: Peer, atom_id: str, until: float) -> None:
        super().__init__(node, peer.node_id, atom_id, None)
        self.link = peer
        self.until = until

    def __repr__(self) -> str:
        return f"<forward to member {self.link.name!r}>"

    @property
    def live(self) -> bool:
        return self.link.down is None and trio.current_time() < self.until


class Member:
    """One system's membership of a cluster (see the module docs)."""

    def __init__(self, system: System, cluster: Cluster, durability: Durability) -> None:
        if system.active_placement is not None:
            raise RuntimeError(
                "join the cluster when the system opens (open_system(cluster=...)): this "
                "system already uses hosts with another secret"
            )
        self.system = system
        self.cluster = cluster
        self.store = durability.store
        self.activations: Activations = durability.activations
        self.name = cluster.member or f"member-{system.prefix}"
        self.node = make_node(system, cluster.secret, self.name)
        self.node.ssl_server = cluster.tls
        self.node.ssl_client = cluster.tls_client
        system.install_placement(self.node)
        self.node_id = self.node.node_id
        self.membership: Membership | None = None
        self.leaving = False
        self.ready = trio.Event()  # registered: claims may write
        self._scope = trio.CancelScope()
        # Endpoints forwarding to each member, by its node id: told when its
        # connection goes down (``_host_down``).
        self._forwards: dict[str, weakref.WeakSet[VirtualEndpoint]] = {}
        # Endpoints forwarding elsewhere, held until their forward runs out, in
        # that order: a Ref made per message (``system.get(...).ask(...)``), or
        # a message from another member for a key that moved on, finds the
        # forward again instead of reading the store each time (FORWARDS_HELD).
        self._recent: OrderedDict[str, VirtualEndpoint] = OrderedDict()
        self._dialing: dict[str, trio.Event] = {}
        # When this member's connection to another went down, by node id: it
        # dials again once the other side has surely noticed too (``_reach``).
        self._down_at: dict[str, float] = {}
        # Why the last dial of each member failed (for the error a claim gives).
        self._dial_errors: dict[str, str] = {}
        self._mine = json.dumps({"member": self.node_id})
        self.node.host_down_callbacks.append(self._host_down)
        # From now on this system's ``get`` names the cluster's keys, and ids
        # with the cluster's prefix resolve here.
        self.activations.directory = cluster.prefix
        self.activations.owners = self
        serve(self.activations)

    def __repr__(self) -> str:
        return f"<member {self.name!r} of cluster {self.cluster.name!r}>"

    # ------------------------------------------------------------------
    # Joining and leaving
    # ------------------------------------------------------------------
    async def start(self) -> None:
        """Listen for the other members, register, and keep the membership (a
        client of the cluster does none of these: it only dials members)."""
        if not self.cluster.activates:
            self.membership = Membership(
                self.store, self.cluster.name, self.node_id, self.name, "", self.cluster.lease
            )
            self.ready.set()
            return
        host, _, port = self.cluster.listen.rpartition(":")
        host = host.strip("[]")
        listeners = await trio.open_tcp_listeners(int(port), host=host)
        bound: Any = listeners[0].socket.getsockname()
        self.node.address = advertised(self.cluster.advertise or host, bound[1])
        self.membership = Membership(
            self.store,
            self.cluster.name,
            self.node_id,
            self.name,
            self.node.address,
            self.cluster.lease,
            tls=self.cluster.tls is not None,
        )
        try:
            await self.membership.register()
        except BaseException:
            for listener in listeners:
                await listener.aclose()
            raise
        self.system.start_soon(self._run, listeners, self.membership)
        self.ready.set()

    async def _run(self, listeners: list[trio.SocketListener], membership: Membership) -> None:
        with self._scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.serve_listeners, self.node.handle_stream, listeners)
                await membership.keep(self.activations.deactivate_all)

    async def leave(self) -> None:
        """Stop this member's activations, clear its membership (the others take
        its keys at once), and stop listening."""
        self.leaving = True
        try:
            await self.activations.deactivate_all()
            if self.membership is not None:
                await self.membership.leave()
        finally:
            self._scope.cancel()

    # ------------------------------------------------------------------
    # The KeyOwners seam (see the module docs)
    # ------------------------------------------------------------------
    def _record(self, ep: VirtualEndpoint) -> str:
        return f"cluster:{self.cluster.name}:owner:{ep.id}"

    async def claim(self, ep: VirtualEndpoint) -> Forwarding | None:
        token = ep.claim
        if isinstance(token, trio.Event):
            await token.wait()  # this member's release of the key is under way
        await self.ready.wait()
        membership = self.membership
        assert membership is not None
        record = self._record(ep)
        waited = 0.0
        while True:
            if self.leaving:
                raise SpawnError(
                    f"{self!r} is leaving: {ep!r} activates at another member once it has left"
                )
            stored = await self.store.read(RECORDS, record, _OWNER)
            owner = _owner_in(stored)
            reached: Peer | float | None = None
            if owner is not None and owner != self.node_id:
                reached = await self._reach(owner, membership)
            chosen = False
            if reached is None and not self.cluster.activates:
                # A client: the key goes to a member, which claims it.
                reached = await self._member_for(ep, membership)
                chosen = True
            if isinstance(reached, Peer):
                return self._forward(ep, reached)
            if reached is not None:  # alive by its lease, and not reachable
                if waited > 2 * membership.lease + self._settle():
                    raise self._unreachable(ep, None if chosen else owner)
                waited += reached
                await trio.sleep(reached)
                continue
            try:
                ep.claim = await self.store.write(
                    RECORDS, record, _OWNER, self._mine, None if stored is None else stored[1]
                )
            except StateConflict:
                continue  # another member claimed it first: read who
            return None

    def released(self, ep: VirtualEndpoint) -> None:
        etag = ep.claim
        if not isinstance(etag, str):
            return
        if self.system.closing:
            ep.claim = None  # the membership goes with the system: so do its keys
            return
        done = ep.claim = trio.Event()
        self.system.start_soon(self._release, ep, etag, done)

    async def _release(self, ep: VirtualEndpoint, etag: str, done: trio.Event) -> None:
        try:
            await self.store.clear(RECORDS, self._record(ep), _OWNER, etag)
        except Exception as exc:  # taken over meanwhile, or the store is away
            _log.info("cluster.release_failed", atom=repr(ep), error=repr(exc))
        finally:
            if ep.claim is done:
                ep.claim = None
            done.set()

    # ------------------------------------------------------------------
    # Reaching other members
    # ------------------------------------------------------------------
    async def _reach(self, owner: str, membership: Membership) -> Peer | float | None:
        """The connection to member ``owner`` (the one up, else dialled now);
        else the seconds to wait before trying again (its membership is alive
        but it cannot be reached), or None if it is gone (its membership ran
        out or was cleared)."""
        known = self.node.peers.get(owner)
        if known is not None and known.down is None:
            return known
        record = await membership.lookup(owner)
        if record is None:
            return None
        retry = max(min(record.until - membership.now(), membership.lease / 3), 0.01)
        if known is not None:
            # The connection broke, and the member still renews its membership:
            # cut off, not dead. Dial it again once its side has given up the
            # old connection too (no frame from here for a heartbeat timeout),
            # so that both sides start afresh.
            since = trio.current_time() - self._down_at.get(owner, -1e9)
            if since < self._settle():
                return max(min(retry, self._settle() - since), 0.01)
        dialing = self._dialing.get(owner)
        if dialing is not None:
            await dialing.wait()
        else:
            dialing = self._dialing[owner] = trio.Event()
            try:
                tls = self.node.client_context() if record.tls else None
                with trio.fail_after(DIAL_TIMEOUT):
                    peer = await self.node.dial(record.address, ssl_context=tls)
                if peer.node_id != owner:
                    _log.info("cluster.member_replaced", member=owner, address=record.address)
                    return None  # another process listens there now: it is gone
            except (
                OSError,
                ssl.SSLError,
                trio.TooSlowError,
                trio.BrokenResourceError,
                AuthenticationFailed,
                ProtocolError,
            ) as exc:
                _log.info("cluster.member_unreachable", member=owner, error=repr(exc))
                self._dial_errors[owner] = repr(exc)
                if len(self._dial_errors) > 1000:
                    self._dial_errors.clear()
                return retry
            finally:
                del self._dialing[owner]
                dialing.set()
        known = self.node.peers.get(owner)
        if known is None or known.down is not None:
            return retry
        self._down_at.pop(owner, None)
        return known

    def _unreachable(self, ep: VirtualEndpoint, owner: str | None) -> HostDown:
        """The error of a claim that could reach no member (``owner``: the one
        that has the key; None: a client's, any of them)."""
        errors = self._dial_errors
        why = errors.get(owner) if owner is not None else next(reversed(errors.values()), None)
        where = (
            f"{ep!r} is active at member {owner} of cluster {self.cluster.name!r}, which "
            "renews its membership but cannot be reached from here"
            if owner is not None
            else f"no live member of cluster {self.cluster.name!r} can be reached from here "
            f"to activate {ep!r}"
        )
        return HostDown(
            f"{where}{f' (last: {why})' if why else ''}; check that every member has the "
            "same secret and can reach the address the others advertise"
        )

    async def _member_for(self, ep: VirtualEndpoint, membership: Membership) -> Peer | float:
        """For a client: a connection to the member that should activate ``ep``'s
        key (the first reachable one in the key's rendezvous order, so every
        client picks the same); else the seconds to wait before trying again."""
        members = await membership.members()
        if not members:
            raise SpawnError(
                f"no member of cluster {self.cluster.name!r} is up to activate {ep!r}: start "
                "one (`radon member`, or open_system(cluster=...) with activates=True)"
            )
        wait = membership.lease / 3
        for node_id, _ in sorted(members, key=lambda m: _rendezvous(m[0], ep.id), reverse=True):
            reached = await self._reach(node_id, membership)
            if isinstance(reached, Peer):
                return reached
            if reached is not None:
                wait = min(wait, reached)
        return wait

    def _settle(self) -> float:
        node = self.node
        return node.heartbeat_timeout + node.heartbeat_interval

    def _forward(self, ep: VirtualEndpoint, peer: Peer) -> _Forward:
        forwards = self._forwards.get(peer.node_id)
        if forwards is None:
            forwards = self._forwards[peer.node_id] = weakref.WeakSet()
        forwards.add(ep)
        now = trio.current_time()
        forward = _Forward(self.node, peer, ep.id, now + self.cluster.lease)
        recent = self._recent
        recent[ep.id] = ep
        recent.move_to_end(ep.id)
        # Forwards run out in the order they were made: let go of the oldest
        # that ran out (or stopped forwarding), and of any beyond the bound.
        while True:
            oldest = next(iter(recent.values()))
            held = oldest.forward
            if len(recent) <= FORWARDS_HELD and (
                oldest is ep or (isinstance(held, _Forward) and held.until > now)
            ):
                break
            recent.popitem(last=False)
        return forward

    def _host_down(self, name: str, reason: str) -> None:
        peers = self.node.peers
        now = trio.current_time()
        for node_id, lost in peers.items():
            if lost.down is not None and node_id not in self._down_at:
                self._down_at[node_id] = now
        for node_id in list(self._forwards):
            peer = peers.get(node_id)
            if peer is None or peer.down is not None:
                for ep in list(self._forwards.pop(node_id)):
                    forward = ep.forward
                    if forward is not None and not forward.live:
                        ep.unreachable()


def _rendezvous(node_id: str, atom_id: str) -> int:
    # The same order of members for a key in every process (``hash`` of a str
    # is salted per process).
    digest = hashlib.blake2b(f"{node_id}\x00{atom_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _owner_in(stored: tuple[str | None, str] | None) -> str | None:
    if stored is None or not stored[0]:
        return None
    try:
        owner = json.loads(stored[0])["member"]
    except (ValueError, KeyError, TypeError):
        return None
    return owner if isinstance(owner, str) else None


def attach(system: System, cluster: Cluster) -> Member:
    """Make ``system`` a member of ``cluster`` (not started: :func:`membership`)."""
    durability = system.durability()
    if not isinstance(durability, Durability):
        raise TypeError("a cluster needs radon_actors' durable layer as the system's durability")
    return Member(system, cluster, durability)


@asynccontextmanager
async def membership(member: Member) -> AsyncIterator[Member]:
    """Run ``member`` (started already) until the block ends, then leave."""
    try:
        yield member
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(member.cluster.lease):
            await member.leave()
