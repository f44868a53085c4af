"""Multi-key transactions: two-phase commit through a coordinator atom.

A transaction is a list of data commands (MULTI ... EXEC, MSET, or the Python
API). Confined to one shard, it is one ``batch`` turn there. Across shards the
coordinator runs strict two-phase locking with a two-phase commit:

1. *prepare*, shard by shard in index order: lock the transaction's keys and read
   their entries. A shard that finds a key locked by another transaction refuses
   (no-wait); the coordinator then aborts what it prepared, backs off for a random
   while, and retries, so transactions never deadlock.
2. The coordinator runs the commands over the locked entries with the same code
   the shards use, collecting each shard's changes.
3. *commit* on every prepared shard: apply the changes and release the locks.

Every transaction holds all its locks at its commit point, which makes the
schedule serializable (strict 2PL). Locks and commits are replicated to backups
before they are acknowledged, so a backup promoted mid-transaction can take the
commit (the coordinator retries it on the new primary, which records each commit:
a retried one changes nothing). A single-shard ``batch`` carries an id for the
same reason: retried on a promoted backup, it is answered from that backup's
record of it, never applied twice.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any, cast

import trio

from radon_actors import Atom, RadonError, Ref, handler

from ._cluster import ShardLost
from ._commands import Entry, execute, keys_of
from ._resp import Error, Reply
from ._ring import Ring
from ._shard import Changes, NotMember, Shard, Token, changed

__all__ = ["Coordinator"]

MAX_ATTEMPTS = 50


class _Overlay:
    """The locked entries of a transaction, with the changes it makes on top."""

    def __init__(self, entries: dict[bytes, Entry | None]) -> None:
        self.entries = entries
        self.changes: Changes = {}

    def get(self, key: bytes) -> Entry | None:
        return self.entries.get(key)

    def put(self, key: bytes, entry: Entry) -> None:
        self.entries[key] = entry
        self.changes[key] = entry

    def delete(self, key: bytes) -> bool:
        if self.entries.get(key) is None:
            return False
        self.entries[key] = None
        self.changes[key] = None
        return True


class Coordinator(Atom):
    """Runs transactions for the frontends (one at a time per coordinator)."""

    def __init__(self, cluster: Ref[Atom], shards: int, clock: Callable[[], float]) -> None:
        self.cluster = cluster
        self.ring = Ring(shards)
        self.clock = clock
        self.groups: list[list[Ref[Shard]]] = []

    async def on_start(self) -> None:
        self.groups = await self.cluster.ask("table")

    @handler
    async def transaction(
        self, commands: list[list[bytes]], watched: dict[bytes, Token] | None = None
    ) -> list[Reply] | Error | None:
        """Run ``commands`` atomically; None (nothing run) if a key in ``watched``
        (WATCH's tokens, from ``Shard.watch_keys``) changed since it was watched."""
        by_shard: dict[int, list[bytes]] = {}
        for cmd in commands:
            for key in keys_of(cmd[0], cmd[1:]):
                by_shard.setdefault(self.ring.shard_of(key), []).append(key)
        for key in watched or ():
            by_shard.setdefault(self.ring.shard_of(key), []).append(key)
        try:
            return await self._run(by_shard, commands, watched)
        except ShardLost as exc:
            return Error(f"CLUSTERDOWN {exc}; the transaction's outcome is unknown")

    async def _run(
        self,
        by_shard: dict[int, list[bytes]],
        commands: list[list[bytes]],
        watched: dict[bytes, Token] | None,
    ) -> list[Reply] | Error | None:
        if len(by_shard) <= 1:
            shard = next(iter(by_shard), 0)
            # The id makes a retry on a promoted backup answer from its record.
            batch: Any = await self._call(shard, "batch", uuid.uuid4().hex, commands, watched)
            return cast("list[Reply] | None", batch)
        txid = uuid.uuid4().hex
        for attempt in range(MAX_ATTEMPTS):
            entries: dict[bytes, Entry | None] = {}
            tokens: dict[bytes, Token] = {}
            prepared: list[int] = []
            for shard in sorted(by_shard):
                got: Any = await self._call(shard, "prepare", txid, by_shard[shard])
                if got is None:
                    break
                prepared.append(shard)
                for key, (entry, token) in got.items():
                    entries[key] = entry
                    tokens[key] = token
            else:
                if watched and any(changed(t, tokens[k]) for k, t in watched.items()):
                    for shard in prepared:
                        await self._call(shard, "abort", txid)
                    return None
                view = _Overlay(entries)
                now = int(self.clock() * 1000)  # ms, as entries' expiry times
                replies = [execute(view, cmd[0], cmd[1:], now) for cmd in commands]
                per_shard: dict[int, Changes] = {s: {} for s in prepared}
                for key, entry in view.changes.items():
                    per_shard[self.ring.shard_of(key)][key] = entry
                for i, shard in enumerate(prepared):
                    refused = await self._call(shard, "commit", txid, per_shard[shard])
                    if isinstance(refused, Error):
                        # Its journal refused the commit (``_journal.py``): that
                        # shard and those after it release their locks unchanged.
                        for later in prepared[i:]:
                            await self._call(later, "abort", txid)
                        return refused
                return replies
            for shard in prepared:
                await self._call(shard, "abort", txid)
            # Randomised exponential back-off before retrying a refused prepare.
            await trio.sleep(random.uniform(0, 0.0005 * 2 ** min(attempt, 8)))
        return Error("TRYAGAIN transaction kept conflicting with others; retry it")

    async def _call(self, shard: int, name: str, *args: object) -> object:
        """Ask the shard's primary, failing over (and retrying) if it is gone."""
        for _ in range(8):
            group = self.groups[shard]
            if not group:
                group = self.groups[shard] = (await self.cluster.ask("table"))[shard]
                if not group:
                    raise ShardLost(f"every replica of shard {shard} is gone")
            primary = group[0]
            try:
                return await primary.ask(name, *args)
            except NotMember:
                # Refused before running (see Store.on_primary): find the new lead.
                table = (await self.cluster.ask("table"))[shard]
                if table and table[0] != primary:
                    self.groups[shard] = table
                    continue
                self.groups[shard] = await self._failover(shard, primary)
            except RadonError as exc:
                if not _is_unreachable(exc):
                    raise
                self.groups[shard] = await self._failover(shard, primary)
        raise ShardLost(f"shard {shard} has no reachable primary")

    async def _failover(self, shard: int, primary: Ref[Shard]) -> list[Ref[Shard]]:
        try:
            group: list[Ref[Shard]] = await self.cluster.ask("failover", shard, primary)
        except ShardLost:
            self.groups[shard] = []  # asked again next time: a host may have come back
            raise
        return group


def _is_unreachable(exc: RadonError) -> bool:
    # Handler and argument errors are bugs to report, not failures to route around.
    from radon_actors import BadArguments, HandlerNotFound

    return not isinstance(exc, (BadArguments, HandlerNotFound))
