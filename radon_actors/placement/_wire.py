"""The wire protocol between hosts: handshake, authentication and frames.

A connection starts with a fixed-size, pickle-free handshake::

    client -> server   MAGIC | version (u16) | client nonce (32 bytes)
    server -> client   MAGIC | version (u16) | server nonce (32) | server proof (32)
    client -> server   client proof (32)

``server proof = HMAC-SHA256(secret, b"radon-server" | client nonce | server nonce)``
and ``client proof = HMAC-SHA256(secret, b"radon-client" | server nonce | client
nonce)``: each side proves it knows the cluster secret without sending it, and a
recorded handshake cannot be replayed (fresh nonces). Only once the server has
checked the client's proof does it read a frame, so an unauthenticated peer never
reaches ``pickle``.

After the handshake each direction is a stream of frames: a 4-byte big-endian
length and a pickled tuple ``(kind, ...)`` (the types of the frames are in
``_frames``; a frame class is pickled as the plain tuple of its fields).

A frame larger than :data:`PART` travels in *parts*, so that it never holds up
the traffic behind it on the connection: each part has its own 4-byte header
with the :data:`MORE` bit set (the frame goes on in a later part) or the
:data:`LAST` bit (this part ends it), and whole frames go between parts. One
frame at a time is sent in parts on a connection, so parts need no stream id;
the reader joins them and decodes the frame once the last part is in. The
arguments of asks and requests
travel as a nested pickle inside the frame, so one whose arguments cannot be
unpickled (a class missing on this host) is still routed and answered with a
clear error; tells are pickled in one go (they are the throughput path), and
one that cannot be unpickled becomes an ``undecodable`` frame (a logged dead
letter).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import pickle
import struct
import sys
from typing import Any

import trio

from ._errors import AuthenticationFailed, MessageTooLarge, ProtocolError
from ._frames import Frame, Undecodable

__all__ = [
    "MAGIC",
    "MAX_MESSAGE",
    "PART",
    "VERSION",
    "FrameReader",
    "check_size",
    "client_handshake",
    "encode",
    "part",
    "server_handshake",
    "too_large",
]

MAGIC = b"RADONwp\x00"
VERSION = 2  # 2: a `peers` row says whether the host listens with TLS
NONCE = 32
MAC = 32
MAX_FRAME = 1 << 28  # 256 MiB: larger frames are a protocol error
MAX_MESSAGE = MAX_FRAME - (1 << 16)  # a message's payload, with room for its frame
PART = 1 << 18  # 256 KiB: frames above this size go in parts of this size
MORE = 1 << 31  # header flag: a part of a larger frame, which goes on
LAST = 1 << 30  # header flag: the last part of a larger frame
_FLAGS = MORE | LAST
HANDSHAKE_TIMEOUT = 5.0
_HEADER = len(MAGIC) + 2
PICKLE_PROTOCOL = 5
_unpack_size = struct.Struct(">I").unpack_from


def _mac(secret: bytes, label: bytes, a: bytes, b: bytes) -> bytes:
    return hmac.new(secret, label + a + b, hashlib.sha256).digest()


async def _receive_exactly(stream: trio.abc.ReceiveStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.receive_some(n - len(buf))
        if not chunk:
            raise ProtocolError(f"connection closed during the handshake ({len(buf)}/{n} bytes)")
        buf += chunk
    return bytes(buf)


def _check_header(header: bytes) -> None:
    if header[: len(MAGIC)] != MAGIC:
        raise ProtocolError("peer does not speak the radon-actors wire protocol (bad magic)")
    version = int.from_bytes(header[len(MAGIC) :], "big")
    if version != VERSION:
        raise ProtocolError(
            f"peer speaks wire protocol version {version}, this host speaks {VERSION}; "
            "run the same radon-actors version on every host"
        )


async def client_handshake(stream: trio.abc.Stream, secret: bytes) -> None:
    """Prove our secret to the server and check the server's proof."""
    client_nonce = os.urandom(NONCE)
    await stream.send_all(MAGIC + VERSION.to_bytes(2, "big") + client_nonce)
    with trio.fail_after(HANDSHAKE_TIMEOUT):
        answer = await _receive_exactly(stream, _HEADER + NONCE + MAC)
    _check_header(answer[:_HEADER])
    server_nonce = answer[_HEADER : _HEADER + NONCE]
    proof = answer[_HEADER + NONCE :]
    if not hmac.compare_digest(proof, _mac(secret, b"radon-server", client_nonce, server_nonce)):
        raise AuthenticationFailed(
            "the host did not prove it knows the cluster secret; check that both sides use "
            "the same secret file"
        )
    await stream.send_all(_mac(secret, b"radon-client", server_nonce, client_nonce))


async def server_handshake(stream: trio.abc.Stream, secret: bytes) -> None:
    """Check a connecting client's proof; raise before any frame is read if it fails."""
    with trio.fail_after(HANDSHAKE_TIMEOUT):
        hello = await _receive_exactly(stream, _HEADER + NONCE)
        _check_header(hello[:_HEADER])
        client_nonce = hello[_HEADER:]
        server_nonce = os.urandom(NONCE)
        await stream.send_all(
            MAGIC
            + VERSION.to_bytes(2, "big")
            + server_nonce
            + _mac(secret, b"radon-server", client_nonce, server_nonce)
        )
        proof = await _receive_exactly(stream, MAC)
    if not hmac.compare_digest(proof, _mac(secret, b"radon-client", server_nonce, client_nonce)):
        raise AuthenticationFailed("peer failed the cluster-secret challenge")


def encode(frame: Frame) -> bytes:
    """One frame: length prefix and its fields pickled as a plain tuple (``[:]``
    of a plain tuple is the tuple itself). Raises :class:`MessageTooLarge` for a
    frame the peer would refuse, before anything is sent.

    One longer than ``PART + 4`` must go in parts (see :func:`part`)."""
    data = pickle.dumps(frame[:], PICKLE_PROTOCOL)
    if len(data) > MAX_FRAME:
        raise too_large(len(data), f"a {frame[0]!r} frame")
    return len(data).to_bytes(4, "big") + data


def part(payload: memoryview, start: int) -> bytes:
    """The part of ``payload`` (a frame without its prefix) that begins at
    ``start``, with its header."""
    chunk = payload[start : start + PART]
    flag = LAST if start + PART >= len(payload) else MORE
    return (len(chunk) | flag).to_bytes(4, "big") + chunk


_modules: set[str] | None = None


def _component_modules() -> set[str]:
    """The sandbox's set of component modules (the same set object for the
    process's life, filled in place), once the sandbox is loaded."""
    global _modules
    if _modules is None:
        engine = sys.modules.get("radon_actors.sandbox._engine")
        if engine is None:
            return _NONE
        _modules = engine.component_modules()
    return _modules


_NONE: set[str] = set()


class _GuardedUnpickler(pickle.Unpickler):
    """Unpickles without importing the modules of sandboxed components: a class
    of one that this process has not imported natively becomes a placeholder
    that builds a :class:`~radon_actors.Record` (so a message holding a record
    of a sandboxed atom's module reaches it, as a record, and that module's code
    never runs natively here)."""

    def find_class(self, module: str, name: str) -> Any:
        if module not in sys.modules and module in _component_modules():
            from ..sandbox.host import placeholder

            return placeholder(module, name)
        return super().find_class(module, name)


# The opcode through which a protocol 4/5 pickle names a class or function (it
# never uses GLOBAL): a pickle without this byte imports nothing.
_STACK_GLOBAL = b"\x93"


def loads(
    data: bytes | bytearray,
    start: int = 0,
    end: int | None = None,
    view: memoryview | None = None,
) -> Any:
    """``pickle.loads`` of ``data[start:end]`` (``view``: a memoryview of
    ``data`` the caller holds), a pickle a peer sent: guarded (see
    ``_GuardedUnpickler``) once this process runs sandboxed components, unless
    the pickle names no class or function at all (most frames: plain data),
    which cannot import anything."""
    modules = _modules if _modules is not None else _component_modules()
    if end is None:
        end = len(data)
    if not modules or data.find(_STACK_GLOBAL, start, end) < 0:
        if view is None:
            return pickle.loads(data if start == 0 else memoryview(data)[start:end])
        return pickle.loads(view[start:end])
    chunk = (view if view is not None else memoryview(data))[start:end]
    return _GuardedUnpickler(io.BytesIO(chunk)).load()


def check_size(blob: bytes, what: str) -> None:
    """Raise :class:`MessageTooLarge` if ``blob`` (a message's pickled arguments or
    result) cannot travel in one frame."""
    if len(blob) > MAX_MESSAGE:
        raise too_large(len(blob), what)


def too_large(size: int, what: str) -> MessageTooLarge:
    return MessageTooLarge(
        f"{what} of {size:,} bytes is over the {MAX_MESSAGE:,}-byte limit of a message "
        "between hosts; send less at once, or a reference to where the data is"
    )


def _undecodable(exc: Exception) -> Undecodable:
    return Undecodable("undecodable", repr(exc))


class FrameReader:
    """Splits a byte stream into decoded frames (joining the parts of a large one)."""

    __slots__ = ("_buf", "_parts")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._parts: bytearray | None = None  # the frame being received in parts

    def feed(self, data: bytes | bytearray) -> list[tuple[Any, ...]]:
        """The whole frames ``data`` completes, as decoded tuples, in order."""
        buf = self._buf
        # The sandbox's component modules: frames that name a class or function
        # are unpickled guarded once there are any (see ``loads``).
        modules = _modules if _modules is not None else _component_modules()
        if not buf and len(data) >= 4:
            size = _unpack_size(data)[0]
            if size + 4 == len(data) and size <= PART:
                # Exactly one whole frame, as one read brings an idle connection's
                # message: no buffering.
                try:
                    if not modules or data.find(_STACK_GLOBAL, 4) < 0:  # loads(), inline
                        return [pickle.loads(memoryview(data)[4:])]
                    return [loads(data, 4)]
                except Exception as exc:
                    return [_undecodable(exc)]
        buf += data
        frames: list[tuple[Any, ...]] = []
        pos = 0
        end = len(buf)
        with memoryview(buf) as view:
            while end - pos >= 4:
                size = _unpack_size(view, pos)[0]
                if size > PART:
                    flags = size & _FLAGS
                    size ^= flags
                    if not flags or flags == _FLAGS or size > PART:
                        raise ProtocolError(
                            f"frame of {size} bytes exceeds the {PART}-byte limit of a frame "
                            "sent whole (larger ones come in parts)"
                        )
                    if end - pos - 4 < size:
                        break
                    frame = self._part(view[pos + 4 : pos + 4 + size], flags == LAST)
                    if frame is not None:
                        frames.append(frame)
                    pos += 4 + size
                    continue
                if end - pos - 4 < size:
                    break
                try:
                    stop = pos + 4 + size
                    if not modules or buf.find(_STACK_GLOBAL, pos + 4, stop) < 0:
                        frames.append(pickle.loads(view[pos + 4 : stop]))  # loads(), inline
                    else:
                        frames.append(loads(buf, pos + 4, stop, view))
                except Exception as exc:  # e.g. a tell of a class missing here
                    frames.append(_undecodable(exc))
                pos += 4 + size
        if pos:
            del buf[:pos]
        return frames

    def _part(self, chunk: memoryview, last: bool) -> tuple[Any, ...] | None:
        """Add a part; the decoded frame once ``last`` completes it."""
        parts = self._parts
        if parts is None:
            parts = self._parts = bytearray()
        parts += chunk
        if len(parts) > MAX_FRAME:
            raise ProtocolError(f"a frame in parts exceeds the {MAX_FRAME}-byte limit")
        if not last:
            return None
        self._parts = None
        if len(parts) <= PART:
            raise ProtocolError("a frame in parts no larger than one part")
        try:
            frame: tuple[Any, ...] = loads(parts)
        except Exception as exc:
            return _undecodable(exc)
        return frame
