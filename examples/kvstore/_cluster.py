"""The cluster atom: owns the shard replica sets and handles failover."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from radon_actors import Atom, RadonError, Ref, Rejection, handler

from ._shard import Shard

__all__ = ["Cluster", "ShardLost"]

Group = list[Ref[Shard]]


class ShardLost(Rejection):
    """Every replica of a shard is gone: its keys cannot be served (CLUSTERDOWN).

    A :class:`~radon_actors.Rejection`: an answer to whoever reported the loss,
    not a crash of the cluster atom, which keeps serving the other shards."""


class Cluster(Atom):
    """Spawns ``shards`` shard replica sets of ``replicas`` atoms each.

    The first replica of a set is its primary. When a primary is reported dead,
    :meth:`failover` promotes the next replica (which holds every acknowledged
    write, see ``_shard.py``) and starts a replacement, so the set returns to full
    strength; a primary reports a lost backup the same way. Failover is
    idempotent: a report about a replica no longer in the set just returns it.

    ``new_replica(shard)`` spawns one replica wherever the deployment wants it
    (this process, a worker host, a sandbox): the cluster itself is the control
    plane and stays in the entry process.
    """

    def __init__(
        self,
        shards: int,
        replicas: int,
        new_replica: Callable[[int], Awaitable[Ref[Shard]]],
    ) -> None:
        if shards < 1 or replicas < 1:
            raise ValueError("a cluster needs at least one shard and one replica")
        self.shards = shards
        self.replicas = replicas
        self.new_replica = new_replica
        self.groups: list[Group] = []

    async def on_start(self) -> None:
        for s in range(self.shards):
            group = [await self.new_replica(s) for _ in range(self.replicas)]
            for replica in group:
                await replica.ask(Shard.join)
            await group[0].ask(Shard.promote, group[1:], self.ref)
            self.groups.append(group)

    @handler
    def table(self) -> list[Group]:
        """Every shard's replica set, primary first."""
        return [list(g) for g in self.groups]

    @handler
    async def failover(self, shard: int, dead: Ref[Shard]) -> Group:
        """``dead`` stopped answering: promote a backup if it was the primary.

        Raises :class:`ShardLost` when no replica of the shard is left."""
        group = self.groups[shard]
        if not group:
            raise ShardLost(f"every replica of shard {shard} is gone")
        if dead not in group:
            return list(group)
        was_primary = group[0] == dead
        group.remove(dead)
        # If it is only unreachable, or came back empty (restarted), it must not
        # linger: a tell, so a dead one just becomes a dead letter.
        dead.tell(Shard.retire)
        while was_primary and group:
            try:
                await group[0].ask(Shard.promote, group[1:], self.ref)
                break
            except RadonError:
                group.pop(0)  # that backup is gone too
        if not group:
            self.log.error("kv.shard_lost", shard=shard)
            raise ShardLost(f"every replica of shard {shard} is gone")
        self.log.warning("kv.failover", shard=shard, primary=repr(group[0]), lost=repr(dead))
        try:
            fresh = await self.new_replica(shard)
            await group[0].ask(Shard.add_backup, fresh)
            group.append(fresh)
        except RadonError as exc:
            self.log.warning("kv.backup_not_replaced", shard=shard, error=repr(exc))
        return list(group)
