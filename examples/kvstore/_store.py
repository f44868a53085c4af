"""The store's Python API: routing, failover and transactions over the atoms."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from radon_actors import BadArguments, HandlerNotFound, RadonError, Ref, System

from ._cluster import Cluster, ShardLost
from ._commands import WRITES, check_arity, is_data_command, keys_of
from ._resp import Error, Reply, Simple
from ._ring import Ring
from ._shard import Shard
from ._txn import Coordinator

__all__ = ["Store", "deployment", "open_store"]


def clusterdown(shard: int, write: bool) -> Error:
    """The reply when a shard has no live replica (as Redis Cluster's CLUSTERDOWN)."""
    outcome = "; the write's outcome is unknown" if write else ""
    return Error(f"CLUSTERDOWN every replica of shard {shard} is lost{outcome}")


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
        self, cluster: Ref[Cluster], coordinators: list[Ref[Coordinator]], groups: list[Any]
    ) -> None:
        self.cluster = cluster
        self.groups: list[list[Ref[Shard]]] = groups
        self.ring = Ring(len(groups))
        self._coordinators = itertools.cycle(coordinators)
        self._wids = write_ids()

    async def execute(self, command: list[bytes]) -> Reply:
        name = command[0].upper()
        args = command[1:]
        if not is_data_command(name):
            return Error(f"ERR unknown command '{command[0].decode(errors='replace')}'")
        error = check_arity(name, len(command))
        if error is not None:
            return error
        keys = keys_of(name, args)
        shards = {self.ring.shard_of(k) for k in keys} if len(keys) > 1 else None
        if shards is not None and len(shards) > 1:  # DEL / EXISTS over several shards
            if name == b"EXISTS":
                total = 0
                for key in keys:
                    found = await self.execute([b"EXISTS", key])
                    if isinstance(found, Error):
                        return found
                    total += found if isinstance(found, int) else 0
                return total
            return await self._transaction_reply([[name, *args]], single=True)
        shard = self.ring.shard_of(keys[0])
        reply: Reply
        if name in WRITES:
            reply = await self.on_primary(shard, "write", next(self._wids), name, args)
        else:
            reply = await self.on_primary(shard, "read", name, args)
        return reply

    async def on_primary(self, shard: int, handler: str, *args: Any) -> Any:
        """Ask the primary of ``shard``; when it is gone or fenced, fail over and
        ask the new one. Writes carry their id, so the retry of a write the dead
        primary had replicated is answered from its record, not applied again."""
        write = handler != "read"
        for _ in range(8):
            primary = self.groups[shard][0]
            try:
                return await primary.ask(handler, *args)
            except (BadArguments, HandlerNotFound):
                raise
            except RadonError:
                try:
                    self.groups[shard] = await self.cluster.ask(Cluster.failover, shard, primary)
                except ShardLost:
                    return clusterdown(shard, write)
        return clusterdown(shard, write)

    async def transaction(self, commands: list[list[bytes]]) -> list[Reply] | Error:
        """Run data commands atomically (serializable); returns one reply per command."""
        normalised: list[list[bytes]] = []
        for command in commands:
            name = command[0].upper()
            if not is_data_command(name):
                return Error(f"ERR unknown command '{command[0].decode(errors='replace')}'")
            error = check_arity(name, len(command))
            if error is not None:
                return error
            normalised.append([name, *command[1:]])
        if not normalised:
            return []
        coordinator = next(self._coordinators)
        replies: list[Reply] | Error = await coordinator.ask(Coordinator.transaction, normalised)
        return replies

    async def _transaction_reply(self, commands: list[list[bytes]], single: bool) -> Reply:
        replies = await self.transaction(commands)
        if isinstance(replies, Error) or not single:
            return replies
        return replies[0]

    async def mset(self, args: list[bytes]) -> Reply:
        if len(args) < 2 or len(args) % 2:
            return Error("ERR wrong number of arguments for 'mset' command")
        pairs = [[b"SET", args[i], args[i + 1]] for i in range(0, len(args), 2)]
        replies = await self.transaction(pairs)
        return replies if isinstance(replies, Error) else Simple("OK")

    async def mget(self, keys: list[bytes]) -> Reply:
        """All the values at one point in time, as a standalone Redis reads them:
        one turn on one shard, a read-only transaction across several."""
        if not keys:
            return Error("ERR wrong number of arguments for 'mget' command")
        return await self.transaction([[b"GET", key] for key in keys])

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


def deployment(
    hosts: list[str] | None = None, sandbox: bool = False
) -> Callable[[int, int], dict[str, Any]] | None:
    """The ``spawn_options`` of a deployment: the only thing that changes between
    "all in this process", "shards on worker hosts" and "shards sandboxed".

    With ``hosts``, replicas go round-robin over the live hosts among them, so the
    replicas of one shard land on different hosts while there are enough of them.
    """
    if hosts and sandbox:
        raise ValueError("sandboxed shards on other hosts are not supported yet; pick one")
    if hosts:
        from radon_actors import RoundRobin

        policy = RoundRobin(among=hosts)
        return lambda shard, n: {"host": policy}
    if sandbox:
        return lambda shard, n: {"sandbox": True}
    return None


@asynccontextmanager
async def open_store(
    system: System,
    *,
    shards: int = 8,
    replicas: int = 2,
    coordinators: int = 4,
    clock: Callable[[], float] = time.time,
    spawn_options: Callable[[int, int], dict[str, Any]] | None = None,
) -> AsyncIterator[Store]:
    """Spawn the store's atoms in ``system`` and yield a :class:`Store` over them.

    ``spawn_options(shard, n)`` may return extra keyword arguments of
    ``system.spawn`` for the ``n``-th replica started (for example ``host=`` or
    ``sandbox=``): that is the whole difference between deployments.
    """
    started = itertools.count()

    async def new_replica(shard: int) -> Ref[Shard]:
        options = spawn_options(shard, next(started)) if spawn_options is not None else {}
        return await system.spawn(Shard, shard, clock, **options)

    cluster = await system.spawn(Cluster, shards, replicas, new_replica)
    groups = await cluster.ask(Cluster.table)
    coords = [await system.spawn(Coordinator, cluster, shards, clock) for _ in range(coordinators)]
    try:
        yield Store(cluster, coords, groups)
    finally:
        for ref in coords:
            await system.stop(ref)
        groups = await cluster.ask(Cluster.table)
        await system.stop(cluster)
        for group in groups:
            for replica in group:
                await system.stop(replica)
