"""The store's Python API: routing, failover and transactions over the atoms."""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from radon_actors import (
    BadArguments,
    HandlerNotFound,
    NoSuchHost,
    RadonError,
    Ref,
    StateStore,
    System,
    WouldBlock,
)

from ._cluster import Cluster, ShardLost
from ._commands import WRITES, check_arity, is_data_command, keys_of, unknown_command
from ._journal import DEFAULT_RING, Journal, check_layout
from ._resp import Error, Reply, Simple
from ._ring import Ring
from ._shard import SCAN_BITS, NotMember, Shard, Token
from ._txn import Coordinator

__all__ = ["LATER", "Deployment", "Later", "Store", "deployment", "open_store"]


def clusterdown(shard: int, write: bool) -> Error:
    """The reply when a shard has no live replica (as Redis Cluster's CLUSTERDOWN)."""
    outcome = "; the write's outcome is unknown" if write else ""
    return Error(f"CLUSTERDOWN every replica of shard {shard} is lost{outcome}")


class Later:
    """What :meth:`Store.execute_now` says of a command that must wait: run it
    with ``execute(command, wid)``. ``wid`` is the id a write was already sent
    with, if it was (its primary failed during the turn): the retry then keeps
    it, so the write stays exactly once."""

    __slots__ = ("wid",)

    def __init__(self, wid: str | None) -> None:
        self.wid = wid


LATER = Later(None)


class Store:
    """A sharded, replicated key-value store made of atoms.

    ``await store.execute([b"SET", b"k", b"v"])`` runs one Redis command and
    returns its reply; ``await store.transaction([[b"INCR", b"a"], ...])`` runs a
    serializable multi-key transaction. Both are what the RESP frontend calls.

    Every write gets an id here (``wid``), which the shard records with its
    outcome: when a primary fails, the write is retried on the promoted backup
    with the same id and applied exactly once (see ``_shard.py``).
    """

    def __init__(
        self,
        cluster: Ref[Cluster],
        coordinators: list[Ref[Coordinator]],
        groups: list[Any],
        colocated: bool = False,
        answers_now: bool = True,
    ) -> None:
        self.cluster = cluster
        # False: every primary runs on another host, so none answers now.
        self.answers_now = answers_now
        # Every replica in this process, no journal: plain writes replicate by
        # tell, without waiting (``Shard.write_colocated``).
        self._write = "write_colocated" if colocated else "write"
        self.groups: list[list[Ref[Shard]]] = groups
        self.ring = Ring(len(groups))
        self._coordinators = itertools.cycle(coordinators)
        self._wids = write_ids()

    def execute_now(self, command: list[bytes]) -> Reply | Later:
        """:meth:`execute`, if the command can be answered without waiting: it
        names one shard, whose primary runs in this process, is idle and
        answers now (``Ref.ask_nowait``); else :class:`Later`. The frontend's
        poll loop answers most commands this way, with no task switch."""
        name = command[0].upper()
        args = command[1:]
        if not is_data_command(name):
            return unknown_command(command)
        error = check_arity(name, len(command))
        if error is not None:
            return error
        if not self.answers_now:
            return LATER
        keys = keys_of(name, args)
        ring = self.ring
        shard = ring.shard_of(keys[0])
        if len(keys) > 1 and any(ring.shard_of(k) != shard for k in keys[1:]):
            return LATER  # a transaction
        group = self.groups[shard]
        if not group:
            return LATER
        if name not in WRITES:
            try:
                reply: Reply = group[0].ask_nowait("read", name, args)
            except (BadArguments, HandlerNotFound):
                raise
            except RadonError:
                return LATER  # busy, elsewhere, fenced or gone: the waiting path knows
            return reply
        if self._write == "write":
            return LATER  # it waits for the journal or the backups: never now
        wid = next(self._wids)
        try:
            reply = group[0].ask_nowait(self._write, wid, name, args)
        except (BadArguments, HandlerNotFound):
            raise
        except (WouldBlock, NotMember):
            return Later(None)  # nothing ran
        except RadonError:
            # The primary failed during the turn: the retry keeps the write's id.
            return Later(wid)
        return reply

    async def execute(self, command: list[bytes], wid: str | None = None) -> Reply:
        """Run one data command: on its shard's primary, or as a transaction when
        its keys span shards (so MGET, MSET, DEL, RENAME... stay atomic, as in
        a standalone Redis). ``wid``: the id of a write already sent (see
        :class:`Later`)."""
        name = command[0].upper()
        args = command[1:]
        if not is_data_command(name):
            return unknown_command(command)
        error = check_arity(name, len(command))
        if error is not None:
            return error
        keys = keys_of(name, args)
        ring = self.ring
        shard = ring.shard_of(keys[0])
        if len(keys) > 1 and any(ring.shard_of(k) != shard for k in keys[1:]):
            return await self._transaction_reply([[name, *args]], single=True)
        reply: Reply
        if name in WRITES:
            wid = wid or next(self._wids)
            reply = await self.on_primary(shard, self._write, wid, name, args)
        else:
            reply = await self.on_primary(shard, "read", name, args)
        return reply

    async def on_primary(self, shard: int, handler: str, *args: Any) -> Any:
        """Ask the primary of ``shard``; when it is gone or fenced, fail over and
        ask the new one. Writes carry their id, so the retry of a write the dead
        primary had replicated is answered from its record, not applied again."""
        write = handler != "read"
        for _ in range(8):
            group = self.groups[shard]
            if not group:
                group = self.groups[shard] = (await self.cluster.ask(Cluster.table))[shard]
                if not group:
                    return clusterdown(shard, write)
            primary = group[0]
            try:
                return await primary.ask(handler, *args)
            except (BadArguments, HandlerNotFound):
                raise
            except NotMember:
                # Refused before running: a switchover or a failover moved the
                # lead. A newer table names the new primary; else fail it over.
                table = (await self.cluster.ask(Cluster.table))[shard]
                if table and table[0] != primary:
                    self.groups[shard] = table
                    continue
                if not await self._failover(shard, primary):
                    return clusterdown(shard, write)
            except RadonError:
                if not await self._failover(shard, primary):
                    return clusterdown(shard, write)
        return clusterdown(shard, write)

    async def _failover(self, shard: int, primary: Ref[Shard]) -> bool:
        try:
            self.groups[shard] = await self.cluster.ask(Cluster.failover, shard, primary)
        except ShardLost:
            self.groups[shard] = []
            return False
        return True

    async def transaction(
        self, commands: list[list[bytes]], watched: dict[bytes, Token] | None = None
    ) -> list[Reply] | Error | None:
        """Run data commands atomically (serializable); returns one reply per
        command, or None when a key in ``watched`` (see :meth:`watch`) changed."""
        normalised: list[list[bytes]] = []
        for command in commands:
            name = command[0].upper()
            if not is_data_command(name):
                return unknown_command(command)
            error = check_arity(name, len(command))
            if error is not None:
                return error
            normalised.append([name, *command[1:]])
        if not normalised and not watched:
            return []
        coordinator = next(self._coordinators)
        replies: list[Reply] | Error | None = await coordinator.ask(
            Coordinator.transaction, normalised, watched
        )
        return replies

    async def watch(self, keys: list[bytes]) -> dict[bytes, Token] | Error:
        """WATCH: each key's token now, for :meth:`transaction` to compare."""
        by_shard: dict[int, list[bytes]] = {}
        for key in keys:
            by_shard.setdefault(self.ring.shard_of(key), []).append(key)
        tokens: dict[bytes, Token] = {}
        for shard, shard_keys in by_shard.items():
            got = await self.on_primary(shard, "watch_keys", shard_keys)
            if isinstance(got, Error):
                return got
            tokens.update(got)
        return tokens

    async def _transaction_reply(self, commands: list[list[bytes]], single: bool) -> Reply:
        replies = await self.transaction(commands)
        if replies is None or isinstance(replies, Error) or not single:
            return replies
        return replies[0]

    async def mset(self, args: list[bytes]) -> Reply:
        return await self.execute([b"MSET", *args])

    async def mget(self, keys: list[bytes]) -> Reply:
        """All the values at one point in time, as a standalone Redis reads them:
        one turn on one shard, a read-only transaction across several."""
        return await self.execute([b"MGET", *keys])

    # the whole key space ---------------------------------------------------
    async def dbsize(self) -> Reply:
        total = 0
        for shard in range(len(self.groups)):
            n = await self.on_primary(shard, "dbsize")
            if isinstance(n, Error):
                return n
            total += n
        return total

    async def keys(self, pattern: bytes) -> Reply:
        found: list[Reply] = []
        for shard in range(len(self.groups)):
            keys = await self.on_primary(shard, "keys", pattern)
            if isinstance(keys, Error):
                return keys
            found.extend(keys)
        return found

    async def scan(self, cursor: int, count: int, pattern: bytes | None) -> Reply:
        """One SCAN step: the cursor is the shard (top 8 bits) and the scan hash
        to resume from there (see ``Shard.scan``); 0 starts and ends a scan."""
        shard, start = cursor >> SCAN_BITS, cursor & ((1 << SCAN_BITS) - 1)
        if shard >= len(self.groups):
            return [b"0", []]
        got = await self.on_primary(shard, "scan", start, count, pattern)
        if isinstance(got, Error):
            return got
        keys, resume = got
        if resume >= 0:
            following = (shard << SCAN_BITS) | resume
        elif shard + 1 < len(self.groups):
            following = (shard + 1) << SCAN_BITS
        else:
            following = 0
        return [b"%d" % following, list(keys)]

    async def randomkey(self) -> Reply:
        sizes = []
        for shard in range(len(self.groups)):
            n = await self.on_primary(shard, "dbsize")
            if isinstance(n, Error):
                return n
            sizes.append(n)
        for shard in random.choices(range(len(sizes)), weights=sizes, k=4) if sum(sizes) else []:
            key: Reply = await self.on_primary(shard, "randomkey")
            if key is not None:
                return key  # (None: only expired keys were left in that shard)
        return None

    async def placement(self) -> list[list[str]]:
        """Where each shard's replicas run (primary first), as ``Shard.where`` says."""
        groups = await self.cluster.ask(Cluster.table)
        return [[await replica.ask(Shard.where) for replica in group] for group in groups]

    async def flushall(self) -> Reply:
        """Delete every key: on each shard, one turn of its primary that clears
        every replica before it answers (so no write can land on some replicas
        only), retried once per shard through a failover by its id."""
        for shard in range(len(self.groups)):
            reply = await self.on_primary(shard, "flushall", next(self._wids))
            if isinstance(reply, Error):
                return reply
        return Simple("OK")


def write_ids() -> Iterator[str]:
    """Unique write ids: a random prefix per store, then a counter (cheap per write)."""
    prefix = uuid.uuid4().hex[:12]
    return (f"{prefix}:{n}" for n in itertools.count())


class Deployment:
    """Where the shard replicas run: the only thing that changes between "all in
    this process", "shards on worker hosts" and "shards sandboxed".

    With ``hosts``, replicas run on the system's worker hosts: those named, and
    any host that joins later (``System.start_host``/``connect_host``), which is
    how the store heals onto hosts that come back (see ``_cluster.py``).
    """

    def __init__(self, hosts: list[str] | None = None, sandbox: bool = False) -> None:
        if hosts and sandbox:
            raise ValueError("sandboxed shards on other hosts are not supported yet; pick one")
        self.hosts = list(hosts or [])
        self.sandbox = sandbox

    def live(self, system: System) -> list[str] | None:
        """The live worker hosts replicas may use (None: this process only)."""
        if not self.hosts:
            return None
        return [h for h in system.hosts if h != "local"]

    def options(self, host: str | None) -> dict[str, Any]:
        if host is not None:
            return {"host": host}
        return {"sandbox": True} if self.sandbox else {}


def deployment(hosts: list[str] | None = None, sandbox: bool = False) -> Deployment | None:
    """The :class:`Deployment` for ``--hosts``/``--sandbox`` (None: this process)."""
    if not hosts and not sandbox:
        return None
    return Deployment(hosts, sandbox)


@asynccontextmanager
async def open_store(
    system: System,
    *,
    shards: int = 8,
    replicas: int = 2,
    coordinators: int = 4,
    clock: Callable[[], float] = time.time,
    spawn_options: Deployment | None = None,
    heal_interval: float | None = 1.0,
    journal: StateStore | None = None,
    journal_ring: int = DEFAULT_RING,
) -> AsyncIterator[Store]:
    """Spawn the store's atoms in ``system`` and yield a :class:`Store` over them.

    ``spawn_options`` (a :class:`Deployment`, see :func:`deployment`) says where
    the shard replicas run. ``heal_interval`` is how often the cluster checks its
    replica sets and heals them (``None``: only when asked, ``Cluster.heal``).
    ``journal``: a state store to journal every change set in (``_journal.py``;
    ``--data-dir``), read back when the store opens; a snapshot every
    ``journal_ring / 2`` change sets per shard. None: memory only.
    """
    if not 1 <= shards < 2 ** (64 - SCAN_BITS):
        raise ValueError(f"shards must be between 1 and {2 ** (64 - SCAN_BITS) - 1}")
    where = spawn_options or Deployment()
    journals: list[Ref[Journal]] = []
    if journal is not None:
        await check_layout(journal, shards)
        journals = [await system.spawn(Journal, s, journal, journal_ring) for s in range(shards)]

    def live_hosts() -> list[str] | None:
        return where.live(system)

    async def place(
        shard: int, avoid: list[str], load: dict[str, int]
    ) -> tuple[Ref[Shard], str | None]:
        live = where.live(system)
        host: str | None = None
        if live is not None:
            if not live:
                raise NoSuchHost("no worker host is live to run a replica on")
            # The least loaded live host this shard does not use yet.
            fits = [h for h in live if h not in avoid] or live
            host = min(fits, key=lambda h: (load.get(h, 0), fits.index(h)))
        journal = journals[shard] if journals else None
        replica = await system.spawn(Shard, shard, clock, journal, **where.options(host))
        return replica, host

    cluster = await system.spawn(Cluster, shards, replicas, place, live_hosts, heal_interval)
    groups = await cluster.ask(Cluster.table)
    coords = [await system.spawn(Coordinator, cluster, shards, clock) for _ in range(coordinators)]
    try:
        colocated = not where.hosts and not where.sandbox and journal is None
        yield Store(cluster, coords, groups, colocated, answers_now=not where.hosts)
    finally:
        for ref in coords:
            await system.stop(ref)
        groups = await cluster.ask(Cluster.table)
        await system.stop(cluster)
        for group in groups:
            for replica in group:
                await system.stop(replica)
        for journal_ref in journals:
            await system.stop(journal_ref)
