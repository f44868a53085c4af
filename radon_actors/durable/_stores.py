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
from .._logs import get_logger

__all__ = ["RedisStore", "SQLiteStore", "StateStore", "Stored", "store_from_url"]

_log = get_logger("radon_actors.durable")

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

    __slots__ = ("done", "error", "orphaned", "value")

    def __init__(self) -> None:
        self.value: str | None = None
        self.error: Exception | None = None
        self.done = trio.Event()
        # Set with ``done`` when the committing task was cancelled before this
        # write's turn: its writer commits it (and what else waits) itself.
        self.orphaned = False

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
    one machine may share the file.

    **Where the calls run.** With ``NORMAL`` (or ``OFF``) a commit writes to the
    WAL file and does not sync it: tens of microseconds, less than a hop to a
    worker thread, which under a busy event loop also waits for the GIL
    (Python hands it over every 5 ms). So reads and commits run in the event
    loop, on a connection that never waits for a lock; one that would (another
    process is writing the file), and the WAL checkpoints that sync the file,
    run in a worker thread (``trio.to_thread``) on a second connection, which
    waits up to 10 s. With ``FULL`` or ``EXTRA`` every call runs in the thread.
    Writes that arrive while one batch commits go together in the next
    transaction (group commit).
    """

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._inline = self._synchronous in ("OFF", "NORMAL")
        self._db: sqlite3.Connection | None = None  # the event loop's
        self._tdb: sqlite3.Connection | None = None  # the worker thread's
        self._limiter = trio.CapacityLimiter(1)
        self._pending: list[tuple[_Write, _Slot]] = []
        self._committing = False
        self._unsynced = 0  # commits in the event loop since the last checkpoint

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    @property
    def url(self) -> str:
        """``sqlite://`` and the file's absolute path."""
        return f"sqlite://{self.path.resolve()}"

    def _connection(self, inline: bool) -> sqlite3.Connection:
        db = self._db if inline else self._tdb
        if db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path,
                timeout=0.0 if inline else 10.0,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA busy_timeout=10000")  # while the schema is set up
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute(_SCHEMA)
            if inline:
                db.execute("PRAGMA busy_timeout=0")
                # Checkpoints sync the file: the thread runs them (_checkpoint).
                db.execute("PRAGMA wal_autocheckpoint=0")
                self._db = db
            else:
                self._tdb = db
        return db

    async def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(connection, *args)``: in the event loop if it need not wait for a
        lock, else in the worker thread (see the class docs). ``fn`` must change
        nothing when it fails with a busy lock (it is then run again)."""
        if self._inline:
            try:
                return fn(self._connection(True), *args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
        return await trio.to_thread.run_sync(
            lambda: fn(self._connection(False), *args), limiter=self._limiter
        )

    async def read(self, atom_type: str, key: str, name: str) -> Stored | None:
        await trio.lowlevel.checkpoint()
        result: Stored | None = await self._run(_read, atom_type, key, name)
        return result

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        return await self._grouped((atom_type, key, name, document, etag))

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        return await self._grouped((atom_type, key, name, None, etag))

    async def _grouped(self, write: _Write) -> str:
        """Group commit: writes that arrive while one batch is being committed go
        together in the next transaction (the first waiting writer commits for
        the others), so concurrent saves share a commit."""
        slot = _Slot()
        entry = (write, slot)
        self._pending.append(entry)
        while self._committing:
            try:
                await slot.done.wait()
            except BaseException:
                if entry in self._pending:  # not committed, and now never will be
                    self._pending.remove(entry)
                raise
            if not slot.orphaned:
                return slot.result()
            # The committing task was cancelled before this write's turn: the
            # write is still queued, and the first of its writers to run
            # commits the queue (a cancelled writer's write must not fail the
            # others', as a member's last write when its system stops).
            slot.orphaned = False
            slot.done = trio.Event()
        self._committing = True
        try:
            # Let the writers that are ready now join this batch.
            await trio.lowlevel.checkpoint()
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._run(_commit, batch)
                except Exception as exc:  # each write of the batch has it as its outcome
                    for _, waiting in batch:
                        if waiting.value is None and waiting.error is None:
                            waiting.error = exc
                finally:
                    for _, waiting in batch:
                        if waiting.value is None and waiting.error is None:
                            waiting.error = RuntimeError(
                                "the task committing this write was cancelled during the "
                                "commit: the write may or may not be stored"
                            )
                        waiting.done.set()
                self._unsynced += 1
                if self._unsynced >= _CHECKPOINT_EVERY and self._inline:
                    self._unsynced = 0
                    await self._checkpoint()
        finally:
            self._committing = False
            if entry in self._pending:  # this writer was cancelled before its commit
                self._pending.remove(entry)
            for _, waiting in self._pending:  # cancelled with writes still queued
                waiting.orphaned = True
                waiting.done.set()
        return slot.result()

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file and sync it, in the thread
        (PASSIVE: it waits for nobody, and what it cannot copy now waits for
        the next one)."""
        try:
            await trio.to_thread.run_sync(
                lambda: self._connection(False).execute("PRAGMA wal_checkpoint(PASSIVE)"),
                limiter=self._limiter,
            )
        except sqlite3.Error as exc:  # the commits stand; the WAL just grows meanwhile
            _log.warning("durable.checkpoint_failed", path=str(self.path), error=repr(exc))

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        await trio.lowlevel.checkpoint()
        found: list[tuple[str, str, str, str]] = await self._run(_scan, name)
        return found

    async def aclose(self) -> None:
        db, self._db = self._db, None
        tdb, self._tdb = self._tdb, None
        if db is not None:
            db.close()
        if tdb is not None:
            await trio.to_thread.run_sync(tdb.close, limiter=self._limiter)


_CHECKPOINT_EVERY = 500
"""Commits in the event loop between two WAL checkpoints (SQLite's own
automatic checkpoint comes every 1,000 pages of WAL)."""


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def _read(db: sqlite3.Connection, atom_type: str, key: str, name: str) -> Stored | None:
    row = db.execute(
        "SELECT document, revision FROM radon_state WHERE atom_type = ? AND key = ? AND name = ?",
        (atom_type, key, name),
    ).fetchone()
    return None if row is None else (row[0], str(row[1]))


def _scan(db: sqlite3.Connection, name: str) -> list[tuple[str, str, str, str]]:
    rows = db.execute(
        "SELECT atom_type, key, document, revision FROM radon_state "
        "WHERE name = ? AND document IS NOT NULL",
        (name,),
    )
    return [(t, k, d, str(r)) for t, k, d, r in rows]


def _commit(db: sqlite3.Connection, batch: list[tuple[_Write, _Slot]]) -> None:
    """One transaction for the batch; each write's outcome in its slot. A busy
    lock at ``BEGIN`` changes nothing (the caller may run it again)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for write, slot in batch:
            slot.error = None
            try:
                slot.value = str(_put(db, *write))
            except StateConflict as exc:  # refused before it changed anything
                slot.value = None
                slot.error = exc
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        for _, slot in batch:
            slot.value = None  # none of the batch was written
            slot.error = None
        raise


def _put(
    db: sqlite3.Connection,
    atom_type: str,
    key: str,
    name: str,
    document: str | None,
    etag: str | None,
) -> int:
    if etag is None:
        try:
            db.execute(
                "INSERT INTO radon_state (atom_type, key, name, revision, document) "
                "VALUES (?, ?, ?, 1, ?)",
                (atom_type, key, name, document),
            )
        except sqlite3.IntegrityError:
            found = _revision(db, atom_type, key, name)
            raise _conflict(atom_type, key, name, etag, found) from None
        return 1
    revision = int(etag)
    cursor = db.execute(
        "UPDATE radon_state SET revision = revision + 1, document = ? "
        "WHERE atom_type = ? AND key = ? AND name = ? AND revision = ?",
        (document, atom_type, key, name, revision),
    )
    if cursor.rowcount != 1:
        raise _conflict(atom_type, key, name, etag, _revision(db, atom_type, key, name))
    return revision + 1


def _revision(db: sqlite3.Connection, atom_type: str, key: str, name: str) -> int | None:
    row = db.execute(
        "SELECT revision FROM radon_state WHERE atom_type = ? AND key = ? AND name = ?",
        (atom_type, key, name),
    ).fetchone()
    return None if row is None else int(row[0])


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
