"""RESP, the Redis serialisation protocol: an incremental parser and an encoder.

The parser reads what real clients send, as redis-server 7.0 reads it
(``processMultibulkBuffer`` and ``processInlineBuffer`` in its networking.c):
arrays of bulk strings (``*2\\r\\n$3\\r\\nGET...``), and inline commands
(``PING\\r\\n`` or ``SET k "a b"\\n``, what a person typing into ``nc`` sends),
split with Redis's quoting rules (``sdssplitargs``). Its limits are Redis's:
a bulk string of at most 512 MiB, a count line or inline command of at most
64 KiB, and :data:`MAX_QUERY_BUFFER` bytes held for one client. Malformed or
hostile input ends in a :class:`ProtocolError` whose text is Redis's (the
client gets it, then the connection is closed), never in a crash.

The parser works in time linear in its input: it keeps its place (the command
and the bulk string in progress) between reads instead of parsing the buffer
again from the start, and compacts its buffer only once most of it is consumed.

The encoder writes RESP2, or RESP3 once a connection said ``HELLO 3``.
"""

from __future__ import annotations

import re
from typing import Union

from radon_actors import portable

__all__ = [
    "Error",
    "Map",
    "ProtocolError",
    "Reply",
    "RespParser",
    "Simple",
    "Verbatim",
    "encode",
    "parse_int",
    "split_args",
]

MAX_BULK = 512 * 1024 * 1024  # proto-max-bulk-len
MAX_INLINE = 64 * 1024  # PROTO_INLINE_MAX_SIZE: inline commands and count lines
MAX_MULTIBULK = 2**31 - 1  # INT_MAX
MAX_QUERY_BUFFER = 1024 * 1024 * 1024  # client-query-buffer-limit
_COMPACT = 64 * 1024  # drop consumed bytes once at least this many (and half the buffer)
_FAST = 16 * 1024  # unparsed bytes up to which ``commands`` tries one split first


class ProtocolError(Exception):
    """The client sent bytes that are not RESP; the connection must be closed."""


@portable
class Simple(str):
    """A simple-string reply (``+OK``)."""


@portable
class Error(str):
    """An error reply (``-ERR ...``); the text includes the error kind prefix."""


@portable
class Verbatim(bytes):
    """A bulk string that RESP3 sends as a verbatim string (``INFO``'s text)."""


@portable
class Map(dict["Reply", "Reply"]):
    """A map reply: RESP3 ``%``, a flat array of keys and values in RESP2."""


Reply = Union[bytes, int, None, Simple, Error, list["Reply"], Map]  # noqa: UP007 - runtime alias


_INT = re.compile(rb"-?[1-9][0-9]{0,19}|0")


def parse_int(raw: bytes) -> int | None:
    """``raw`` as a signed 64-bit integer as Redis reads one (``string2ll``): no
    sign but ``-``, no spaces, no leading zeros, no underscores; None otherwise."""
    if _INT.fullmatch(raw) is None:
        return None
    value = int(raw)
    return value if -(2**63) <= value < 2**63 else None


def _count(raw: bytes) -> int | None:
    # Count lines: string2ll, then the caller's range check.
    return parse_int(raw)


_SPACE = b" \t\n\r\x0b\x0c"  # C's isspace
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """Split an inline command as Redis's ``sdssplitargs`` does; None for
    unbalanced quotes (a closing quote must end its argument).

    ``sdssplitargs`` reads a C string: a NUL byte ends the line there."""
    line = line.partition(b"\x00")[0]
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        current = bytearray()
        inq = insq = False
        while True:
            if inq:
                if i >= n:
                    return None
                c = line[i]
                if (
                    c == 0x5C  # backslash
                    and i + 3 < n
                    and line[i + 1] == ord("x")
                    and line[i + 2] in _HEX
                    and line[i + 3] in _HEX
                ):
                    current.append(int(line[i + 2 : i + 4], 16))
                    i += 3
                elif c == 0x5C and i + 1 < n:
                    i += 1
                    current.append(_ESCAPES.get(line[i], line[i]))
                elif c == 0x22:  # closing "
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            elif insq:
                if i >= n:
                    return None
                c = line[i]
                if c == 0x5C and i + 1 < n and line[i + 1] == 0x27:
                    i += 1
                    current.append(0x27)
                elif c == 0x27:  # closing '
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    i += 1
                    break
                else:
                    current.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in b" \n\r\t\x00":
                    break
                if c == 0x22:
                    inq = True
                elif c == 0x27:
                    insq = True
                else:
                    current.append(c)
            i += 1
        args.append(bytes(current))


def _split(data: bytes) -> list[list[bytes]] | None:
    """The commands in ``data`` if it holds nothing but whole multibulk
    commands with plain counts and lengths, in one C-level split (what a
    client sends almost always); None for anything else, which the general
    path then parses (and refuses, if it must).

    An argument that itself holds CR LF splits in two; the length check then
    fails and the general path takes the buffer. Only small buffers try this,
    so a large one is never split twice."""
    if data[0] != 0x2A or not data.endswith(b"\r\n"):  # '*'
        return None
    parts = data.split(b"\r\n")
    last = len(parts) - 1  # parts[last] is the b"" after the final CR LF
    out: list[list[bytes]] = []
    i = 0
    try:
        while i < last:
            head = parts[i]
            count = int(head[1:])
            end = i + 1 + 2 * count
            # Each count must read back as written: the check refuses signs,
            # spaces, underscores and leading zeros, as Redis's parser does.
            if count <= 0 or end > last or head != b"*%d" % count:
                return None
            args = parts[i + 2 : end : 2]
            for length, arg in zip(parts[i + 1 : end : 2], args, strict=True):
                if length != b"$%d" % len(arg):
                    return None
            out.append(args)
            i = end
    except ValueError:
        return None
    return out


class RespParser:
    """Feed bytes in, take complete commands (lists of ``bytes``) out.

    ``max_query_buffer`` bounds the bytes held for one client (Redis's
    ``client-query-buffer-limit``, 1 GiB by default).
    """

    __slots__ = ("_args", "_buf", "_bulk", "_left", "_max", "_pos")

    _fast_split = staticmethod(_split)  # (the tests replace it, to compare)

    def __init__(self, max_query_buffer: int = MAX_QUERY_BUFFER) -> None:
        self._buf = bytearray()
        self._pos = 0  # where parsing resumes
        self._args: list[bytes] | None = None  # the multibulk command in progress
        self._left = 0  # its arguments still to come
        self._bulk = -1  # the length of the bulk string awaited, or -1
        self._max = max_query_buffer

    def feed(self, data: bytes) -> None:
        buf = self._buf
        pos = self._pos
        if pos >= _COMPACT and pos * 2 >= len(buf):
            # Amortised: each byte is moved at most a bounded number of times.
            del buf[:pos]
            self._pos = 0
        buf += data
        if len(buf) - self._pos > self._max:
            raise ProtocolError("Protocol error: query buffer limit exceeded")

    def parse(self, data: bytes) -> list[list[bytes]]:
        """``feed(data)``, then :meth:`commands`: without copying ``data`` when
        nothing is buffered and it holds whole commands (the usual request)."""
        if self._args is None and self._pos == len(self._buf) and 0 < len(data) <= _FAST:
            fast = self._fast_split(data)
            if fast is not None:
                return fast
        self.feed(data)
        return self.commands()

    def commands(self) -> list[list[bytes]]:
        """Every complete command buffered so far (possibly none)."""
        buf = self._buf
        pos = self._pos
        if self._args is None and 0 < len(buf) - pos <= _FAST:
            fast = self._fast_split(bytes(buf[pos:]))
            if fast is not None:
                self._pos = len(buf)
                return fast
        out: list[list[bytes]] = []
        while self._pos < len(buf) or (self._args is not None and self._left == 0):
            if self._args is None:
                if buf[self._pos] == 0x2A:  # '*'
                    if not self._multibulk_header():
                        break
                else:
                    cmd = self._inline()
                    if cmd is None:
                        break
                    if cmd:
                        out.append(cmd)
                    continue
            if not self._bulks():
                break
            args = self._args
            assert args is not None
            self._args = None
            if args:
                out.append(args)
        return out

    def _line(self, start: int, what: str) -> int:
        """The position of the ``\\r`` ending the count line at ``start``, -1 if
        not there yet (Redis looks for ``\\r`` alone)."""
        buf = self._buf
        cr = buf.find(b"\r", start, start + MAX_INLINE + 1)
        if cr < 0 and len(buf) - start > MAX_INLINE:
            raise ProtocolError(f"Protocol error: too big {what} count string")
        return cr

    def _multibulk_header(self) -> bool:
        buf, pos = self._buf, self._pos
        cr = self._line(pos, "mbulk")
        if cr < 0 or cr + 1 >= len(buf):
            return False
        count = _count(bytes(buf[pos + 1 : cr]))
        if count is None or count > MAX_MULTIBULK:
            raise ProtocolError("Protocol error: invalid multibulk length")
        self._pos = cr + 2
        self._args = []
        self._left = max(count, 0)
        return True

    def _bulks(self) -> bool:
        """Read the current command's bulk strings; False if more bytes are needed.

        The loop runs once per argument, so it keeps everything in locals and
        takes the common case (a short, plain length) without the general
        integer parser."""
        buf = self._buf
        args = self._args
        assert args is not None
        find = buf.find
        n = len(buf)
        pos = self._pos
        left = self._left
        size = self._bulk
        try:
            while left:
                if size < 0:
                    if pos >= n:
                        return False
                    cr = find(b"\r", pos, pos + MAX_INLINE + 1)
                    if cr < 0:
                        if n - pos > MAX_INLINE:
                            raise ProtocolError("Protocol error: too big bulk count string")
                        return False
                    if cr + 1 >= n:
                        return False
                    if buf[pos] != 0x24:  # '$'
                        raise ProtocolError(f"Protocol error: expected '$', got '{chr(buf[pos])}'")
                    digits = buf[pos + 1 : cr]
                    if (
                        0 < len(digits) < 10
                        and digits.isdigit()
                        and (digits[0] != 0x30 or len(digits) == 1)
                    ):
                        size = int(digits)
                    else:
                        checked = _count(bytes(digits))
                        if checked is None or checked < 0 or checked > MAX_BULK:
                            raise ProtocolError("Protocol error: invalid bulk length")
                        size = checked
                    pos = cr + 2
                if n - pos < size + 2:
                    return False
                # As Redis: the two bytes after the payload are skipped, not checked.
                args.append(bytes(buf[pos : pos + size]))
                pos += size + 2
                size = -1
                left -= 1
            return True
        finally:
            self._pos = pos
            self._left = left
            self._bulk = size

    def _inline(self) -> list[bytes] | None:
        buf, pos = self._buf, self._pos
        nl = buf.find(b"\n", pos, pos + MAX_INLINE + 1)
        # Redis finds the newline with strchr, which stops at a NUL byte: a line
        # with one before its newline stays incomplete (until it is too big).
        if nl < 0 or buf.find(b"\x00", pos, nl) >= 0:
            if len(buf) - pos > MAX_INLINE:
                raise ProtocolError("Protocol error: too big inline request")
            return None
        end = nl - 1 if nl > pos and buf[nl - 1] == 0x0D else nl
        args = split_args(bytes(buf[pos:end]))
        if args is None:
            raise ProtocolError("Protocol error: unbalanced quotes in request")
        self._pos = nl + 1
        return args


def encode(reply: Reply, out: bytearray, proto: int = 2) -> None:
    """Append the encoding of ``reply`` to ``out`` in RESP2 or, with ``proto=3``, RESP3."""
    if isinstance(reply, bytes):
        if proto == 3 and isinstance(reply, Verbatim):
            out += b"=%d\r\ntxt:%s\r\n" % (len(reply) + 4, reply)
        else:
            out += b"$%d\r\n%s\r\n" % (len(reply), reply)
    elif isinstance(reply, Simple):
        out += b"+" + reply.encode() + b"\r\n"
    elif isinstance(reply, Error):
        out += b"-" + reply.encode() + b"\r\n"
    elif reply is None:
        out += b"_\r\n" if proto == 3 else b"$-1\r\n"
    elif isinstance(reply, bool):
        out += b":1\r\n" if reply else b":0\r\n"
    elif isinstance(reply, int):
        out += b":%d\r\n" % reply
    elif isinstance(reply, Map):
        if proto == 3:
            out += b"%%%d\r\n" % len(reply)
        else:
            out += b"*%d\r\n" % (2 * len(reply))
        for key, value in reply.items():
            encode(key, out, proto)
            encode(value, out, proto)
    elif isinstance(reply, list):
        out += b"*%d\r\n" % len(reply)
        for item in reply:
            encode(item, out, proto)
    else:  # pragma: no cover - a bug in a command implementation
        raise TypeError(f"cannot encode {reply!r} as RESP")
