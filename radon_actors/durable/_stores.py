"""Where durable state is kept: the :class:`StateStore` interface and its
providers.

A store keeps one *document* (text: ``_codec``) per atom type, key and state
name, with a *revision*. Every write and clear names the revision it read (its
ETag; None: "there is none yet") and is refused with
:class:`~radon_actors.StateConflict` if the stored one differs: the guard
against two incarnations of one atom both writing. A clear leaves a tombstone
(no document, the revision moved on), so an incarnation that read "nothing"
before the clear cannot write after it either.

* :class:`SQLiteStore`: the embedded default, a file, nothing to set up.
* :class:`RedisStore`: a Redis server, for state that hosts on several
  machines share.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Protocol

import trio

from .._errors import StateConflict

__all__ = ["RedisStore", "SQLiteStore", "StateStore", "Stored", "store_from_url"]

Stored = tuple[str | None, str]
"""What a read finds: ``(document or None after a clear, etag)``."""


class StateStore(Protocol):
    """What durable atoms need of a store (all three by atom type, key and state
    name). Implement it to keep state elsewhere; ``open_system(state_store=...)``
    takes any implementation."""

    async def read(self, atom_type: str, key: str, name: str) -> Stored | None:
        """The stored document and its etag; None if there never was one."""
        ...

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        """Store ``document`` if the stored etag is ``etag`` (None: nothing
        stored yet); the new etag. Raises :class:`StateConflict` otherwise."""
        ...

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        """Remove the document under the same condition as :meth:`write`; the new etag."""
        ...

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        """Every stored document of the state ``name`` (any atom type and key):
        ``(atom type, key, document, etag)`` each (reminders are found this way
        when a system starts)."""
        ...

    async def aclose(self) -> None:
        """Release connections (the system closes its store at shutdown)."""
        ...

    @property
    def url(self) -> str | None:
        """How another process opens the same store (:func:`store_from_url`), so
        that hosts of the system share it; None: they cannot."""
        ...


def store_from_url(url: str) -> StateStore:
    """The store a URL names: ``sqlite:///absolute/path`` (or ``sqlite:path``,
    relative to the working directory) or ``redis://host:port/db``
    (``rediss://`` for TLS)."""
    scheme, sep, rest = url.partition(":")
    if sep and scheme == "sqlite":
        path = rest[2:] if rest.startswith("//") else rest
        if not path:
            raise ValueError(f"no file in the state store URL {url!r}: sqlite:///path/to/file")
        return SQLiteStore(path)
    if sep and scheme in ("redis", "rediss", "unix"):
        return RedisStore(url)
    raise ValueError(
        f"unknown state store URL {url!r}: use sqlite:///path/to/file or redis://host:port/db"
    )


def _conflict(atom_type: str, key: str, name: str, etag: str | None, found: Any) -> StateConflict:
    return StateConflict(
        f"the state {name!r} of {atom_type} {key!r} was written by another incarnation "
        f"(this one read revision {etag or 'none'}, the store has {found or 'none'}); this "
        "incarnation cannot write it any more: a restart loads the stored state"
    )


_Write = tuple[str, str, str, str | None, str | None]  # type, key, name, document, etag


class _Slot:
    """One write's outcome in a group commit (set in the committing thread)."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.error: Exception | None = None
        self.done = trio.Event()

    def result(self) -> str:
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


_SCHEMA = """
CREATE TABLE IF NOT EXISTS radon_state (
    atom_type TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    revision INTEGER NOT NULL,
    document TEXT,
    PRIMARY KEY (atom_type, key, name)
) WITHOUT ROWID
"""


class SQLiteStore:
    """Durable state in an SQLite file (the standard library's ``sqlite3``).

    WAL mode with ``synchronous=NORMAL``: a save that returned survives the
    process being killed (not a power loss of the machine; use
    ``synchronous="FULL"`` for that, at a cost per save). Several processes of
    one machine may share the file. Calls run in a worker thread
    (``trio.to_thread``), one at a time per store.
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._db: sqlite3.Connection | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._pending: list[tuple[_Write, _Slot]] = []
        self._committing = False

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @property
    def url(self) -> str:
        """``sqlite://`` and the file's absolute path."""
        return f"sqlite://{self.path.resolve()}"

    def _connect(self) -> sqlite3.Connection:
        db = self._db
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute(_SCHEMA)
            self._db = db
        return db

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def read(self, atom_type: str, key: str, name: str) -> Stored | None:
        def read() -> Stored | None:
            row = (
                self._connect()
                .execute(
                    "SELECT document, revision FROM radon_state "
                    "WHERE atom_type = ? AND key = ? AND name = ?",
                    (atom_type, key, name),
                )
                .fetchone()
            )
            return None if row is None else (row[0], str(row[1]))

        result: Stored | None = await self._run(read)
        return result

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        return await self._grouped((atom_type, key, name, document, etag))

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        return await self._grouped((atom_type, key, name, None, etag))

    async def _grouped(self, write: _Write) -> str:
        """Group commit: writes that arrive while one batch is being committed go
        together in the next transaction, in one thread call (the first waiting
        writer commits for the others), so concurrent saves share a commit."""
        slot = _Slot()
        self._pending.append((write, slot))
        if self._committing:
            await slot.done.wait()
            return slot.result()
        self._committing = True
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._run(self._commit, batch)
                except Exception as exc:  # each write of the batch has it as its outcome
                    for _, waiting in batch:
                        if waiting.value is None and waiting.error is None:
                            waiting.error = exc
                finally:
                    for _, waiting in batch:
                        waiting.done.set()
        finally:
            self._committing = False
            for _, waiting in self._pending:  # cancelled with writes still queued
                waiting.error = RuntimeError(
                    "the committing task was cancelled before this write was committed"
                )
                waiting.done.set()
            self._pending = []
        return slot.result()

    def _commit(self, batch: list[tuple[_Write, _Slot]]) -> None:
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            for write, slot in batch:
                try:
                    slot.value = str(self._put(*write))
                except StateConflict as exc:  # refused before it changed anything
                    slot.error = exc
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            for _, slot in batch:
                slot.value = None  # none of the batch was written
            raise

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        def scan() -> list[tuple[str, str, str, str]]:
            rows = self._connect().execute(
                "SELECT atom_type, key, document, revision FROM radon_state "
                "WHERE name = ? AND document IS NOT NULL",
                (name,),
            )
            return [(t, k, d, str(r)) for t, k, d, r in rows]

        found: list[tuple[str, str, str, str]] = await self._run(scan)
        return found

    def _put(
        self, atom_type: str, key: str, name: str, document: str | None, etag: str | None
    ) -> int:
        db = self._connect()
        if etag is None:
            try:
                db.execute(
                    "INSERT INTO radon_state (atom_type, key, name, revision, document) "
                    "VALUES (?, ?, ?, 1, ?)",
                    (atom_type, key, name, document),
                )
            except sqlite3.IntegrityError:
                raise _conflict(
                    atom_type, key, name, etag, self._revision(db, atom_type, key, name)
                ) from None
            return 1
        revision = int(etag)
        cursor = db.execute(
            "UPDATE radon_state SET revision = revision + 1, document = ? "
            "WHERE atom_type = ? AND key = ? AND name = ? AND revision = ?",
            (document, atom_type, key, name, revision),
        )
        if cursor.rowcount != 1:
            raise _conflict(atom_type, key, name, etag, self._revision(db, atom_type, key, name))
        return revision + 1

    @staticmethod
    def _revision(db: sqlite3.Connection, atom_type: str, key: str, name: str) -> int | None:
        row = db.execute(
            "SELECT revision FROM radon_state WHERE atom_type = ? AND key = ? AND name = ?",
            (atom_type, key, name),
        ).fetchone()
        return None if row is None else int(row[0])

    async def aclose(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await self._run(db.close)


# Compare-and-set in one step on the server: the revision must be ARGV[1]
# ("": none stored); ARGV[3] == "1" clears (a tombstone keeps the revision).
_CAS = """
local rev = redis.call('HGET', KEYS[1], 'rev')
if (rev or '') ~= ARGV[1] then return {0, rev or ''} end
local new = (tonumber(rev) or 0) + 1
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'rev', new)
  redis.call('HDEL', KEYS[1], 'doc')
else
  redis.call('HSET', KEYS[1], 'rev', new, 'doc', ARGV[2])
end
return {1, tostring(new)}
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisStore:
    """Durable state in a Redis server, shared by every host that uses it.

    One hash per state (``{prefix}{atom type}\\x00{key}\\x00{name}``: fields
    ``rev`` and ``doc``); writes are a compare-and-set in a Lua script, so the
    revision check and the write are one step on the server. Uses redis-py's
    client (the ``redis`` extra) from worker threads; a save that returned is as
    durable as the server's persistence settings make it (``appendonly yes``
    with ``appendfsync everysec`` loses at most a second on a server crash).
    """

    def __init__(
        self, url: str = "redis://localhost:6379/0", *, prefix: str = "radon:state:"
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - an extra
            raise ImportError(
                "RedisStore needs the redis client: pip install 'radon-actors[redis]'"
            ) from exc
        self._url = url
        self.prefix = prefix
        self._client = redis.Redis.from_url(url)
        self._cas = self._client.register_script(_CAS)
        self._limiter = trio.CapacityLimiter(8)

    def __repr__(self) -> str:
        return f"RedisStore({self._url!r})"

    @property
    def url(self) -> str:
        """The server's URL, as given."""
        return self._url

    def _key(self, atom_type: str, key: str, name: str) -> str:
        return f"{self.prefix}{atom_type}\x00{key}\x00{name}"

    async def read(self, atom_type: str, key: str, name: str) -> Stored | None:
        k = self._key(atom_type, key, name)
        rev, doc = await trio.to_thread.run_sync(
            self._client.hmget, k, ["rev", "doc"], limiter=self._limiter
        )
        if rev is None:
            return None
        return (None if doc is None else _text(doc), _text(rev))

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        return await self._put(atom_type, key, name, document, etag)

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        return await self._put(atom_type, key, name, None, etag)

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        def scan() -> list[tuple[str, str, str, str]]:
            found = []
            suffix = f"\x00{name}"
            for raw in self._client.scan_iter(match=f"{self.prefix}*", count=1000):
                k = _text(raw)
                if not k.endswith(suffix):
                    continue
                atom_type, _, key = k[len(self.prefix) : -len(suffix)].partition("\x00")
                rev, doc = self._client.hmget(k, ["rev", "doc"])
                if rev is not None and doc is not None:
                    found.append((atom_type, key, _text(doc), _text(rev)))
            return found

        result: list[tuple[str, str, str, str]] = await trio.to_thread.run_sync(
            scan, limiter=self._limiter
        )
        return result

    async def _put(
        self, atom_type: str, key: str, name: str, document: str | None, etag: str | None
    ) -> str:
        k = self._key(atom_type, key, name)
        args = [etag or "", document or "", "1" if document is None else "0"]
        ok, found = await trio.to_thread.run_sync(
            lambda: self._cas(keys=[k], args=args), limiter=self._limiter
        )
        found = _text(found) if isinstance(found, (bytes, str)) else str(found)
        if not ok:
            raise _conflict(atom_type, key, name, etag, found or None)
        return found

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self._client.close, limiter=self._limiter)
