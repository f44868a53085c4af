"""``Node``: one process's membership in a cluster of hosts.

A node belongs to a :class:`~radon_actors.System`; its id is the system's atom-id
prefix, so the id of every atom says which node spawned it (its *origin*). The
origin is the atom's directory: a Ref unpickled anywhere routes to the origin,
which delivers to the atom if it is there, or forwards to wherever the atom
migrated (see ``_migration``).

Each peer node is a :class:`Peer`: an outgoing byte buffer (frames are batched:
whatever accumulated while the writer was busy goes out in one ``send_all``),
one connection, and the asks waiting for its replies. A connection that closes,
errors or stays silent longer than the heartbeat timeout takes the peer down:
every ask waiting on it fails with :class:`HostDown`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pickle
import secrets
import ssl
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import cloudpickle  # type: ignore[import-untyped]
import outcome
import structlog
import trio
from trio.lowlevel import current_task, wait_task_rescheduled

from .. import _ref
from .._errors import SpawnError
from .._ref import Ref
from ..mailbox import BUDGET, budget
from ..runtime import (
    STASHED,
    AtomCell,
    CellState,
    Down,
    Reply,
    deliver_down,
    lookup,
    resolve,
    set_remote_resolver,
)
from ._endpoints import (
    CallbackReply,
    ForwardingCell,
    RemoteEndpoint,
    RemoteError,
    dump_outcome,
    load_outcome,
    post,
)
from ._errors import AuthenticationFailed, HostDown, NoSuchHost, ProtocolError
from ._policy import HostInfo
from ._wire import PICKLE_PROTOCOL, FrameReader, client_handshake, encode, server_handshake

if TYPE_CHECKING:
    from ..runtime import System

__all__ = ["Node", "Peer", "get_node"]

_log = structlog.get_logger("radon_actors.placement")

PYTHON = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
LOCAL_NAME = "local"

# prefix (node id) -> (node, peer id): how this process routes Refs it unpickles.
_routes: dict[str, Node] = {}
# atom id -> the host a Ref last said it runs on: a Ref that arrives without a
# hint (from a sandboxed guest, which names atoms by id only) goes there too. A
# stale entry costs a hop, never a message (see ``_resolve``); bounded.
_hints: dict[str, str] = {}
_MAX_HINTS = 1 << 16


def _route(atom_id: str, name: str | None, via: str | None = None) -> _ref.Endpoint | None:
    """The runtime's remote resolver: where an unpickled Ref whose atom has no cell
    here goes. Its host when the Ref names one (``via``, or the last one seen here)
    that is up, else its origin, which always knows where the atom is."""
    prefix = atom_id.rpartition(".")[0]
    node = _routes.get(prefix)
    if node is not None and node.node_id != prefix:
        if via is None:
            via = _hints.get(atom_id)
        elif _hints.get(atom_id) != via:
            if len(_hints) >= _MAX_HINTS:
                _hints.clear()
            _hints[atom_id] = via
        if via is not None and via != node.node_id:
            peer = node.peers.get(via)
            if peer is not None and peer.down is None:
                return RemoteEndpoint(node, via, atom_id, name)
        return RemoteEndpoint(node, prefix, atom_id, name)
    # One of this process's own atoms that is not in the directory has stopped.
    return None


class Peer:
    """Another node, as seen from this one."""

    def __init__(self, node: Node, node_id: str, name: str, address: str | None) -> None:
        self.node = node
        self.node_id = node_id
        self.name = name
        self.address = address
        self.python = PYTHON  # its Python (from its hello), for code shipped by value
        # Heartbeat settings for this peer (``start_host`` can set them per host).
        self.heartbeat_interval = node.heartbeat_interval
        self.heartbeat_timeout = node.heartbeat_timeout
        self.stream: trio.abc.Stream | None = None
        self.fd = -1  # the stream's socket, for direct writes (see ``send``)
        self.writing = False
        self.out = bytearray()
        self.down: str | None = None
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._connecting = False

    @property
    def label(self) -> str:
        where = f" at {self.address}" if self.address else ""
        return f"{self.name!r}{where}"

    def backlog(self) -> int:
        return len(self.out)

    async def wait_drained(self) -> None:
        if self.out and self.down is None:
            await self._drained.wait()

    def send(self, frame: tuple[Any, ...], *, urgent: bool = False) -> None:
        """Queue a frame for the writer task (which batches what accumulates).

        ``urgent`` frames (asks and replies, whose sender waits) are written
        straight to the socket when nothing is queued or being written, which
        saves a scheduler pass on each side of a round trip; order is kept because
        everything sent before has already left.
        """
        if self.down is not None:
            raise HostDown(f"host {self.label} is down ({self.down})")
        data = encode(frame)
        if urgent and not self.out and not self.writing and self.fd >= 0:
            try:
                sent = os.write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                sent = 0  # the writer and reader will see the broken connection
            if sent == len(data):
                return
            data = data[sent:]
        self.out += data
        self._wake.set()
        if self.stream is None and not self._connecting and self.address is not None:
            self._connecting = True
            self.node.nursery.start_soon(self._dial)

    async def _dial(self) -> None:
        assert self.address is not None
        try:
            await self.node.dial(self.address)
        except (
            OSError,
            ValueError,
            AuthenticationFailed,
            ProtocolError,
            trio.TooSlowError,
            trio.BrokenResourceError,
        ) as exc:
            self.mark_down(f"could not connect: {exc}")

    def mark_down(self, reason: str) -> None:
        if self.down is not None:
            return
        self.down = reason
        self.stream = None
        self.fd = -1
        self.out.clear()
        self._wake.set()
        self._drained.set()
        # A clean close (the peer shut down) is news, not a problem.
        log = _log.debug if self.node.closing else _log.warning
        if reason == "connection closed" and not self.node.closing:
            log = _log.info
        log("placement.host_down", host=self.name, node=self.node_id, reason=reason)
        self.node.peer_down(self, reason)

    async def writer(self, stream: trio.abc.Stream) -> None:
        """Send whatever accumulated, in one write; a ping when idle (heartbeat)."""
        while self.down is None and self.stream is stream:
            if not self.out:
                with trio.move_on_after(self.heartbeat_interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                if not self.out:
                    self.out += encode(("ping",))
            if self.stream is not stream:
                return
            data = bytes(self.out)
            self.out.clear()
            self.writing = True
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.mark_down(f"connection lost: {exc!r}")
                return
            finally:
                self.writing = False
            if not self.out:
                self._drained.set()
                self._drained = trio.Event()


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
        self.peers: dict[str, Peer] = {}
        self.names: dict[str, str] = {name: self.node_id}
        self.pending: dict[int, tuple[Peer, Any]] = {}
        # Atoms (of other origins) for which a hinted message had to be sent on to
        # the origin: see ``_deliver_args``.
        self.rerouted: set[str] = set()
        self._ids = itertools.count(1)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.processes: dict[str, trio.Process] = {}
        self.shutdown_requested = trio.Event()
        self.closing = False
        self.migrations: dict[str, trio.Lock] = {}
        # Asks from peers not answered yet, so a "cancel" frame can withdraw them.
        self.inbound: dict[tuple[str, int], CallbackReply] = {}
        # Called with (host name, reason) when a peer goes down: the hook for
        # supervisors that restart lost atoms elsewhere.
        self.host_down_callbacks: list[Callable[[str, str], None]] = []
        # This node's atoms that migrated away (it is their origin).
        self.forwarders: dict[str, ForwardingCell] = {}
        # The host each atom placed from here was asked to run on (a restart after
        # its host was lost goes back there if it is up again).
        self.homes: dict[str, str] = {}
        # Death watch across hosts: atoms here watching atoms whose origin is
        # another host (atom id -> its Ref and {watcher cell: handler}), and the
        # (peer, atom id) pairs whose watchers this node, the origin, notifies.
        self.remote_watches: dict[str, tuple[Ref[Any], dict[AtomCell, Any]]] = {}
        self.watched: set[tuple[str, str]] = set()
        # Optional TLS (trio.SSLStream) around the connections this node accepts;
        # dials use TLS when given a client context. The HMAC handshake still runs
        # inside it.
        self.ssl_server: ssl.SSLContext | None = None
        _routes[self.node_id] = self
        set_remote_resolver(_route)
        from . import _migration  # noqa: F401  (registers its requests)

    # ------------------------------------------------------------------
    # peers and connections
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

    def register(self, peer: Peer, reply: Any) -> int:
        req = next(self._ids)
        self.pending[req] = (peer, reply)
        return req

    async def request(self, peer: Peer, frame: tuple[Any, ...]) -> Any:
        """Send ``frame`` with a fresh request id after its kind and await the reply."""
        reply = Reply(current_task())
        req = self.register(peer, reply)
        try:
            peer.send((frame[0], req, *frame[1:]), urgent=True)
            return await wait_task_rescheduled(reply)
        finally:
            self.pending.pop(req, None)

    def peer_down(self, peer: Peer, reason: str) -> None:
        error = HostDown(
            f"host {peer.label} went down ({reason}) before answering; the outcome of the "
            "message is unknown"
        )
        for req, (p, reply) in list(self.pending.items()):
            if p is peer:
                del self.pending[req]
                reply.deliver(outcome.Error(error))
        for key in [k for k in self.inbound if k[0] == peer.node_id]:
            del self.inbound[key]
        for callback in list(self.host_down_callbacks):
            callback(peer.name, reason)
        self.watched = {key for key in self.watched if key[0] != peer.node_id}
        lost = HostDown(f"host {peer.label} (the origin of the atom) went down ({reason})")
        for atom_id in [a for a in self.remote_watches if a.rpartition(".")[0] == peer.node_id]:
            self._notify_watchers(atom_id, lost, stopped=True)
        # Atoms of ours that had moved there are lost with it.
        for cell in list(self.forwarders.values()):
            fwd = cell.instance
            if fwd is not None and getattr(fwd.target, "peer_id", None) == peer.node_id:
                del self.forwarders[cell.id]
                cell.lost(HostDown(f"host {peer.label} went down ({reason})"))

    def _add_peer(self, node_id: str, name: str, address: str | None) -> Peer:
        peer = self.peers.get(node_id)
        if peer is None:
            peer = self.peers[node_id] = Peer(self, node_id, name, address)
            _routes.setdefault(node_id, self)
        else:
            if address is not None:
                peer.address = address
        self.names.setdefault(name, node_id)
        return peer

    def _hello(self) -> tuple[Any, ...]:
        return ("hello", self.node_id, self.name, self.address, PYTHON)

    async def dial(self, address: str, *, ssl_context: ssl.SSLContext | None = None) -> Peer:
        """Connect to the host at ``host:port``, authenticate, and exchange hellos."""
        host, _, port = address.rpartition(":")
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, int(port))
        try:
            if ssl_context is not None:
                stream = trio.SSLStream(stream, ssl_context, server_hostname=host)
                with trio.fail_after(5):
                    await stream.do_handshake()
            await client_handshake(stream, self.secret)
            await stream.send_all(encode(self._hello()))
            reader = FrameReader()
            frames: list[tuple[Any, ...]] = []
            with trio.fail_after(5):
                while not frames:
                    data = await stream.receive_some()
                    if not data:
                        raise AuthenticationFailed(
                            f"host at {address} closed the connection during the handshake"
                        )
                    frames = reader.feed(data)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        kind, node_id, name, peer_address, python = frames[0]
        if kind != "hello":
            raise ProtocolError(f"expected a hello from {address}, got {kind!r}")
        peer = self._add_peer(node_id, name, peer_address or address)
        peer.python = python
        self._attach(peer, stream)
        self.nursery.start_soon(self._reader, peer, stream, reader, frames[1:])
        return peer

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one incoming connection (the listener's handler)."""
        remote = _remote_label(stream)
        try:
            if self.ssl_server is not None:
                stream = trio.SSLStream(stream, self.ssl_server, server_side=True)
                with trio.fail_after(5):
                    await stream.do_handshake()
            await server_handshake(stream, self.secret)
        except (AuthenticationFailed, ProtocolError, trio.TooSlowError) as exc:
            _log.warning("placement.auth_refused", remote=remote, reason=str(exc))
            await trio.aclose_forcefully(stream)
            return
        except (trio.BrokenResourceError, OSError) as exc:
            _log.warning("placement.auth_refused", remote=remote, reason=repr(exc))
            await trio.aclose_forcefully(stream)
            return
        _log.info("placement.peer_authenticated", remote=remote)
        reader = FrameReader()
        frames: list[tuple[Any, ...]] = []
        try:
            with trio.fail_after(5):
                while not frames:
                    data = await stream.receive_some()
                    if not data:
                        return
                    frames = reader.feed(data)
        except (trio.TooSlowError, trio.BrokenResourceError, OSError):
            await trio.aclose_forcefully(stream)
            return
        kind, node_id, name, address, python = frames[0]
        if kind != "hello":
            await trio.aclose_forcefully(stream)
            return
        peer = self._add_peer(node_id, name, address)
        peer.python = python
        self._attach(peer, stream, hello=True)
        # The listener closes the stream when this returns: read it here.
        await self._reader(peer, stream, reader, frames[1:])

    def _attach(
        self,
        peer: Peer,
        stream: trio.abc.Stream,
        *,
        hello: bool = False,
    ) -> None:
        if peer.stream is None:
            if hello:
                peer.out[:0] = encode(self._hello())
            peer.stream = stream
            # Direct writes only on a plain socket (never around TLS).
            peer.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
            peer._wake.set()
            self.nursery.start_soon(peer.writer, stream)
        elif hello:
            # A second connection (both sides dialled): it only carries the peer's
            # frames, plus our hello and heartbeats.
            self.nursery.start_soon(self._idle_writer, stream)

    async def _idle_writer(self, stream: trio.abc.Stream) -> None:
        try:
            await stream.send_all(encode(self._hello()))
            while True:
                await trio.sleep(self.heartbeat_interval)
                await stream.send_all(encode(("ping",)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return

    async def _reader(
        self,
        peer: Peer,
        stream: trio.abc.Stream,
        reader: FrameReader,
        early: list[tuple[Any, ...]],
    ) -> None:
        reason = "connection closed"
        watch = _Watch()
        try:
            with trio.CancelScope() as watch.scope:
                self.nursery.start_soon(self._watchdog, peer, watch)
                for frame in early:
                    wait = self._dispatch(peer, frame)
                    if wait is not None:
                        await wait
                receive = _receiver(stream)
                while True:
                    data = await receive()
                    if not data:
                        break
                    watch.last = trio.current_time()
                    for frame in reader.feed(data):
                        wait = self._dispatch(peer, frame)
                        if wait is not None:
                            # A full mailbox: stop reading this connection until
                            # there is room (TCP pushes back on the sender), in order.
                            watch.paused = True
                            await wait
                            watch.paused = False
                            watch.last = trio.current_time()
            if watch.timed_out:
                reason = f"no heartbeat for {peer.heartbeat_timeout} s"
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            reason = f"connection lost: {exc!r}"
        except ProtocolError as exc:
            reason = str(exc)
        except Exception as exc:  # a frame that does not decode: drop the peer
            reason = f"malformed frame: {exc!r}"
            _log.error("placement.bad_frame", host=peer.name, error=repr(exc))
        finally:
            watch.done = True
            if peer.stream is stream or peer.stream is None:
                peer.mark_down(reason)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _watchdog(self, peer: Peer, watch: _Watch) -> None:
        """Cancel a reader that has heard nothing for the heartbeat timeout.

        One task per connection that wakes every heartbeat interval, instead of a
        cancel scope per read (which would cost on every message).
        """
        while not watch.done:
            await trio.sleep(min(peer.heartbeat_interval, peer.heartbeat_timeout / 2))
            idle = trio.current_time() - watch.last
            if not watch.done and not watch.paused and idle > peer.heartbeat_timeout:
                watch.timed_out = True
                watch.scope.cancel()
                return

    # ------------------------------------------------------------------
    # frames
    # ------------------------------------------------------------------
    def _dispatch(self, peer: Peer, frame: tuple[Any, ...]) -> Awaitable[None] | None:
        kind = frame[0]
        if kind == "tell":
            _, atom_id, h, args, kwargs = frame
            cell = lookup(atom_id)
            if (
                cell is not None
                and type(cell) is not ForwardingCell
                and not (self.rerouted and atom_id in self.rerouted)
            ):
                # Fast path: a live atom here with room in its mailbox.
                spec = cell.table.get(h)
                mailbox = cell.mailbox
                if (
                    spec is not None
                    and cell.state < _STOPPING
                    and len(mailbox.user) < mailbox.capacity
                    and not mailbox.closed
                ):
                    check = spec.check
                    try:
                        if check is not None:
                            check(*args, **kwargs)
                    except TypeError:
                        pass  # the general path reports it
                    else:
                        mailbox.put_nowait((spec, args, kwargs, None))
                        return None
            return self._deliver_args(atom_id, h, args, kwargs, None, peer)
        elif kind == "atom_stopped":
            # An atom of ours stopped on the host it had migrated to.
            _, atom_id, reason = frame
            cell = self.forwarders.get(atom_id)
            target = None if cell is None or cell.instance is None else cell.instance.target
            if cell is not None and getattr(target, "peer_id", None) == peer.node_id:
                del self.forwarders[atom_id]
                cell.lost(None if reason is None else RemoteError(reason))
        elif kind == "watch":
            self._watched_from(peer, frame[1])
        elif kind == "down":
            _, atom_id, reason, stopped = frame
            self._notify_watchers(atom_id, None if reason is None else RemoteError(reason), stopped)
        elif kind == "undecodable":
            _log.warning("dead_letter", host=peer.name, reason=f"undecodable message: {frame[1]}")
        elif kind == "ask":
            _, req, atom_id, h, blob = frame
            reply = CallbackReply(_Answer(self, peer, req))
            self.inbound[(peer.node_id, req)] = reply
            return self._deliver_in(atom_id, h, blob, reply, peer)
        elif kind == "cancel":
            # The asker gave up: withdraw the ask if its turn has not begun.
            withdrawn = self.inbound.pop((peer.node_id, frame[1]), None)
            if withdrawn is not None:
                withdrawn.task = None
        elif kind == "reply":
            _, req, blob = frame
            entry = self.pending.pop(req, None)
            if entry is not None:
                entry[1].deliver(load_outcome(blob))
        elif kind == "ping" or kind == "hello":
            pass
        elif kind == "peers":
            for node_id, name, address in frame[1]:
                if node_id != self.node_id:
                    self._add_peer(node_id, name, address)
        elif kind == "shutdown":
            self.closing = True
            self.shutdown_requested.set()
        else:
            handler = _REQUESTS.get(kind)
            if handler is None:
                _log.warning("placement.unknown_frame", kind=kind, host=peer.name)
                handler = _unknown_request(kind)
            req = frame[1]
            self.nursery.start_soon(self._serve_request, peer, req, handler, frame[2:])
        return None

    def _deliver_in(
        self, atom_id: str, h: str, blob: bytes, reply: Any, src: Peer
    ) -> Awaitable[None] | None:
        try:
            args, kwargs = pickle.loads(blob)
        except Exception as exc:
            error = RemoteError(
                f"the arguments of {h!r} for atom {atom_id} cannot be unpickled on host "
                f"{self.name!r}: {exc!r} (is the class importable there?)"
            )
            if reply is not None:
                reply.deliver(outcome.Error(error))
            else:
                _log.warning("dead_letter", atom_id=atom_id, handler=h, reason=str(error))
            return None
        return self._deliver_args(atom_id, h, args, kwargs, reply, src)

    def _deliver_args(
        self,
        atom_id: str,
        h: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reply: Any,
        src: Peer,
    ) -> Awaitable[None] | None:
        ep: Any = lookup(atom_id)
        rerouted = self.rerouted
        if ep is None or (rerouted and atom_id in rerouted):
            origin = atom_id.rpartition(".")[0]
            if origin != src.node_id and origin in self.peers:
                # Sent here on a Ref's location hint, but the atom is no longer
                # here (it moved on, or stopped and was restarted elsewhere): its
                # origin knows where it is. From then on every hinted message for
                # it goes that way, even once it is back here, so that none can
                # overtake one still travelling through the origin.
                rerouted.add(atom_id)
                ep = RemoteEndpoint(self, origin, atom_id, None)
            elif ep is None:
                ep = resolve(atom_id, None)
        if isinstance(ep, AtomCell) and type(ep) is not ForwardingCell:
            mailbox = ep.mailbox
            if reply is not None and _run_inline(ep, h, args, kwargs, reply):
                return None
            if len(mailbox.user) >= mailbox.capacity and not mailbox.closed:
                return self._put_when_room(ep, h, args, kwargs, reply)
        post(ep, h, args, kwargs, reply)
        return None

    async def _put_when_room(
        self, cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any
    ) -> None:
        try:
            spec = cell.spec_for(h, args, kwargs)
        except Exception:
            post(cell, h, args, kwargs, reply)  # reports the error
            return
        if not await cell.mailbox.put((spec, args, kwargs, reply)):
            post(cell, h, args, kwargs, reply)  # closed meanwhile: reports it

    async def _serve_request(
        self,
        peer: Peer,
        req: int,
        handler: Callable[..., Awaitable[Any]],
        fields: tuple[Any, ...],
    ) -> None:
        result = await outcome.acapture(handler, self, peer, *fields)
        if peer.down is None:
            peer.send(("reply", req, dump_outcome(result, f"host {self.name!r}")), urgent=True)

    # ------------------------------------------------------------------
    # The runtime's Placement seam (what System calls)
    # ------------------------------------------------------------------
    # The operations live in the modules that hold them; they import this one,
    # so they are imported here on use.
    async def choose_host(self, cls: type[Any], host: Any) -> str | None:
        """The host ``spawn(..., host=host)`` goes to (None: this process)."""
        from ._supervised import choose_host

        return await choose_host(self.system, host, cls)

    async def start_remote(self, cell: AtomCell, host: str) -> None:
        """Activate ``cell``'s atom on ``host``; ``cell`` forwards to it."""
        from ._supervised import start_remote

        await start_remote(cell, host)

    async def start_host(self, name: str, **options: Any) -> str:
        """``System.start_host``: a worker host process on this machine."""
        from ._hosts import start_host

        return await start_host(self.system, name, **options)

    async def connect_host(self, address: str, **options: Any) -> str:
        """``System.connect_host``: join a ``radon host``."""
        from ._hosts import connect_host

        return await connect_host(self.system, address, **options)

    async def migrate(self, ref: Ref[Any], to: str) -> None:
        """``System.migrate``: move a live atom."""
        from ._migration import migrate

        await migrate(self, ref, to)

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

    # ------------------------------------------------------------------
    # death watch across hosts
    # ------------------------------------------------------------------
    def watch(self, watcher: AtomCell, ref: Ref[Any], spec: Any) -> bool:
        """Watch an atom whose origin is another host; False if it is not one.

        The origin (the atom's directory, which also sees it restarted or lost
        elsewhere) sends a ``down`` frame per crash and one when it stops; the
        origin host going down counts as the atom stopping.
        """
        origin = ref.id.rpartition(".")[0]
        peer = self.peers.get(origin)
        if origin == self.node_id or peer is None:
            return False
        entry = self.remote_watches.get(ref.id)
        if peer.down is not None:
            reason = HostDown(f"host {peer.label}, the origin of {ref!r}, is down ({peer.down})")
            deliver_down(watcher, spec, Down(ref, reason, stopped=True))
            return True
        if entry is None:
            entry = self.remote_watches[ref.id] = (ref, {})
            peer.send(("watch", ref.id))
        entry[1][watcher] = spec
        return True

    def unwatch(self, watcher: AtomCell, ref: Ref[Any]) -> None:
        entry = self.remote_watches.get(ref.id)
        if entry is not None:
            entry[1].pop(watcher, None)

    def _notify_watchers(self, atom_id: str, reason: BaseException | None, stopped: bool) -> None:
        entry = self.remote_watches.pop(atom_id, None) if stopped else None
        if entry is None:
            entry = self.remote_watches.get(atom_id)
        if entry is None:
            return
        ref, watchers = entry
        for watcher, spec in list(watchers.items()):
            deliver_down(watcher, spec, Down(ref, reason, stopped=stopped))

    def _watched_from(self, peer: Peer, atom_id: str) -> None:
        """A ``watch`` frame: notify ``peer`` of this atom's crashes and stop."""
        key = (peer.node_id, atom_id)
        if key in self.watched:
            return
        cell = lookup(atom_id)
        if cell is None or cell.stopped.is_set():
            peer.send(("down", atom_id, f"atom {atom_id} was not running when watched", True))
            return
        self.watched.add(key)

        def crashed(c: AtomCell, exc: BaseException) -> None:
            if key in self.watched and peer.down is None:
                peer.send(("down", atom_id, repr(exc), False))

        def stopped(c: AtomCell, reason: BaseException | None) -> None:
            if key in self.watched and peer.down is None:
                self.watched.discard(key)
                peer.send(("down", atom_id, None if reason is None else repr(reason), True))

        cell.on_stopped.append(stopped)
        if cell.on_crashed is None:
            cell.on_crashed = []
        cell.on_crashed.append(crashed)

    async def _stop_emigrants(self) -> None:
        """Stop this system's atoms that migrated to hosts that outlive it.

        Atoms spawned on a host stop with their supervisor; one that migrated away
        left only a forwarder here, outside the supervision tree, so without this
        it would keep running on a ``radon host`` joined with ``connect_host``
        after the system is gone. (Worker hosts started here exit anyway.)
        """
        targets: list[tuple[Peer, str]] = []
        for cell in list(self.forwarders.values()):
            fwd = cell.instance
            target = None if fwd is None else fwd.target
            if type(target) is RemoteEndpoint and target.peer_id not in self.processes:
                peer = self.peers.get(target.peer_id)
                if peer is not None and peer.down is None:
                    targets.append((peer, cell.id))
        if not targets:
            return

        async def stop(peer: Peer, atom_id: str) -> None:
            try:
                await self.request(peer, ("stop_atom", atom_id))
            except Exception as exc:  # the host went away: so did the atom
                _log.info("placement.stop_failed", atom_id=atom_id, error=repr(exc))

        with trio.move_on_after(5):
            async with trio.open_nursery() as nursery:
                for peer, atom_id in targets:
                    nursery.start_soon(stop, peer, atom_id)

    async def stop_atom(self, atom_id: str) -> None:
        """Stop an atom that lives on another host (through its origin)."""
        origin = atom_id.rpartition(".")[0]
        peer = self.peers.get(origin)
        if peer is None or peer.down is not None:
            await trio.lowlevel.checkpoint()
            return
        await self.request(peer, ("stop_atom", atom_id))

    def announce(self) -> None:
        """Tell every peer about every other (so hosts can talk to each other directly)."""
        table = [(p.node_id, p.name, p.address) for p in self.peers.values() if p.down is None]
        table.append((self.node_id, self.name, self.address))
        for peer in self.peers.values():
            if peer.down is None:
                peer.send(("peers", table))

    async def aclose(self) -> None:
        self.closing = True
        await self._stop_emigrants()
        for peer in self.peers.values():
            if peer.down is None and peer.node_id in self.processes:
                peer.send(("shutdown",))
        for proc in self.processes.values():
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if _routes.get(self.node_id) is self:
            del _routes[self.node_id]
            _hints.clear()
        for node_id in list(_routes):
            if _routes[node_id] is self:
                del _routes[node_id]


CHUNK = 65536


def _receiver(stream: trio.abc.Stream) -> Callable[[], Awaitable[bytes | bytearray]]:
    """How the reader takes bytes off ``stream``.

    For a plain TCP stream: ``os.read`` on its socket, and a wait for readability
    only when nothing is there. Trio's ``receive_some`` also yields after every
    successful read, which costs each message a second pass of the scheduler (and
    a poll) on the round trip's critical path. This reader yields only when it
    had to wait, or, to stay fair under a flood, on the shared cooperative budget;
    and after a read that emptied the socket it waits before reading again,
    instead of first trying a read that would fail.
    """
    if not isinstance(stream, trio.SocketStream):
        return stream.receive_some
    sock = stream.socket
    fd = sock.fileno()
    read = os.read
    wait_readable = trio.lowlevel.wait_readable
    yield_now = trio.lowlevel.cancel_shielded_checkpoint

    drained = False  # the last read took less than asked: the socket is empty

    async def receive() -> bytes:
        nonlocal drained
        if not drained:
            try:
                data = read(fd, CHUNK)
            except BlockingIOError:
                pass
            else:
                drained = len(data) < CHUNK
                b = budget
                b.left -= 1
                if b.left <= 0:
                    b.left = BUDGET
                    await yield_now()
                return data
        # Empty (as after every message of a ping-pong): wait, skipping the read
        # that would only fail.
        while True:
            await wait_readable(sock)
            try:
                data = read(fd, CHUNK)
            except BlockingIOError:
                continue  # a spurious wake-up
            drained = len(data) < CHUNK
            return data

    return receive


def _run_inline(
    cell: AtomCell, h: str, args: tuple[Any, ...], kwargs: dict[str, Any], reply: Any
) -> bool:
    """Run a remote ask of a handler that cannot suspend on an idle atom right here.

    The same fast path as a local ``ask`` (see ``runtime._cell``): with the atom
    idle and its mailbox empty this is a faithful turn, and it saves waking the
    atom's task. Returns False (nothing done) when the fast path does not apply.
    """
    mailbox = cell.mailbox
    if cell.state != _RUNNING or cell.busy or mailbox.user or mailbox.control:
        return False
    spec = cell.table.get(h)
    if spec is None or not spec.never_suspends:
        return False
    check = spec.check
    if check is not None:
        try:
            check(*args, **kwargs)
        except TypeError:
            return False  # the normal path reports it
    try:
        result = cell.inline_turn(spec, args, kwargs)
    except Exception as exc:
        reply.deliver(outcome.Error(exc))
        return True
    if result is STASHED:
        mailbox.stash((spec, args, kwargs, reply))
        return True
    reply.deliver(outcome.Value(result))
    return True


_RUNNING = CellState.RUNNING
_STOPPING = CellState.STOPPING


class _Watch:
    """Liveness of one connection's reader (see ``Node._watchdog``)."""

    __slots__ = ("done", "last", "paused", "scope", "timed_out")

    def __init__(self) -> None:
        self.last = trio.current_time()
        self.paused = False
        self.done = False
        self.timed_out = False
        self.scope = trio.CancelScope()


class _Answer:
    """Sends an ask's outcome back to the peer that asked (a reply callback)."""

    __slots__ = ("node", "peer", "req")

    def __init__(self, node: Node, peer: Peer, req: int) -> None:
        self.node = node
        self.peer = peer
        self.req = req

    def __call__(self, result: outcome.Outcome[Any]) -> None:
        peer = self.peer
        self.node.inbound.pop((peer.node_id, self.req), None)
        if peer.down is None:
            peer.send(
                ("reply", self.req, dump_outcome(result, f"host {self.node.name!r}")), urgent=True
            )


def _remote_label(stream: Any) -> str:
    try:
        addr = stream.socket.getpeername()
        return f"{addr[0]}:{addr[1]}"
    except Exception:
        return "?"


# ----------------------------------------------------------------------
# request handlers (run in their own task; their result is the reply)
# ----------------------------------------------------------------------
async def _req_spawn(
    node: Node,
    peer: Peer,
    cls_blob: bytes,
    blob: bytes,
    name: str | None,
    mailbox_size: int | None,
) -> str:
    cls = load_class(cls_blob)
    args, kwargs = pickle.loads(blob)
    ref = await node.system.spawn_cell(cls, args, kwargs, name=name, mailbox_size=mailbox_size)
    return ref.id


async def _req_load(node: Node, peer: Peer) -> int:
    return node.system.load()


_REQUESTS: dict[str, Callable[..., Awaitable[Any]]] = {"spawn": _req_spawn, "load": _req_load}


def _unknown_request(kind: str) -> Callable[..., Awaitable[Any]]:
    async def refuse(node: Node, peer: Peer, *fields: Any) -> None:
        raise ProtocolError(
            f"host {node.name!r} does not know the request {kind!r}; run the same "
            "radon-actors version on every host"
        )

    return refuse


def add_request(kind: str, fn: Callable[..., Awaitable[Any]]) -> None:
    _REQUESTS[kind] = fn


_class_blobs: weakref.WeakKeyDictionary[type, bytes] = weakref.WeakKeyDictionary()
_classes: dict[bytes, type] = {}


def dump_class(cls: type, peer: Peer) -> bytes:
    """An atom class for the wire: by reference when importable, else by value
    (cloudpickle). Cached, so a class is pickled once per process.

    Code shipped by value only runs on the same Python version: refused otherwise.
    """
    module = sys.modules.get(cls.__module__)
    if (module is None or cls.__module__ == "__main__") and peer.python != PYTHON:
        raise SpawnError(
            f"{cls.__qualname__} is defined in {cls.__module__!r}, so it would travel by value "
            f"(cloudpickle), which needs the same Python on both sides: this host runs "
            f"{PYTHON}, host {peer.label} runs {peer.python}. Move the class to a module "
            "installed on that host"
        )
    blob = _class_blobs.get(cls)
    if blob is None:
        blob = _class_blobs[cls] = cloudpickle.dumps(cls, PICKLE_PROTOCOL)
    return blob


def load_class(blob: bytes) -> type:
    """The class of ``blob``; the same bytes always give the same class object, so
    a class shipped by value is rebuilt once per host, not once per message."""
    key = hashlib.sha256(blob).digest()
    cls = _classes.get(key)
    if cls is None:
        cls = _classes[key] = pickle.loads(blob)
    return cls


def get_node(system: System) -> Node:
    """The system's node, made on first use (with a fresh random cluster secret)."""
    return cast(Node, system.placement)


def make_node(system: System) -> Node:
    """The placement extension of ``system`` (``Extensions.placement``): a node
    with a fresh random cluster secret."""
    return Node(system, secrets.token_bytes(32))


def node_of(system: System) -> Node | None:
    """The system's node if it has one already."""
    return cast("Node | None", system.active_placement)
