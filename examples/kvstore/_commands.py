"""The data commands, as pure functions over a key view.

A command reads and writes through a :class:`View` and returns its reply. The
same code runs inside a shard (on the shard's own table) and inside the
transaction coordinator (on values the shards returned under lock), which is
what keeps transactional and plain commands behaving identically.

Values are ``bytes``; an entry is ``(value, expires_at)`` with ``expires_at`` an
absolute time in seconds (the store's clock) or ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ._resp import Error, Reply, Simple

__all__ = ["KEY_POSITIONS", "WRITES", "View", "execute", "keys_of"]

Entry = tuple[bytes, float | None]

OK = Simple("OK")
WRONG_ARGS = "ERR wrong number of arguments for '{}' command"
NOT_INT = Error("ERR value is not an integer or out of range")
SYNTAX = Error("ERR syntax error")


class View(Protocol):
    def get(self, key: bytes) -> Entry | None: ...
    def put(self, key: bytes, entry: Entry) -> None: ...
    def delete(self, key: bytes) -> bool: ...


class CommandError(Exception):
    """Raised by a command to reply with an error (nothing was written)."""


def _int(raw: bytes) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(NOT_INT) from None
    if not -(2**63) <= value < 2**63:
        raise CommandError(NOT_INT)
    return value


def _live(view: View, key: bytes, now: float) -> Entry | None:
    entry = view.get(key)
    if entry is not None and entry[1] is not None and entry[1] <= now:
        view.delete(key)  # lazily expire, as Redis does
        return None
    return entry


def _get(view: View, args: list[bytes], now: float) -> Reply:
    entry = _live(view, args[0], now)
    return None if entry is None else entry[0]


def _set(view: View, args: list[bytes], now: float) -> Reply:
    key, value = args[0], args[1]
    expires: float | None = None
    nx = xx = keep_ttl = False
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt in (b"EX", b"PX") and i + 1 < len(args) and expires is None:
            amount = _int(args[i + 1])
            if amount <= 0:
                raise CommandError(Error("ERR invalid expire time in 'set' command"))
            expires = now + (amount if opt == b"EX" else amount / 1000)
            i += 2
        elif opt == b"NX" and not xx:
            nx = True
            i += 1
        elif opt == b"XX" and not nx:
            xx = True
            i += 1
        elif opt == b"KEEPTTL" and expires is None:
            keep_ttl = True
            i += 1
        else:
            raise CommandError(SYNTAX)
    old = _live(view, key, now)
    if (nx and old is not None) or (xx and old is None):
        return None
    if keep_ttl and old is not None:
        expires = old[1]
    view.put(key, (value, expires))
    return OK


def _incrby(view: View, key: bytes, by: int, now: float) -> Reply:
    old = _live(view, key, now)
    current = 0 if old is None else _int(old[0])
    new = current + by
    if not -(2**63) <= new < 2**63:
        raise CommandError(Error("ERR increment or decrement would overflow"))
    view.put(key, (str(new).encode(), None if old is None else old[1]))
    return new


def _del(view: View, args: list[bytes], now: float) -> Reply:
    return sum(1 for key in args if _live(view, key, now) is not None and view.delete(key))


def _exists(view: View, args: list[bytes], now: float) -> Reply:
    return sum(1 for key in args if _live(view, key, now) is not None)


def _expire(view: View, args: list[bytes], now: float, scale: float) -> Reply:
    if len(args) != 2:
        raise CommandError(SYNTAX)
    entry = _live(view, args[0], now)
    if entry is None:
        return 0
    amount = _int(args[1])
    if amount <= 0:
        view.delete(args[0])
    else:
        view.put(args[0], (entry[0], now + amount * scale))
    return 1


def _ttl(view: View, args: list[bytes], now: float, scale: float) -> Reply:
    entry = _live(view, args[0], now)
    if entry is None:
        return -2
    if entry[1] is None:
        return -1
    return max(0, round((entry[1] - now) / scale))


def _persist(view: View, args: list[bytes], now: float) -> Reply:
    entry = _live(view, args[0], now)
    if entry is None or entry[1] is None:
        return 0
    view.put(args[0], (entry[0], None))
    return 1


_Impl = Callable[[View, list[bytes], float], Reply]

# name -> (implementation, arity as Redis counts it: the command name included;
# negative means "at least")
_TABLE: dict[bytes, tuple[_Impl, int]] = {
    b"GET": (_get, 2),
    b"SET": (_set, -3),
    b"DEL": (_del, -2),
    b"EXISTS": (_exists, -2),
    b"INCR": (lambda v, a, n: _incrby(v, a[0], 1, n), 2),
    b"DECR": (lambda v, a, n: _incrby(v, a[0], -1, n), 2),
    b"INCRBY": (lambda v, a, n: _incrby(v, a[0], _int(a[1]), n), 3),
    b"DECRBY": (lambda v, a, n: _incrby(v, a[0], -_int(a[1]), n), 3),
    b"EXPIRE": (lambda v, a, n: _expire(v, a, n, 1.0), -3),
    b"PEXPIRE": (lambda v, a, n: _expire(v, a, n, 0.001), -3),
    b"TTL": (lambda v, a, n: _ttl(v, a, n, 1.0), 2),
    b"PTTL": (lambda v, a, n: _ttl(v, a, n, 0.001), 2),
    b"PERSIST": (_persist, 2),
}

# Commands that may write (replicated by the primary, locked by transactions).
WRITES = frozenset(
    {b"SET", b"DEL", b"INCR", b"DECR", b"INCRBY", b"DECRBY", b"EXPIRE", b"PEXPIRE", b"PERSIST"}
)

# Which arguments are keys: (first, last or -1 for "all the rest").
KEY_POSITIONS: dict[bytes, tuple[int, int]] = {
    name: ((0, -1) if name in (b"DEL", b"EXISTS") else (0, 0)) for name in _TABLE
}


def check_arity(name: bytes, argc: int) -> Error | None:
    """The Redis error for a wrong argument count (``argc`` includes the name)."""
    spec = _TABLE.get(name)
    if spec is None:
        return None
    arity = spec[1]
    if (arity > 0 and argc != arity) or (arity < 0 and argc < -arity):
        return Error(WRONG_ARGS.format(name.decode(errors="replace").lower()))
    return None


def is_data_command(name: bytes) -> bool:
    return name in _TABLE


def keys_of(name: bytes, args: list[bytes]) -> list[bytes]:
    first, last = KEY_POSITIONS[name]
    return args[first:] if last == -1 else args[first : last + 1]


def execute(view: View, name: bytes, args: list[bytes], now: float) -> Reply:
    """Run one data command (``args`` without the name); errors become replies.

    An unexpected exception is an error reply too, not a crash of the shard: a
    crashed replica would be restarted empty, and its data is the point.
    """
    try:
        return _TABLE[name][0](view, args, now)
    except CommandError as exc:
        return Error(str(exc.args[0]))
    except Exception as exc:
        return Error(f"ERR {name.decode(errors='replace').lower()} failed: {exc!r}")
