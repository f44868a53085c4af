"""RESP2, the Redis serialisation protocol: an incremental parser and an encoder.

The parser accepts what real clients send: arrays of bulk strings (``*2\\r\\n$3\\r\\nGET...``)
and inline commands (``PING\\r\\n``, what ``redis-cli`` sends for some input and
what a person typing into ``nc`` sends). Every size is bounded, so malformed or
hostile input ends in a :class:`ProtocolError` (reported to the client, then the
connection is closed), never in unbounded buffering or a crash.
"""

from __future__ import annotations

from typing import Union

__all__ = ["Error", "ProtocolError", "Reply", "RespParser", "Simple", "encode"]

MAX_BULK = 512 * 1024 * 1024  # Redis's own proto-max-bulk-len
MAX_ARGS = 1024 * 1024
MAX_INLINE = 64 * 1024
MAX_QUERY_BUFFER = 64 * 1024 * 1024  # unparsed bytes held for one client


class ProtocolError(Exception):
    """The client sent bytes that are not RESP; the connection must be closed."""


class Simple(str):
    """A simple-string reply (``+OK``)."""


class Error(str):
    """An error reply (``-ERR ...``); the text includes the error kind prefix."""


Reply = Union[bytes, int, None, Simple, Error, list["Reply"]]  # noqa: UP007 - runtime alias


class RespParser:
    """Feed bytes in, take complete commands (lists of ``bytes``) out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data
        if len(self._buf) > MAX_QUERY_BUFFER:
            raise ProtocolError("Protocol error: query buffer limit exceeded")

    def commands(self) -> list[list[bytes]]:
        """Every complete command buffered so far (possibly none)."""
        out: list[list[bytes]] = []
        while True:
            cmd = self._one()
            if cmd is None:
                return out
            if cmd:
                out.append(cmd)

    def _line(self, start: int, limit: int) -> tuple[bytes, int] | None:
        end = self._buf.find(b"\r\n", start)
        if end < 0:
            if len(self._buf) - start > limit:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        return bytes(self._buf[start:end]), end + 2

    def _int(self, raw: bytes, what: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise ProtocolError(f"Protocol error: invalid {what}") from None

    def _one(self) -> list[bytes] | None:
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            return None
        if buf[pos] != ord("*"):
            got = self._line(pos, MAX_INLINE)
            if got is None:
                return None
            line, self._pos = got
            return line.split()  # inline command; an empty line yields []
        got = self._line(pos + 1, 32)
        if got is None:
            return None
        count_raw, pos = got
        count = self._int(count_raw, "multibulk length")
        if count > MAX_ARGS:
            raise ProtocolError("Protocol error: invalid multibulk length")
        args: list[bytes] = []
        for _ in range(max(count, 0)):
            if pos >= len(buf):
                return None
            if buf[pos] != ord("$"):
                raise ProtocolError(f"Protocol error: expected '$', got '{chr(buf[pos])}'")
            got = self._line(pos + 1, 32)
            if got is None:
                return None
            size_raw, pos = got
            size = self._int(size_raw, "bulk length")
            if size < 0 or size > MAX_BULK:
                raise ProtocolError("Protocol error: invalid bulk length")
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size : pos + size + 2] != b"\r\n":
                raise ProtocolError("Protocol error: bulk string not terminated by CRLF")
            args.append(bytes(buf[pos : pos + size]))
            pos += size + 2
        self._pos = pos
        return args


def encode(reply: Reply, out: bytearray) -> None:
    """Append the RESP2 encoding of ``reply`` to ``out``."""
    if isinstance(reply, bytes):
        out += b"$%d\r\n%s\r\n" % (len(reply), reply)
    elif isinstance(reply, Simple):
        out += b"+" + reply.encode() + b"\r\n"
    elif isinstance(reply, Error):
        out += b"-" + reply.encode() + b"\r\n"
    elif reply is None:
        out += b"$-1\r\n"
    elif isinstance(reply, bool):
        out += b":1\r\n" if reply else b":0\r\n"
    elif isinstance(reply, int):
        out += b":%d\r\n" % reply
    elif isinstance(reply, list):
        out += b"*%d\r\n" % len(reply)
        for item in reply:
            encode(item, out)
    else:  # pragma: no cover - a bug in a command implementation
        raise TypeError(f"cannot encode {reply!r} as RESP")
