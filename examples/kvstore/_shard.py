"""A shard replica: one atom holding part of the key space.

Each shard has a primary and zero or more backups (primary-backup replication).
The primary executes commands and, before it replies, sends the resulting
changes to every live backup and waits for their acknowledgements, all inside one
turn. So an acknowledged write is on every live replica, and a promoted backup
has every acknowledged write. When every replica lives in one process and there
is no journal, a plain write sends its changes as tells and does not wait
(``write_colocated``): in one process a tell is as sure as an ask.

With a journal (``--data-dir``, ``_journal.py``), the primary journals each
change set before it applies and replicates it, in the same turn; a change set
the journal refuses is not applied (the client gets ``-MISCONF``).

Replicas are *fenced*: a replica serves clients only while it is the promoted
primary, and accepts replication only once it is a synced member of its set
(created with the set, or loaded by ``add_backup``). A replica that comes back
empty (restarted by its supervisor after a crash, or on another host after its
host died) is neither, so it refuses with :class:`NotMember` instead of answering
from an empty table; the frontend then fails over to a real member.

Every write carries an id (``wid``): the primary replicates the write's outcome
with its changes, and every replica remembers the outcomes of the last
:data:`MAX_OUTCOMES` writes. A write retried with the same id on a promoted
backup (its primary died after replicating, before replying) is answered with
the recorded outcome instead of being applied a second time: writes are applied
exactly once through failover. ``FLUSHALL`` and transaction commits are
recorded the same way.

Transactions lock keys on the shards they touch (``prepare``), then ``commit``
or ``abort``. Locks are replicated too, so a backup promoted between prepare and
commit can still take the commit. Plain commands on a locked key are stashed
until the lock is released; a conflicting ``prepare`` is refused at once (no-wait,
so transactions cannot deadlock: the coordinator retries).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from radon_actors import Atom, RadonError, Ref, Rejection, Timer, WouldBlock, handler

from ._commands import OK, Entry, execute, glob_match, keys_of
from ._resp import Error, Reply

if TYPE_CHECKING:
    from radon_actors import Down  # not at run time: the sandboxed build has no Down

__all__ = ["MAX_OUTCOMES", "Changes", "NotMember", "Shard", "Token", "changed", "scan_hash"]

# key -> new entry, or None for "deleted"
Changes = dict[bytes, Entry | None]

LOCK_LEASE = 10.0  # seconds a prepared transaction may hold its locks
MAX_OUTCOMES = 100_000
"""Write outcomes each replica remembers (oldest dropped first): a retry comes
within the failover that caused it, seconds after the write."""

_UNCHANGED: Changes = {}  # a write that changes nothing (never modified)

MAX_VERSIONS = 1_000_000  # WATCH versions kept per replica (see Shard._stamp)

_MISSING: Any = object()

Token = tuple[int, bool]
"""WATCH's view of a key: the change set that last changed it, and whether it
was already expired (present but past its time)."""


def changed(watched: Token, now: Token) -> bool:
    """Whether a key changed since WATCH took ``watched`` (Redis: any change of
    the key, or its expiry since, if it was not expired then)."""
    return watched[0] != now[0] or (not watched[1] and now[1])


SCAN_BITS = 56  # a scan cursor: the shard in the top 8 bits, a key hash in the rest


def scan_hash(key: bytes) -> int:
    """Where ``key`` comes in a SCAN of its shard (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=SCAN_BITS // 8).digest(), "big")


class NotMember(RadonError, Rejection):
    """This replica is not (or no longer) a synced member of its shard's replica
    set, or not its primary: route around it (the store fails over).

    A :class:`~radon_actors.Rejection`: the replica refuses the message and
    carries on. (As a crash it would restart empty: a demoted primary, still a
    full backup, would lose its copy to the first client that reached it late.)"""


class _Recording:
    """A view over the shard's table that collects what a command changes,
    without changing the table: the shard applies the changes once they are
    journaled (see ``_journal.py``)."""

    __slots__ = ("changes", "data")

    def __init__(self, data: dict[bytes, Entry]) -> None:
        self.data = data
        self.changes: Changes = {}

    def get(self, key: bytes) -> Entry | None:
        changes = self.changes
        if changes and key in changes:
            return changes[key]
        return self.data.get(key)

    def put(self, key: bytes, entry: Entry) -> None:
        self.changes[key] = entry

    def delete(self, key: bytes) -> bool:
        if self.get(key) is None:
            return False
        self.changes[key] = None
        return True


class Shard(Atom):
    """One replica of one shard (see the module docs)."""

    def __init__(
        self, index: int, clock: Callable[[], float], journal: Ref[Any] | None = None
    ) -> None:
        self.index = index
        self.clock = clock
        # The shard's Journal (``_journal.py``; asked by handler name, so this
        # module stays free of the store's imports), or None: memory only.
        self.journal = journal
        self.data: dict[bytes, Entry] = {}
        self.locks: dict[bytes, str] = {}
        self.lock_timers: dict[str, Timer] = {}
        self.backups: list[Ref[Shard]] = []
        # write id -> its reply, in the order written (see the module docs)
        self.outcomes: dict[str, Reply] = {}
        # WATCH: key -> the number of the change set that last changed it. Every
        # replica applies the same change sets in the same order, so the numbers
        # agree across replicas and survive a failover. Keys not in the table
        # (never changed, or forgotten, see _stamp) are at ``floor``.
        self.seq = 0
        self.floor = 0
        self.versions: dict[bytes, int] = {}
        self.primary = False
        self.member = False  # synced with its set: may take replication
        self._snapshot_due = False  # the journal asked for a snapshot
        self.cluster: Ref[Atom] | None = None
        # Backups watched since a write told them its changes (write_colocated).
        self._watched: set[Ref[Shard]] = set()

    # plain commands ------------------------------------------------------
    @handler
    def read(self, name: bytes, args: list[bytes]) -> Reply:
        """A command that does not write (GET, EXISTS, TTL...)."""
        self._require_primary()
        if self._locked(keys_of(name, args)):
            self.stash()
            return None
        view = _Recording(self.data)
        reply = execute(view, name, args, self._now())
        if view.changes:
            # Lazy expiry deleted keys; backups (and a replay) expire them on their own.
            self._apply(view.changes)
        return reply

    @handler
    async def write(self, wid: str, name: bytes, args: list[bytes]) -> Reply:
        """A command that may write: applied here, then on every backup, then acked.

        ``wid`` identifies the write: a retry with the same id gets the recorded
        reply and changes nothing."""
        reply, changes = self._run_write(wid, name, args)
        if changes:
            refused = await self._journal("apply", wid, reply, changes)
            if refused is not None:
                return refused
            self._apply(changes)
            self._stamp(changes)
            await self._replicate("apply", changes, wid, reply)
            self._remember(wid, reply)
            await self._snapshot_if_due()
        return reply

    @handler
    def write_colocated(self, wid: str, name: bytes, args: list[bytes]) -> Reply:
        """:meth:`write` for a shard whose replicas all live in this process and
        which has no journal (the store's in-process deployment): the same write,
        recorded once per ``wid``, replicated *without waiting*.

        Each backup gets the change set without an ask the turn waits for: it
        applies it now if idle, else finds it in its mailbox. In one process
        that is as safe: the change set is applied or queued before this
        returns, in the primary's order, and the backups
        share the process's fate, so whatever loses the tell loses them too. A
        promotion reaches a backup behind the change sets queued before it, so
        a write retried on it finds its record. The handler never suspends, so
        the frontend runs it inline, and an idle backup applies in this turn
        too: no task switch per write (see :meth:`_replicate_colocated`)."""
        if self.journal is not None:
            return Error("ERR a journaled shard writes through `write`, not `write_colocated`")
        reply, changes = self._run_write(wid, name, args)
        if changes:
            self._apply(changes)
            self._stamp(changes)
            self._replicate_colocated("apply", changes, wid, reply)
            self._remember(wid, reply)
        return reply

    def _run_write(self, wid: str, name: bytes, args: list[bytes]) -> tuple[Reply, Changes]:
        """A write's first step: the recorded reply of a ``wid`` seen before, or a
        stash for a locked key (both with no changes); else the command run on a
        view of the table, its reply and its changes (not applied yet)."""
        self._require_primary()
        done = self.outcomes.get(wid, _MISSING)
        if done is not _MISSING:
            return done, _UNCHANGED
        if self._locked(keys_of(name, args)):
            self.stash()
            return None, _UNCHANGED
        view = _Recording(self.data)
        reply = execute(view, name, args, self._now())
        return reply, view.changes

    @handler
    async def batch(
        self, wid: str, commands: list[list[bytes]], watched: dict[bytes, Token] | None = None
    ) -> list[Reply] | Error | None:
        """A transaction confined to this shard: all commands in one turn (and,
        like :meth:`write`, applied once per ``wid``). With ``watched`` (WATCH's
        tokens), nothing runs and the answer is None if any of those keys changed.
        An error reply: the journal refused it, nothing ran."""
        self._require_primary()
        done = self.outcomes.get(wid, _MISSING)
        if done is not _MISSING:
            return done  # type: ignore[no-any-return]
        keys = [k for cmd in commands for k in keys_of(cmd[0], cmd[1:])]
        if self._locked(keys + list(watched or ())):
            self.stash()
            return []
        now = self._now()
        if watched and any(changed(token, self._token(key, now)) for key, token in watched.items()):
            return None
        view = _Recording(self.data)
        replies: list[Reply] = [execute(view, cmd[0], cmd[1:], now) for cmd in commands]
        if view.changes:
            refused = await self._journal("apply", wid, replies, view.changes)
            if refused is not None:
                return refused
            self._apply(view.changes)
            self._stamp(view.changes)
            await self._replicate("apply", view.changes, wid, replies)
            self._remember(wid, replies)
            await self._snapshot_if_due()
        return replies

    @handler
    def watch_keys(self, keys: list[bytes]) -> dict[bytes, Token]:
        """WATCH: each key's token, to compare at EXEC (see :func:`changed`)."""
        self._require_primary()
        now = self._now()
        return {key: self._token(key, now) for key in keys}

    @handler
    async def flushall(self, wid: str) -> Reply:
        """Delete every key, on every replica, in this turn (once per ``wid``)."""
        self._require_primary()
        done = self.outcomes.get(wid, _MISSING)
        if done is not _MISSING:
            return done  # type: ignore[no-any-return]
        refused = await self._journal("clear", wid, OK, {})
        if refused is not None:
            return refused
        self._clear()
        await self._replicate("clear", wid)
        self._remember(wid, OK)
        await self._snapshot_if_due()
        return OK

    # two-phase commit ----------------------------------------------------
    @handler
    async def prepare(
        self, txid: str, keys: list[bytes]
    ) -> dict[bytes, tuple[Entry | None, Token]] | None:
        """Lock ``keys`` for ``txid`` and return their entries and WATCH tokens;
        None if any is locked."""
        self._require_primary()
        if any(self.locks.get(k, txid) != txid for k in keys):
            return None
        await self._replicate("lock", txid, keys)
        self._lock(txid, keys)
        now = self._now()
        return {k: (self.data.get(k), self._token(k, now)) for k in keys}

    @handler
    async def commit(self, txid: str, changes: Changes) -> Error | None:
        """Apply a prepared transaction's changes and release its locks, once: a
        commit retried after a failover finds it recorded and changes nothing
        (re-applying it could overwrite writes made since its locks went).
        An error reply: the journal refused it, nothing changed (the locks
        stay until the coordinator aborts or their lease ends)."""
        self._require_primary()
        if f"commit:{txid}" in self.outcomes:
            return None
        if changes:  # a read-only part (MGET across shards) changes nothing to journal
            refused = await self._journal("apply", f"commit:{txid}", None, changes)
            if refused is not None:
                return refused
        self._apply(changes)
        self._stamp(changes)
        await self._replicate("apply_unlock", txid, changes)
        self._unlock(txid)
        self._remember(f"commit:{txid}", None)
        await self._snapshot_if_due()
        return None

    @handler
    async def abort(self, txid: str) -> None:
        self._require_primary()
        await self._replicate("unlock", txid)
        self._unlock(txid)

    @handler
    async def lease_expired(self, txid: str) -> None:
        if txid in self.lock_timers:
            self.log.warning("kv.lock_lease_expired", txid=txid)
            await self._replicate("unlock", txid)
            self._unlock(txid)

    # replication (backup side) -------------------------------------------
    @handler
    def apply(self, changes: Changes, wid: str, reply: Reply) -> None:
        self._require_member()
        self._apply(changes)
        self._stamp(changes)
        self._remember(wid, reply)

    @handler
    def clear(self, wid: str) -> None:
        self._require_member()
        self._clear()
        self._remember(wid, OK)

    @handler
    def lock(self, txid: str, keys: list[bytes]) -> None:
        self._require_member()
        self._lock(txid, keys, lease=False)

    @handler
    def apply_unlock(self, txid: str, changes: Changes) -> None:
        self._require_member()
        self._apply(changes)
        self._stamp(changes)
        self._unlock(txid)
        self._remember(f"commit:{txid}", None)

    @handler
    def unlock(self, txid: str) -> None:
        self._require_member()
        self._unlock(txid)

    @handler
    def load(
        self,
        data: dict[bytes, Entry],
        locks: dict[bytes, str],
        outcomes: dict[str, Reply],
        versions: tuple[int, int, dict[bytes, int]] = (0, 0, {}),
    ) -> None:
        """Replace this replica's state by a primary's (a new backup catching up)."""
        self.data = dict(data)
        self.locks = dict(locks)
        self.outcomes = dict(outcomes)
        self.seq, self.floor, table = versions
        self.versions = dict(table)
        self.member = True

    # membership ----------------------------------------------------------
    @handler
    async def recover(self) -> bool:
        """Become a member of a brand-new replica set: with a journal, read back
        from it (True); else empty (False)."""
        if self.journal is not None:
            await self._read_journal()
        self.member = True
        return self.journal is not None

    @handler
    async def promote(self, backups: list[Ref[Shard]], cluster: Ref[Atom]) -> None:
        """Become the primary, replicating to ``backups`` (already in sync) and
        reporting lost backups to ``cluster``. With a journal ahead of this
        replica (its primary died between journaling a change set and
        replicating it), read the shard back from the journal first, and bring
        the backups up to it."""
        self._require_member()
        self.backups = list(backups)
        self.cluster = cluster
        if self.journal is not None:
            await self._catch_up()
        self.primary = True
        # Locks inherited from a dead primary get a lease here, so a transaction
        # whose coordinator died cannot hold them forever.
        for txid in set(self.locks.values()):
            if txid not in self.lock_timers:
                self.lock_timers[txid] = self.send_after(LOCK_LEASE, Shard.lease_expired, txid)

    @handler
    def demote(self) -> None:
        """Stop leading (a planned switchover): from the next message on, client
        requests are refused with :class:`NotMember`; replication is accepted."""
        self._require_primary()
        self.primary = False
        for backup in self.backups:
            self._unwatch(backup)
        self.backups = []
        for timer in self.lock_timers.values():
            timer.cancel()  # the new primary gives inherited locks their lease
        self.lock_timers = {}

    @handler
    def drop_backup(self, backup: Ref[Shard]) -> None:
        """Stop replicating to ``backup`` (the cluster moves it elsewhere)."""
        if backup in self.backups:
            self.backups.remove(backup)
            self._unwatch(backup)

    @handler
    def status(self) -> tuple[bool, bool]:
        """(a synced member of its set, its primary): what the cluster's healing
        checks (a replica restarted empty is neither)."""
        return self.member, self.primary

    @handler
    async def add_backup(self, backup: Ref[Shard]) -> None:
        """Bring a fresh replica up to date and replicate to it from now on."""
        versions = (self.seq, self.floor, self.versions)
        await backup.ask(Shard.load, self.data, self.locks, self.outcomes, versions)
        self.backups.append(backup)

    @handler
    def snapshot(self) -> dict[bytes, Entry]:
        return dict(self.data)

    @handler
    def retire(self) -> None:
        """Leave for good (the cluster dropped this replica from its set)."""
        self.stop()

    @handler
    def join(self) -> None:
        """Become a member of a brand-new replica set (nothing to catch up on)."""
        self.member = True

    # the whole key space (KEYS, SCAN, DBSIZE, RANDOMKEY) ---------------------
    @handler
    def dbsize(self) -> int:
        """How many keys this shard holds (as Redis, keys expired but not yet
        deleted count until something touches them)."""
        self._require_primary()
        return len(self.data)

    @handler
    def keys(self, pattern: bytes) -> list[bytes]:
        """The live keys matching the glob ``pattern`` (Redis's ``KEYS``)."""
        self._require_primary()
        now = self._now()
        every = pattern == b"*"
        return [
            key
            for key, (_, expires) in self.data.items()
            if (expires is None or expires > now) and (every or glob_match(pattern, key))
        ]

    @handler
    def scan(self, start: int, count: int, pattern: bytes | None) -> tuple[list[bytes], int]:
        """Up to about ``count`` live keys whose scan hash is at least ``start``,
        in hash order, and the hash to resume from (-1: this shard is done).

        Ordering by a hash of the key (not by position) is what keeps Redis's
        SCAN guarantee through changes between calls: a key present from the
        first call to the last is returned."""
        self._require_primary()
        now = self._now()
        found = sorted(
            (h, key)
            for key, (_, expires) in self.data.items()
            if (h := scan_hash(key)) >= start and (expires is None or expires > now)
        )
        if len(found) <= count:
            batch, resume = found, -1
        else:
            last = found[count - 1][0]
            cut = count
            while cut < len(found) and found[cut][0] == last:
                cut += 1  # keys sharing a hash go together
            batch, resume = found[:cut], (found[cut][0] if cut < len(found) else -1)
        keys = [key for _, key in batch if pattern is None or glob_match(pattern, key)]
        return keys, resume

    @handler
    def randomkey(self) -> bytes | None:
        self._require_primary()
        now = self._now()
        live = [k for k, (_, expires) in self.data.items() if expires is None or expires > now]
        return random.choice(live) if live else None

    @handler
    def where(self) -> str:
        """Where this replica runs, for ``INFO radon``: the platform (``wasi`` in
        the WebAssembly sandbox) and the process id (0 where there is none)."""
        import os
        import sys

        try:
            pid = os.getpid()
        except (AttributeError, OSError):
            pid = 0
        return f"{sys.platform}/{pid}"

    # the journal -----------------------------------------------------------
    async def _journal(self, op: str, wid: str, reply: Reply, changes: Changes) -> Error | None:
        """Journal a change set before it is applied; the error reply if the
        journal refused it (then nothing may be applied)."""
        journal = self.journal
        if journal is None:
            return None
        try:
            self._snapshot_due = await journal.ask("append", self.seq + 1, op, wid, reply, changes)
        except Exception as exc:  # the store failed, or the journal is gone
            self.log.error("kv.journal_failed", shard=self.index, error=repr(exc))
            await self._level_with_journal()
            return Error(f"MISCONF Errors writing to the AOF file: {exc}")
        return None

    async def _level_with_journal(self) -> None:
        """After a refused append: catch up with the journal, which may hold a
        failed write that landed after all."""
        try:
            await self._catch_up()
        except Exception as exc:
            self.log.error("kv.journal_failed", shard=self.index, error=repr(exc))

    async def _catch_up(self) -> None:
        """If the journal holds change sets this replica has not applied, read
        the shard back from it and give the backups a full copy."""
        assert self.journal is not None
        if await self.journal.ask("position") > self.seq:
            await self._read_journal()
            versions = (self.seq, self.floor, self.versions)
            await self._replicate("load", self.data, self.locks, self.outcomes, versions)

    async def _snapshot_if_due(self) -> None:
        if self.journal is not None and self._snapshot_due:
            self._snapshot_due = False
            try:
                await self.journal.ask("snapshot", self.seq, self.data)
            except Exception as exc:  # appends go on until the ring is full
                self.log.warning("kv.snapshot_failed", shard=self.index, error=repr(exc))

    async def _read_journal(self) -> None:
        assert self.journal is not None
        seq, data, outcomes = await self.journal.ask("recover")
        self.data = data
        self.seq = self.floor = seq  # WATCH tokens from before cannot match
        self.versions = {}
        for wid, reply in outcomes.items():
            self._remember(wid, reply)

    # internals -----------------------------------------------------------
    def _now(self) -> int:
        """The store's clock in milliseconds (what entries' expiry times are in)."""
        return int(self.clock() * 1000)

    def _require_primary(self) -> None:
        if not self.primary:
            raise NotMember(f"replica of shard {self.index} is not its primary")

    def _require_member(self) -> None:
        if not self.member:
            raise NotMember(f"replica of shard {self.index} is not a synced member")

    def _locked(self, keys: list[bytes]) -> bool:
        locks = self.locks
        return bool(locks) and any(k in locks for k in keys)

    def _lock(self, txid: str, keys: list[bytes], lease: bool = True) -> None:
        for k in keys:
            self.locks[k] = txid
        if lease and txid not in self.lock_timers:
            self.lock_timers[txid] = self.send_after(LOCK_LEASE, Shard.lease_expired, txid)

    def _unlock(self, txid: str) -> None:
        for k in [k for k, t in self.locks.items() if t == txid]:
            del self.locks[k]
        timer = self.lock_timers.pop(txid, None)
        if timer is not None:
            timer.cancel()
        self.unstash_all()

    def _token(self, key: bytes, now: int) -> Token:
        entry = self.data.get(key)
        expired = entry is not None and entry[1] is not None and entry[1] <= now
        return (self.versions.get(key, self.floor), expired)

    def _stamp(self, changes: Changes) -> None:
        if not changes:
            return  # a change set only counts (and is journaled) if it changes something
        self.seq += 1
        seq = self.seq
        versions = self.versions
        for key in changes:
            versions[key] = seq
        if len(versions) > MAX_VERSIONS:
            # Forget the keys that no longer exist: they all move to a new floor
            # (a WATCH on one of them may then fail once without cause; every
            # replica does this at the same change set, so they stay in step).
            # If most keys still exist, forget them all: else a shard holding
            # more keys than this would rebuild the table on every write.
            self.floor = seq
            data = self.data
            kept = {k: v for k, v in versions.items() if k in data}
            self.versions = kept if len(kept) <= MAX_VERSIONS // 2 else {}

    def _clear(self) -> None:
        self.data.clear()
        self.seq += 1
        self.floor = self.seq
        self.versions = {}

    def _remember(self, wid: str, reply: Reply) -> None:
        outcomes = self.outcomes
        outcomes[wid] = reply
        if len(outcomes) > MAX_OUTCOMES:
            del outcomes[next(iter(outcomes))]

    def _apply(self, changes: Changes) -> None:
        data = self.data
        for key, entry in changes.items():
            if entry is None:
                data.pop(key, None)
            else:
                data[key] = entry

    async def _replicate(self, handler_name: str, *args: Any) -> None:
        for backup in list(self.backups):
            try:
                await backup.ask(handler_name, *args)
            except RadonError as exc:
                self._backup_lost(backup, exc)

    def _replicate_colocated(self, handler_name: str, *args: Any) -> None:
        """Give every backup the change set, without waiting (see
        :meth:`write_colocated`): an idle backup applies it now, as a turn of
        its own run in this one (``ask_nowait``: no mailbox, no task switch);
        a busy one, or one with messages queued, gets a tell, behind them.
        Either way the backup applies this primary's change sets in order.

        A tell to a backup that has stopped is a dead letter, not an error, and
        one that crashed restarts empty and refuses it: so the primary watches
        each backup it tells, and a notice of either is its loss, as a failed
        ask would be (:meth:`backup_down`). It watches here, on the first
        write, not when a backup joins: sandboxed shards, whose guest cannot
        watch, never write this way."""
        for backup in list(self.backups):
            if backup not in self._watched:
                self._watched.add(backup)
                self.watch(backup, Shard.backup_down)
            try:
                backup.ask_nowait(handler_name, *args)
            except WouldBlock:
                try:
                    backup.tell(handler_name, *args)
                except RadonError as exc:  # a full mailbox: a backup this far behind is lost
                    self._backup_lost(backup, exc)
            except Exception as exc:  # it refused or failed: lost, as a failed ask's
                self._backup_lost(backup, exc)

    @handler
    def backup_down(self, down: Down) -> None:
        """A watched backup crashed (it came back empty, out of the set) or stopped."""
        backup = down.ref
        if backup in self.backups:
            self._backup_lost(backup, down.reason or RadonError("the backup stopped"))
        else:
            self._unwatch(backup)

    def _backup_lost(self, backup: Ref[Shard], exc: BaseException) -> None:
        # A lost backup leaves the replica set; the cluster replaces it.
        self.log.warning("kv.backup_lost", backup=repr(backup), error=repr(exc))
        self.backups.remove(backup)
        self._unwatch(backup)
        if self.cluster is not None:
            self.cluster.tell("backup_lost", self.index, backup)

    def _unwatch(self, backup: Ref[Shard]) -> None:
        if backup in self._watched:
            self._watched.discard(backup)
            self.unwatch(backup)
