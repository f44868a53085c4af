"""Peers and their connections: batched writes, the reader, heartbeats.

Each peer node is a :class:`Peer`: an outgoing byte buffer (frames are batched:
whatever accumulated while the writer was busy goes out in one ``send_all``),
one connection, and the node that owns it.

A frame larger than a part (``_wire.PART``) goes out in parts, one per write,
with the rest of the traffic between them, so a large message never holds up
the small ones behind it. What must not overtake it waits behind it in the
same queue (``bulk``): later messages to the same atom (per-sender order) and
every frame that is not a message (requests and notices, whose order with the
messages around them matters). Replies, heartbeats, credit, and messages to
other atoms go on.

Per-atom credit (``_flow``) lives here too: the sender's flows, the credit this
host owes the peer (sent by the writer, batched), and the messages from the
peer held for atoms that could not take them. A connection that closes, errors or
stays silent longer than the heartbeat timeout takes the peer down
(``Peer.mark_down``), and the node fails every ask waiting on it with
:class:`HostDown`.

The transport hands each frame to the handler its kind has in the node's
dispatch table (``_dispatch``); connecting and the hello exchange are
``_handshake``'s.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from .._logs import get_logger
from ..mailbox import BUDGET, budget
from ._classes import PYTHON
from ._errors import AuthenticationFailed, HostDown, ProtocolError
from ._flow import Flow, Inflow, credit_frames
from ._frames import Frame, Ping
from ._wire import PART, FrameReader, encode, part

if TYPE_CHECKING:
    from ._code import Shipment
    from ._node import Node

__all__ = [
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
    "PING",
    "FrameHandler",
    "FrameTable",
    "Peer",
    "read_frames",
]

_log = get_logger("radon_actors.placement")

HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 3.0
PING = encode(Ping("ping"))
CHUNK = 65536

FrameHandler = Callable[["Peer", Any], None]
"""What the reader hands a decoded frame to (by its kind: ``_dispatch``). It
runs synchronously and never waits: the next frame may be for another atom."""

# Frames that may overtake a large frame going out in parts (see the module
# docs); tells and asks may too when they are for another atom.
_OVERTAKE = frozenset({"reply", "ping", "credit"})


class _Bulk:
    """A frame in the ``bulk`` queue: a large one going out in parts (``payload``
    without its prefix, ``sent`` bytes of it so far), or a whole frame waiting
    behind one (``payload`` prefixed, ``whole``)."""

    __slots__ = ("atom", "payload", "sent", "whole")

    def __init__(self, payload: memoryview | bytes, atom: str | None, whole: bool) -> None:
        self.payload = payload
        self.atom = atom
        self.whole = whole
        self.sent = 0


class FrameTable:
    """Frame kind -> handler (``handlers``, a plain dict: the reader's lookup is
    on the per-message path), and the handler of a kind it does not know."""

    __slots__ = ("handlers", "unknown")

    def __init__(self, unknown: FrameHandler, handlers: dict[str, FrameHandler]) -> None:
        self.handlers = handlers
        self.unknown = unknown

    def __getitem__(self, kind: str) -> FrameHandler:
        return self.handlers.get(kind, self.unknown)


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
        # Large frames going out in parts, and what waits behind them; the atoms
        # they are for (how many each).
        self.bulk: deque[_Bulk] = deque()
        self.bulk_atoms: dict[str, int] = {}
        # Credit (``_flow``): ours to spend on this peer's atoms, what we owe it
        # for tells it sent (by atom), and its messages held for full atoms.
        self.flows: dict[str, Flow] = {}
        self.due: defaultdict[str, int] = defaultdict(int)
        self.inflows: dict[str, Inflow] = {}
        self.down: str | None = None
        self.tls = False  # it listens with TLS: dialed with the node's client context
        # Components this peer has, by content hash (done, or being shipped).
        self.shipped: dict[str, Shipment] = {}
        self._wake = trio.Event()
        self._drained = trio.Event()
        self._connecting = False

    @property
    def label(self) -> str:
        where = f" at {self.address}" if self.address else ""
        return f"{self.name!r}{where}"

    def backlog(self) -> int:
        """Bytes queued for this peer (what the writer has not sent yet)."""
        if not self.bulk:
            return len(self.out)
        return len(self.out) + sum(len(b.payload) - b.sent for b in self.bulk)

    async def wait_drained(self) -> None:
        if (self.out or self.bulk) and self.down is None:
            await self._drained.wait()

    def kick(self) -> None:
        """Wake the writer (credit is due)."""
        self._wake.set()

    def send(self, frame: Frame, *, urgent: bool = False) -> None:
        """Queue a frame for the writer task (which batches what accumulates).

        ``urgent`` frames (asks and replies, whose sender waits) are written
        straight to the socket when nothing is queued or being written, which
        saves a scheduler pass on each side of a round trip; order is kept because
        everything sent before has already left.
        """
        if self.down is not None:
            raise HostDown(f"host {self.label} is down ({self.down})")
        data = encode(frame)
        if (self.bulk or len(data) > PART + 4) and self._behind(frame, data):
            return
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

    def _behind(self, frame: Frame, data: bytes) -> bool:
        """Queue ``data`` in ``bulk`` if it is large or must not overtake what is
        there (see the module docs); False if it goes the usual way."""
        fields: tuple[Any, ...] = frame
        kind = fields[0]
        atom: str | None = None
        if kind == "tell":
            atom = fields[1]
        elif kind == "ask":
            atom = fields[2]
        large = len(data) > PART + 4
        if not large and (kind in _OVERTAKE or (atom is not None and atom not in self.bulk_atoms)):
            return False
        if large:
            self.bulk.append(_Bulk(memoryview(data)[4:], atom, False))
        else:
            self.bulk.append(_Bulk(data, atom, True))
        if atom is not None:
            self.bulk_atoms[atom] = self.bulk_atoms.get(atom, 0) + 1
        self._wake.set()
        if self.stream is None and not self._connecting and self.address is not None:
            self._connecting = True
            self.node.nursery.start_soon(self._dial)
        return True

    def _next_piece(self) -> bytes:
        """The next of ``bulk`` to write: the whole frames at its head, up to and
        including one part of a large frame."""
        pieces = []
        bulk = self.bulk
        while bulk:
            item = bulk[0]
            if item.whole:
                pieces.append(bytes(item.payload))
                done = True
            else:
                pieces.append(part(memoryview(item.payload), item.sent))
                item.sent += PART
                done = item.sent >= len(item.payload)
            if done:
                bulk.popleft()
                atom = item.atom
                if atom is not None:
                    left = self.bulk_atoms[atom] - 1
                    if left:
                        self.bulk_atoms[atom] = left
                    else:
                        del self.bulk_atoms[atom]
            if not item.whole:
                break
        return b"".join(pieces)

    async def _dial(self) -> None:
        assert self.address is not None
        node = self.node
        try:
            await node.dial(self.address, ssl_context=node.client_context() if self.tls else None)
        except (
            OSError,
            ValueError,
            AuthenticationFailed,
            ProtocolError,
            trio.TooSlowError,
            trio.BrokenResourceError,
        ) as exc:
            self.mark_down(f"could not connect: {exc}")

    def attach(self, stream: trio.abc.Stream, first: bytes = b"") -> bool:
        """Make ``stream`` this peer's connection, ``first`` ahead of what is
        queued; False if it has one already."""
        if self.stream is not None:
            return False
        if first:
            self.out[:0] = first
        self.stream = stream
        # Direct writes only on a plain socket (never around TLS).
        self.fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1
        self._wake.set()
        self.node.nursery.start_soon(self.writer, stream)
        return True

    def mark_down(self, reason: str) -> None:
        if self.down is not None:
            return
        self.down = reason
        self.stream = None
        self.fd = -1
        self.out.clear()
        self.bulk.clear()
        self.bulk_atoms.clear()
        self.due.clear()
        flows = self.flows
        self.flows = {}
        for flow in flows.values():
            if flow.room is not None:
                flow.room.set()  # senders waiting for credit: the host is gone
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
            if not self.out and not self.bulk and not self.due:
                with trio.move_on_after(self.heartbeat_interval) as idle:
                    await self._wake.wait()
                self._wake = trio.Event()
                if not self.out and not self.bulk and not self.due:
                    if not idle.cancelled_caught:
                        continue  # woken by what has been sent since
                    self.out += PING
            if self.stream is not stream:
                return
            if self.due:
                for frame in credit_frames(self.due):
                    self.out += encode(frame)
                self.due.clear()
            data = bytes(self.out)
            self.out.clear()
            if self.bulk:
                data += self._next_piece()
            self.writing = True
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.mark_down(f"connection lost: {exc!r}")
                return
            finally:
                self.writing = False
            if not self.out and not self.bulk:
                self._drained.set()
                self._drained = trio.Event()


class _Liveness:
    """Liveness of one connection's reader (see ``_watchdog``)."""

    __slots__ = ("done", "last", "scope", "timed_out")

    def __init__(self) -> None:
        self.last = trio.current_time()
        self.done = False
        self.timed_out = False
        self.scope = trio.CancelScope()


async def read_frames(
    peer: Peer,
    stream: trio.abc.Stream,
    reader: FrameReader,
    early: list[tuple[Any, ...]],
    table: FrameTable,
) -> None:
    """Hand every frame of ``stream`` to its handler in ``table``, in order, until
    the stream ends; then the peer is down (unless another connection has taken
    over)."""
    reason = "connection closed"
    live = _Liveness()
    try:
        with trio.CancelScope() as live.scope:
            peer.node.nursery.start_soon(_watchdog, peer, live)
            handlers = table.handlers
            for frame in early:
                table[frame[0]](peer, frame)
            receive = _receiver(stream)
            while True:
                data = await receive()
                if not data:
                    break
                live.last = trio.current_time()
                for frame in reader.feed(data):
                    try:
                        handler = handlers[frame[0]]
                    except KeyError:
                        handler = table.unknown
                    handler(peer, frame)
                if peer.due:
                    peer.kick()  # credit for the tells just delivered
        if live.timed_out:
            reason = f"no heartbeat for {peer.heartbeat_timeout} s"
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        reason = f"connection lost: {exc!r}"
    except ProtocolError as exc:
        reason = str(exc)
    except Exception as exc:  # a frame that does not decode: drop the peer
        reason = f"malformed frame: {exc!r}"
        _log.error("placement.bad_frame", host=peer.name, error=repr(exc))
    finally:
        live.done = True
        if peer.stream is stream or peer.stream is None:
            peer.mark_down(reason)
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(stream)


async def _watchdog(peer: Peer, live: _Liveness) -> None:
    """Cancel a reader that has heard nothing for the heartbeat timeout.

    One task per connection that wakes every heartbeat interval, instead of a
    cancel scope per read (which would cost on every message).
    """
    while not live.done:
        await trio.sleep(min(peer.heartbeat_interval, peer.heartbeat_timeout / 2))
        idle = trio.current_time() - live.last
        if not live.done and idle > peer.heartbeat_timeout:
            live.timed_out = True
            live.scope.cancel()
            return


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
