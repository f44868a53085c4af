"""The store's Python API: routing, failover and transactions over the atoms."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from radon_actors import BadArguments, HandlerNotFound, RadonError, Ref, System

from ._cluster import Cluster
from ._commands import WRITES, check_arity, is_data_command, keys_of
from ._resp import Error, Reply, Simple
from ._ring import Ring
from ._shard import NotMember, Shard
from ._txn import Coordinator

__all__ = ["Store", "deployment", "open_store"]

TRYAGAIN = Error("TRYAGAIN the shard's primary failed during the write; its outcome is unknown")


class Store:
    """A sharded, replicated key-value store made of atoms.

    ``await store.execute([b"SET", b"k", b"v"])`` runs one Redis command and
    returns its reply; ``await store.transaction([[b"INCR", b"a"], ...])`` runs a
    serializable multi-key transaction. Both are what the RESP frontend calls.
    """

    def __init__(
        self, cluster: Ref[Cluster], coordinators: list[Ref[Coordinator]], groups: list[Any]
    ) -> None:
        self.cluster = cluster
        self.groups: list[list[Ref[Shard]]] = groups
        self.ring = Ring(len(groups))
        self._coordinators = itertools.cycle(coordinators)

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
                    total += found if isinstance(found, int) else 0
                return total
            return await self._transaction_reply([[name, *args]], single=True)
        shard = self.ring.shard_of(keys[0])
        handler = "write" if name in WRITES else "read"
        for _ in range(8):
            primary = self.groups[shard][0]
            try:
                reply: Reply = await primary.ask(handler, name, args)
                return reply
            except (BadArguments, HandlerNotFound):
                raise
            except NotMember:
                # Refused before running (a replica that is no longer the
                # primary): fail over and retry, nothing was applied.
                self.groups[shard] = await self.cluster.ask(Cluster.failover, shard, primary)
            except RadonError:
                self.groups[shard] = await self.cluster.ask(Cluster.failover, shard, primary)
                if handler == "write":
                    return TRYAGAIN  # it may or may not have been applied
        return Error(f"CLUSTERDOWN shard {shard} has no reachable primary")

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
        if not keys:
            return Error("ERR wrong number of arguments for 'mget' command")
        return [await self.execute([b"GET", key]) for key in keys]

    async def placement(self) -> list[list[str]]:
        """Where each shard's replicas run (primary first), as ``Shard.where`` says."""
        groups = await self.cluster.ask(Cluster.table)
        return [[await replica.ask(Shard.where) for replica in group] for group in groups]

    async def flushall(self) -> None:
        for group in self.groups:
            await group[0].ask(Shard.flush)
            for backup in group[1:]:
                await backup.ask(Shard.flush)


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
