"""The data commands, as pure functions over a key view, with Redis 7.0's semantics.

A command reads and writes through a :class:`View` and returns its reply. The
same code runs inside a shard (on the shard's own table) and inside the
transaction coordinator (on values the shards returned under lock), which is
what keeps transactional and plain commands behaving identically.

Values are ``bytes``; an entry is ``(value, expires_at)`` with ``expires_at`` an
absolute time in milliseconds of the store's clock, or ``None``. Each command
follows redis-server 7.0's ``t_string.c``/``expire.c``/``db.c``: argument
parsing (integers as ``string2ll`` reads them), option conflicts, error texts,
and the order in which it checks things, so that replies match a real Redis
byte for byte (``tests/apps/test_kvstore_parity.py`` compares them).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Protocol

from ._resp import Error, Reply, Simple, parse_int

__all__ = [
    "ARITIES",
    "OK",
    "glob_match",
    "unknown_command",
    "WRITES",
    "CommandError",
    "Entry",
    "View",
    "check_arity",
    "execute",
    "is_data_command",
    "keys_of",
]

Entry = tuple[bytes, int | None]

OK = Simple("OK")
WRONG_ARGS = "ERR wrong number of arguments for '{}' command"
NOT_INT = Error("ERR value is not an integer or out of range")
NOT_FLOAT = Error("ERR value is not a valid float")
SYNTAX = Error("ERR syntax error")
NO_KEY = Error("ERR no such key")
MAX_STRING = 512 * 1024 * 1024  # proto-max-bulk-len: the largest value SETRANGE/APPEND make
_LLONG_MAX = 2**63 - 1
_LLONG_MIN = -(2**63)


class View(Protocol):
    def get(self, key: bytes) -> Entry | None: ...
    def put(self, key: bytes, entry: Entry) -> None: ...
    def delete(self, key: bytes) -> bool: ...


class CommandError(Exception):
    """Raised by a command to reply with an error (nothing was written)."""


def _int(raw: bytes) -> int:
    value = parse_int(raw)
    if value is None:
        raise CommandError(NOT_INT)
    return value


def _live(view: View, key: bytes, now: int) -> Entry | None:
    entry = view.get(key)
    if entry is not None and entry[1] is not None and entry[1] <= now:
        view.delete(key)  # lazily expire, as Redis does
        return None
    return entry


def _invalid_expire(command: str) -> CommandError:
    return CommandError(Error(f"ERR invalid expire time in '{command}' command"))


def _when(amount: int, unit_ms: int, absolute: bool, now: int, command: str) -> int:
    """An expiry argument as an absolute time in ms, with Redis's range checks."""
    if amount <= 0 or (unit_ms == 1000 and amount > _LLONG_MAX // 1000):
        raise _invalid_expire(command)
    when = amount * unit_ms
    if not absolute:
        when += now
    if when <= 0 or when > _LLONG_MAX:
        raise _invalid_expire(command)
    return when


# -- strings -----------------------------------------------------------------
def _get(view: View, args: list[bytes], now: int) -> Reply:
    entry = _live(view, args[0], now)
    return None if entry is None else entry[0]


_EXPIRE_OPTIONS = {
    b"EX": (1000, False),
    b"PX": (1, False),
    b"EXAT": (1000, True),
    b"PXAT": (1, True),
}


def _set(view: View, args: list[bytes], now: int) -> Reply:
    """``SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]``."""
    key, value = args[0], args[1]
    nx = xx = get = keep_ttl = False
    expire: tuple[bytes, bytes] | None = None
    i = 2
    while i < len(args):
        # As parseExtendedStringArgumentsOrReply: an option may repeat (the last
        # expiry wins), but not meet one it excludes.
        opt = args[i].upper()
        if opt == b"NX" and not xx:
            nx = True
        elif opt == b"XX" and not nx:
            xx = True
        elif opt == b"GET":
            get = True
        elif opt == b"KEEPTTL" and expire is None:
            keep_ttl = True
        elif (
            opt in _EXPIRE_OPTIONS
            and (expire is None or expire[0] == opt)
            and not keep_ttl
            and i + 1 < len(args)
        ):
            expire = (opt, args[i + 1])
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    when: int | None = None
    if expire is not None:
        unit, absolute = _EXPIRE_OPTIONS[expire[0]]
        when = _when(_int(expire[1]), unit, absolute, now, "set")
    old = _live(view, key, now)
    reply: Reply = (None if old is None else old[0]) if get else OK
    if (nx and old is not None) or (xx and old is None):
        return reply if get else None
    if keep_ttl and old is not None:
        when = old[1]
    view.put(key, (value, when))
    return reply


def _setnx(view: View, args: list[bytes], now: int) -> Reply:
    if _live(view, args[0], now) is not None:
        return 0
    view.put(args[0], (args[1], None))
    return 1


def _setex(unit: int, command: str) -> _Impl:
    def setex(view: View, args: list[bytes], now: int) -> Reply:
        when = _when(_int(args[1]), unit, False, now, command)
        view.put(args[0], (args[2], when))
        return OK

    return setex


def _getset(view: View, args: list[bytes], now: int) -> Reply:
    old = _live(view, args[0], now)
    view.put(args[0], (args[1], None))
    return None if old is None else old[0]


def _getdel(view: View, args: list[bytes], now: int) -> Reply:
    old = _live(view, args[0], now)
    if old is None:
        return None
    view.delete(args[0])
    return old[0]


def _getex(view: View, args: list[bytes], now: int) -> Reply:
    """``GETEX key [EX s|PX ms|EXAT t|PXAT t|PERSIST]``."""
    key = args[0]
    expire: tuple[bytes, bytes] | None = None
    persist = False
    i = 1
    while i < len(args):
        opt = args[i].upper()
        if (
            opt in _EXPIRE_OPTIONS
            and (expire is None or expire[0] == opt)
            and not persist
            and i + 1 < len(args)
        ):
            expire = (opt, args[i + 1])
            i += 2
        elif opt == b"PERSIST" and expire is None:
            persist = True
            i += 1
        else:
            raise CommandError(SYNTAX)
    when: int | None = None
    if expire is not None:
        unit, absolute = _EXPIRE_OPTIONS[expire[0]]
        when = _when(_int(expire[1]), unit, absolute, now, "getex")
    entry = _live(view, key, now)
    if entry is None:
        return None
    if expire is not None:
        assert when is not None
        if when <= now:
            view.delete(key)
        else:
            view.put(key, (entry[0], when))
    elif persist and entry[1] is not None:
        view.put(key, (entry[0], None))
    return entry[0]


def _incrby(view: View, key: bytes, by: int, now: int) -> Reply:
    old = _live(view, key, now)
    current = 0 if old is None else _int(old[0])
    new = current + by
    if not _LLONG_MIN <= new <= _LLONG_MAX:
        raise CommandError(Error("ERR increment or decrement would overflow"))
    view.put(key, (b"%d" % new, None if old is None else old[1]))
    return new


def _decrby(view: View, args: list[bytes], now: int) -> Reply:
    by = _int(args[1])
    if by == _LLONG_MIN:
        raise CommandError(Error("ERR decrement would overflow"))
    return _incrby(view, args[0], -by, now)


_FLOAT_CONTEXT = decimal.Context(prec=120, Emax=4933, Emin=-4950)  # long double range


def _float(raw: bytes) -> decimal.Decimal:
    # As strtold via string2ld: no leading space, nothing after the number.
    text = raw.decode("latin-1")
    if not text or text[0].isspace() or text[-1].isspace() or "_" in text:
        raise CommandError(NOT_FLOAT)
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise CommandError(NOT_FLOAT) from None
    if value.is_nan():
        raise CommandError(NOT_FLOAT)
    return value


def _incrbyfloat(view: View, args: list[bytes], now: int) -> Reply:
    """Decimal arithmetic, printed as Redis prints a long double (``%.17Lf``, trailing
    zeros trimmed): the same text for the decimal inputs people send."""
    old = _live(view, args[0], now)
    current = decimal.Decimal(0) if old is None else _float(old[0])
    increment = _float(args[1])
    total = _FLOAT_CONTEXT.add(current, increment)
    if not total.is_finite():
        raise CommandError(Error("ERR increment would produce NaN or Infinity"))
    text = f"{total.quantize(decimal.Decimal(1).scaleb(-17), context=_FLOAT_CONTEXT):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    value = text.encode()
    view.put(args[0], (value, None if old is None else old[1]))
    return value


def _append(view: View, args: list[bytes], now: int) -> Reply:
    old = _live(view, args[0], now)
    if old is None:
        view.put(args[0], (args[1], None))
        return len(args[1])
    if len(old[0]) + len(args[1]) > MAX_STRING:
        raise CommandError(Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
    value = old[0] + args[1]
    view.put(args[0], (value, old[1]))
    return len(value)


def _strlen(view: View, args: list[bytes], now: int) -> Reply:
    entry = _live(view, args[0], now)
    return 0 if entry is None else len(entry[0])


def _getrange(view: View, args: list[bytes], now: int) -> Reply:
    start, end = _int(args[1]), _int(args[2])
    entry = _live(view, args[0], now)
    if entry is None:
        return b""
    value = entry[0]
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(n + start, 0)
    if end < 0:
        end = max(n + end, 0)
    end = min(end, n - 1)
    if start > end or n == 0:
        return b""
    return value[start : end + 1]


def _setrange(view: View, args: list[bytes], now: int) -> Reply:
    offset = _int(args[1])
    if offset < 0:
        raise CommandError(Error("ERR offset is out of range"))
    patch = args[2]
    entry = _live(view, args[0], now)
    if entry is None:
        if not patch:
            return 0
        value, when = b"", None
    else:
        value, when = entry
        if not patch:
            return len(value)
    if offset + len(patch) > MAX_STRING:
        raise CommandError(Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))
    if len(value) < offset:
        value += b"\x00" * (offset - len(value))
    value = value[:offset] + patch + value[offset + len(patch) :]
    view.put(args[0], (value, when))
    return len(value)


# -- keys ---------------------------------------------------------------------
def _del(view: View, args: list[bytes], now: int) -> Reply:
    return sum(1 for key in args if _live(view, key, now) is not None and view.delete(key))


def _exists(view: View, args: list[bytes], now: int) -> Reply:
    # Counts a key named twice twice, as Redis does.
    return sum(1 for key in args if _live(view, key, now) is not None)


def _type(view: View, args: list[bytes], now: int) -> Reply:
    return Simple("none" if _live(view, args[0], now) is None else "string")


def _expire(unit: int, absolute: bool, command: str) -> _Impl:
    def expire(view: View, args: list[bytes], now: int) -> Reply:
        """``EXPIRE key t [NX|XX|GT|LT]`` and its PEXPIRE/EXPIREAT/PEXPIREAT kin
        (options are checked before the time, as Redis does)."""
        nx = xx = gt = lt = False
        for raw in args[2:]:
            opt = raw.upper()
            if opt == b"NX":
                nx = True
            elif opt == b"XX":
                xx = True
            elif opt == b"GT":
                gt = True
            elif opt == b"LT":
                lt = True
            else:
                raise CommandError(Error(f"ERR Unsupported option {raw.decode(errors='replace')}"))
        if nx and (xx or gt or lt):
            raise CommandError(
                Error("ERR NX and XX, GT or LT options at the same time are not compatible")
            )
        if gt and lt:
            raise CommandError(Error("ERR GT and LT options at the same time are not compatible"))
        amount = _int(args[1])
        # C's division truncates: LLONG_MIN / 1000 is -(2**63 // 1000).
        if amount > _LLONG_MAX // unit or amount < -(2**63 // unit):
            raise _invalid_expire(command)
        when = amount * unit
        if not absolute:
            if when > _LLONG_MAX - now:
                raise _invalid_expire(command)
            when += now
        entry = _live(view, args[0], now)
        if entry is None:
            return 0
        current = entry[1]
        if (
            (nx and current is not None)
            or (xx and current is None)
            or (gt and (current is None or when <= current))
            or (lt and current is not None and when >= current)
        ):
            return 0
        if when <= now:
            view.delete(args[0])
        else:
            view.put(args[0], (entry[0], when))
        return 1

    return expire


def _ttl(unit: int, absolute: bool) -> _Impl:
    def ttl(view: View, args: list[bytes], now: int) -> Reply:
        entry = _live(view, args[0], now)
        if entry is None:
            return -2
        if entry[1] is None:
            return -1
        value = entry[1] if absolute else max(entry[1] - now, 0)
        return value if unit == 1 else (value + 500) // 1000

    return ttl


def _persist(view: View, args: list[bytes], now: int) -> Reply:
    entry = _live(view, args[0], now)
    if entry is None or entry[1] is None:
        return 0
    view.put(args[0], (entry[0], None))
    return 1


def _touch(view: View, args: list[bytes], now: int) -> Reply:
    return sum(1 for key in args if _live(view, key, now) is not None)


def _rename(nx: bool) -> _Impl:
    def rename(view: View, args: list[bytes], now: int) -> Reply:
        src, dst = args[0], args[1]
        entry = _live(view, src, now)
        if entry is None:
            raise CommandError(NO_KEY)
        if src == dst:
            return 0 if nx else OK
        if nx and _live(view, dst, now) is not None:
            return 0
        view.delete(src)
        view.put(dst, entry)
        return 1 if nx else OK

    return rename


def _copy(view: View, args: list[bytes], now: int) -> Reply:
    """``COPY source destination [DB 0] [REPLACE]`` (one database here)."""
    src, dst = args[0], args[1]
    replace = False
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"REPLACE":
            replace = True
            i += 1
        elif opt == b"DB" and i + 1 < len(args):
            db = _int(args[i + 1])
            if db != 0:
                raise CommandError(Error("ERR DB index is out of range"))
            i += 2
        else:
            raise CommandError(SYNTAX)
    if src == dst:
        raise CommandError(Error("ERR source and destination objects are the same"))
    entry = _live(view, src, now)
    if entry is None:
        return 0
    if _live(view, dst, now) is not None and not replace:
        return 0
    view.put(dst, entry)
    return 1


def _msetnx(view: View, args: list[bytes], now: int) -> Reply:
    pairs = list(zip(args[::2], args[1::2], strict=True))
    if any(_live(view, key, now) is not None for key, _ in pairs):
        return 0
    for key, value in pairs:
        view.put(key, (value, None))
    return 1


def _mset(view: View, args: list[bytes], now: int) -> Reply:
    for key, value in zip(args[::2], args[1::2], strict=True):
        view.put(key, (value, None))
    return OK


def _mget(view: View, args: list[bytes], now: int) -> Reply:
    return [_get(view, [key], now) for key in args]


_Impl = Callable[[View, list[bytes], int], Reply]


class _Spec:
    __slots__ = ("arity", "first", "impl", "last", "step", "write")

    def __init__(
        self, impl: _Impl, arity: int, write: bool, keys: tuple[int, int, int] = (0, 0, 1)
    ) -> None:
        self.impl = impl
        self.arity = arity  # Redis's: the name included; negative means "at least"
        self.write = write
        self.first, self.last, self.step = keys  # over args; last -1: to the end


_ALL = (0, -1, 1)
_TABLE: dict[bytes, _Spec] = {
    b"GET": _Spec(_get, 2, False),
    b"SET": _Spec(_set, -3, True),
    b"SETNX": _Spec(_setnx, 3, True),
    b"SETEX": _Spec(_setex(1000, "setex"), 4, True),
    b"PSETEX": _Spec(_setex(1, "psetex"), 4, True),
    b"GETSET": _Spec(_getset, 3, True),
    b"GETDEL": _Spec(_getdel, 2, True),
    b"GETEX": _Spec(_getex, -2, True),
    b"MGET": _Spec(_mget, -2, False, _ALL),
    b"MSET": _Spec(_mset, -3, True, (0, -1, 2)),
    b"MSETNX": _Spec(_msetnx, -3, True, (0, -1, 2)),
    b"INCR": _Spec(lambda v, a, n: _incrby(v, a[0], 1, n), 2, True),
    b"DECR": _Spec(lambda v, a, n: _incrby(v, a[0], -1, n), 2, True),
    b"INCRBY": _Spec(lambda v, a, n: _incrby(v, a[0], _int(a[1]), n), 3, True),
    b"DECRBY": _Spec(_decrby, 3, True),
    b"INCRBYFLOAT": _Spec(_incrbyfloat, 3, True),
    b"APPEND": _Spec(_append, 3, True),
    b"STRLEN": _Spec(_strlen, 2, False),
    b"GETRANGE": _Spec(_getrange, 4, False),
    b"SUBSTR": _Spec(_getrange, 4, False),
    b"SETRANGE": _Spec(_setrange, 4, True),
    b"DEL": _Spec(_del, -2, True, _ALL),
    b"UNLINK": _Spec(_del, -2, True, _ALL),
    b"EXISTS": _Spec(_exists, -2, False, _ALL),
    b"TOUCH": _Spec(_touch, -2, False, _ALL),
    b"TYPE": _Spec(_type, 2, False),
    b"EXPIRE": _Spec(_expire(1000, False, "expire"), -3, True),
    b"PEXPIRE": _Spec(_expire(1, False, "pexpire"), -3, True),
    b"EXPIREAT": _Spec(_expire(1000, True, "expireat"), -3, True),
    b"PEXPIREAT": _Spec(_expire(1, True, "pexpireat"), -3, True),
    b"TTL": _Spec(_ttl(1000, False), 2, False),
    b"PTTL": _Spec(_ttl(1, False), 2, False),
    b"EXPIRETIME": _Spec(_ttl(1000, True), 2, False),
    b"PEXPIRETIME": _Spec(_ttl(1, True), 2, False),
    b"PERSIST": _Spec(_persist, 2, True),
    b"RENAME": _Spec(_rename(False), 3, True, (0, 1, 1)),
    b"RENAMENX": _Spec(_rename(True), 3, True, (0, 1, 1)),
    b"COPY": _Spec(_copy, -3, True, (0, 1, 1)),
}

# Commands that may write (replicated by the primary, locked by transactions).
WRITES = frozenset(name for name, spec in _TABLE.items() if spec.write)

ARITIES: dict[bytes, int] = {name: spec.arity for name, spec in _TABLE.items()}
"""Every data command and its arity as Redis counts it (for COMMAND's answers)."""


def unknown_command(command: list[bytes]) -> Error:
    """Redis 7.0's reply to a command it does not know, byte for byte (its first
    arguments quoted, 128 characters at most, newlines made spaces)."""
    shown = ""
    for arg in command[1:]:
        if len(shown) >= 128:
            break
        shown += "'" + arg.decode("latin-1")[: 128 - len(shown)] + "' "
    name = command[0].decode("latin-1")[:128]
    text = f"ERR unknown command '{name}', with args beginning with: {shown}"
    return Error(text.replace("\r", " ").replace("\n", " "))


def check_arity(name: bytes, argc: int) -> Error | None:
    """The Redis error for a wrong argument count (``argc`` includes the name)."""
    spec = _TABLE.get(name)
    if spec is None:
        return None
    arity = spec.arity
    if (arity > 0 and argc != arity) or (arity < 0 and argc < -arity):
        return Error(WRONG_ARGS.format(name.decode(errors="replace").lower()))
    if spec.step == 2 and (argc - 1) % 2:  # MSET, MSETNX: key value pairs
        return Error(WRONG_ARGS.format(name.decode(errors="replace").lower()))
    return None


def is_data_command(name: bytes) -> bool:
    return name in _TABLE


def keys_of(name: bytes, args: list[bytes]) -> list[bytes]:
    spec = _TABLE[name]
    last = len(args) - 1 if spec.last == -1 else spec.last
    return args[spec.first : last + 1 : spec.step]


def execute(view: View, name: bytes, args: list[bytes], now: int) -> Reply:
    """Run one data command (``args`` without the name) at ``now`` (ms of the
    store's clock); errors become replies.

    An unexpected exception is an error reply too, not a crash of the shard: a
    crashed replica would be restarted empty, and its data is the point.
    """
    try:
        return _TABLE[name].impl(view, args, now)
    except CommandError as exc:
        return Error(str(exc.args[0]))
    except Exception as exc:
        return Error(f"ERR {name.decode(errors='replace').lower()} failed: {exc!r}")


def glob_match(pattern: bytes, string: bytes) -> bool:
    """Redis's ``stringmatchlen``: ``*``, ``?``, ``[abc]``, ``[^a-z]``, ``\\x`` escapes."""
    return _match(pattern, 0, string, 0)


def _match(p: bytes, pi: int, s: bytes, si: int) -> bool:
    plen, slen = len(p), len(s)
    while pi < plen and si <= slen:
        c = p[pi]
        if c == 0x2A:  # '*'
            while pi + 1 < plen and p[pi + 1] == 0x2A:
                pi += 1
            if pi + 1 == plen:
                return True
            return any(_match(p, pi + 1, s, start) for start in range(si, slen + 1))
        if si == slen:
            return False
        if c == 0x3F:  # '?'
            si += 1
        elif c == 0x5B:  # '['
            pi += 1
            negate = pi < plen and p[pi] == 0x5E  # '^'
            if negate:
                pi += 1
            matched = False
            while pi < plen and p[pi] != 0x5D:  # ']'
                if p[pi] == 0x5C and pi + 1 < plen:  # '\\'
                    pi += 1
                    matched |= p[pi] == s[si]
                elif pi + 2 < plen and p[pi + 1] == 0x2D:  # 'a-z'
                    lo, hi = sorted((p[pi], p[pi + 2]))
                    matched |= lo <= s[si] <= hi
                    pi += 2
                else:
                    matched |= p[pi] == s[si]
                pi += 1
            if pi >= plen:  # no closing bracket: Redis treats the end as one
                pi = plen - 1
            if matched == negate:
                return False
            si += 1
        else:
            if c == 0x5C and pi + 1 < plen:
                pi += 1
                c = p[pi]
            if c != s[si]:
                return False
            si += 1
        pi += 1
    while pi < plen and p[pi] == 0x2A:
        pi += 1
    return pi == plen and si == slen
