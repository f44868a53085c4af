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
        self._buf = b""

    def feed(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data
        if len(self._buf) > MAX_QUERY_BUFFER:
            raise ProtocolError("Protocol error: query buffer limit exceeded")

    def commands(self) -> list[list[bytes]]:
        """Every complete command buffered so far (possibly none)."""
        out: list[list[bytes]] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        while pos < end:
            got = self._one(buf, pos)
            if got is None:
                break
            cmd, pos = got
            if cmd:
                out.append(cmd)
        self._buf = buf[pos:]
        return out

    @staticmethod
    def _int(raw: bytes, what: str) -> int:
        try:
            return int(raw)
        except ValueError:
            raise ProtocolError(f"Protocol error: invalid {what}") from None

    def _one(self, buf: bytes, pos: int) -> tuple[list[bytes], int] | None:
        if buf[pos] != 42:  # not '*': an inline command
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                if len(buf) - pos > MAX_INLINE:
                    raise ProtocolError("Protocol error: too big inline request")
                return None
            return buf[pos:nl].split(), nl + 2  # an empty line yields []
        nl = buf.find(b"\r\n", pos + 1)
        if nl < 0:
            if len(buf) - pos > 32:
                raise ProtocolError("Protocol error: invalid multibulk length")
            return None
        count = self._int(buf[pos + 1 : nl], "multibulk length")
        if count > MAX_ARGS:
            raise ProtocolError("Protocol error: invalid multibulk length")
        pos = nl + 2
        args: list[bytes] = []
        end = len(buf)
        for _ in range(max(count, 0)):
            if pos >= end:
                return None
            if buf[pos] != 36:  # '$'
                raise ProtocolError(f"Protocol error: expected '$', got '{chr(buf[pos])}'")
            nl = buf.find(b"\r\n", pos + 1)
            if nl < 0:
                if end - pos > 32:
                    raise ProtocolError("Protocol error: invalid bulk length")
                return None
            size = self._int(buf[pos + 1 : nl], "bulk length")
            if size < 0 or size > MAX_BULK:
                raise ProtocolError("Protocol error: invalid bulk length")
            start = nl + 2
            stop = start + size
            if end < stop + 2:
                return None
            if buf[stop : stop + 2] != b"\r\n":
                raise ProtocolError("Protocol error: bulk string not terminated by CRLF")
            args.append(buf[start:stop])
            pos = stop + 2
        return args, pos


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
