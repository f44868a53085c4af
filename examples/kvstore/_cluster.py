"""The cluster atom: owns the shard replica sets, places them, fails over and heals.

It is the store's control plane and stays in the entry process. It knows each
replica's host (when the deployment has hosts), and keeps three promises:

* **Spread.** The replicas of a shard go to different hosts while there are
  enough, and the primaries are spread over the hosts: replica ``n`` of shard
  ``s`` starts on host ``(s + n) mod hosts``, so no host holds every primary.
* **Failover.** When a primary is reported dead, :meth:`Cluster.failover`
  promotes the next replica (which holds every acknowledged write, see
  ``_shard.py``) and starts a replacement, so the set returns to full strength.
* **Healing.** :meth:`Cluster.heal` (every ``heal_interval`` seconds, and on
  demand) drops replicas whose host is gone or that came back empty, brings
  every shard back to its replica count on live hosts, moves a doubled-up
  replica to a host that has none of its shard when one is live again, and
  rebalances primaries by switching a primary over to a backup on a less
  loaded host. A shard whose every replica is lost answers CLUSTERDOWN
  (:class:`ShardLost`) until a host is available, then starts again from its
  journal (``--data-dir``, ``_journal.py``), or else *empty*: its keys were in
  the memory of the replicas that died (as a Redis without persistence
  restarts empty), and that is logged as an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from radon_actors import Atom, RadonError, Ref, Rejection, Timer, handler

from ._shard import Shard

__all__ = ["Cluster", "Placer", "ShardLost"]

Group = list[Ref[Shard]]

Placer = Callable[[int, list[str], dict[str, int]], Awaitable[tuple[Ref[Shard], str | None]]]
"""``place(shard, avoid, load)``: spawn one replica of ``shard``, on the least
loaded (``load``: live replicas per host) live host not in ``avoid`` when there
is one; returns it and its host (None without hosts)."""

LiveHosts = Callable[[], list[str] | None]
"""The live hosts replicas may run on, or None when they run in this process."""


class ShardLost(Rejection):
    """Every replica of a shard is gone: its keys cannot be served (CLUSTERDOWN).

    A :class:`~radon_actors.Rejection`: an answer to whoever reported the loss,
    not a crash of the cluster atom, which keeps serving the other shards."""


class Cluster(Atom):
    """Spawns ``shards`` shard replica sets of ``replicas`` atoms each (see the
    module docs); the first replica of a set is its primary."""

    def __init__(
        self,
        shards: int,
        replicas: int,
        place: Placer,
        live_hosts: LiveHosts,
        heal_interval: float | None = 1.0,
    ) -> None:
        if shards < 1 or replicas < 1:
            raise ValueError("a cluster needs at least one shard and one replica")
        self.shards = shards
        self.replicas = replicas
        self.place = place
        self.live_hosts = live_hosts
        self.heal_interval = heal_interval
        self.groups: list[Group] = []
        self.host_of: dict[Ref[Shard], str | None] = {}
        self.timer: Timer | None = None

    async def on_start(self) -> None:
        live = self.live_hosts() or []
        for s in range(self.shards):
            group: Group = []
            for n in range(self.replicas):
                # Replica n of shard s prefers host (s + n) mod hosts: the primaries
                # (n = 0) go round the hosts, and a shard's replicas differ.
                preferred = [live[(s + n) % len(live)]] if live else []
                avoid = [h for h in live if h not in preferred]
                replica = await self._spawn(s, avoid)
                group.append(replica)
            # The primary starts from the shard's journal, if it has one (else
            # empty); the backups load a copy of it.
            primary = group[0]
            await primary.ask(Shard.recover)
            await primary.ask(Shard.promote, [], self.ref)
            for backup in group[1:]:
                await primary.ask(Shard.add_backup, backup)
            self.groups.append(group)
        if self.heal_interval is not None:
            self.timer = self.send_every(self.heal_interval, Cluster.heal)

    @handler
    def table(self) -> list[Group]:
        """Every shard's replica set, primary first."""
        return [list(g) for g in self.groups]

    @handler
    def hosts(self) -> list[list[str | None]]:
        """Every shard's replicas' hosts, primary first (None: this process)."""
        return [[self.host_of.get(r) for r in g] for g in self.groups]

    @handler
    async def failover(self, shard: int, dead: Ref[Shard]) -> Group:
        """The primary ``dead`` stopped answering: promote a backup (if ``dead``
        still leads; a caller with an older view just gets the current set).

        Raises :class:`ShardLost` when no replica of the shard is left."""
        group = self.groups[shard]
        if group and group[0] == dead:
            await self._drop(shard, dead)
            await self._replenish(shard)
        if not group:
            raise ShardLost(f"every replica of shard {shard} is gone")
        return list(group)

    @handler
    async def backup_lost(self, shard: int, dead: Ref[Shard]) -> None:
        """A primary reports that its backup ``dead`` stopped answering."""
        group = self.groups[shard]
        if dead in group[1:]:
            await self._drop(shard, dead)
            await self._replenish(shard)

    @handler
    async def heal(self) -> None:
        """Bring every shard back to full strength, spread (see the module docs)."""
        live = self.live_hosts()
        for shard, group in enumerate(self.groups):
            for replica in list(group):
                if replica in group and not await self._healthy(replica, live):
                    await self._drop(shard, replica)
            if not group:
                await self._restart_empty(shard)
            await self._replenish(shard)
            if live:
                await self._spread(shard, live)
        if live:
            await self._balance_primaries(live)

    # internals -------------------------------------------------------------
    async def _spawn(self, shard: int, avoid: list[str]) -> Ref[Shard]:
        load: dict[str, int] = {}
        for h in self.host_of.values():
            if h is not None:
                load[h] = load.get(h, 0) + 1
        replica, host = await self.place(shard, avoid, load)
        self.host_of[replica] = host
        return replica

    async def _healthy(self, replica: Ref[Shard], live: list[str] | None) -> bool:
        host = self.host_of.get(replica)
        if live is not None and host is not None and host not in live:
            return False
        try:
            member, _primary = await replica.ask(Shard.status)
        except RadonError:
            return False
        return bool(member)

    async def _drop(self, shard: int, dead: Ref[Shard]) -> None:
        """Remove ``dead`` from its set, promoting the next replica if it led."""
        group = self.groups[shard]
        if dead not in group:
            return  # dropped already (a promotion that failed took it too)
        was_primary = group[0] == dead
        group.remove(dead)
        self.host_of.pop(dead, None)
        # If it is only unreachable, or came back empty (restarted), it must not
        # linger: a tell, so a dead one just becomes a dead letter.
        dead.tell(Shard.retire)
        while was_primary and group:
            try:
                await group[0].ask(Shard.promote, group[1:], self.ref)
                break
            except RadonError:
                self.host_of.pop(group.pop(0), None)  # that backup is gone too
        if group:
            self.log.warning("kv.failover", shard=shard, primary=repr(group[0]), lost=repr(dead))
        else:
            self.log.error("kv.shard_lost", shard=shard)

    async def _replenish(self, shard: int) -> None:
        """Start backups until the set has its replica count (or no host is free)."""
        group = self.groups[shard]
        while group and len(group) < self.replicas:
            avoid = [h for r in group if (h := self.host_of.get(r)) is not None]
            try:
                fresh = await self._spawn(shard, avoid)
                await group[0].ask(Shard.add_backup, fresh)
            except RadonError as exc:
                self.log.warning("kv.backup_not_replaced", shard=shard, error=repr(exc))
                return
            group.append(fresh)

    async def _restart_empty(self, shard: int) -> None:
        if self.live_hosts() == []:
            return  # no host to run it on yet: CLUSTERDOWN until one joins
        try:
            first = await self._spawn(shard, [])
            journaled = await first.ask(Shard.recover)
            await first.ask(Shard.promote, [], self.ref)
        except RadonError as exc:
            self.log.warning("kv.shard_not_restarted", shard=shard, error=repr(exc))
            return
        self.groups[shard].append(first)
        if journaled:
            self.log.warning(
                "kv.shard_restarted_from_journal",
                shard=shard,
                why="every replica was lost; its keys were read back from the journal",
            )
        else:
            self.log.error(
                "kv.shard_restarted_empty",
                shard=shard,
                why="every replica was lost; its keys were only in their memory",
            )

    async def _spread(self, shard: int, live: list[str]) -> None:
        """Move one doubled-up backup to a live host with no replica of this shard."""
        group = self.groups[shard]
        hosts = [self.host_of.get(r) for r in group]
        free = [h for h in live if h not in hosts]
        doubled = [r for r, h in zip(group[1:], hosts[1:], strict=True) if hosts.count(h) > 1]
        if not free or not doubled:
            return
        try:
            fresh = await self._spawn(shard, [h for h in live if h != free[0]])
            await group[0].ask(Shard.add_backup, fresh)
        except RadonError as exc:
            self.log.warning("kv.respread_failed", shard=shard, error=repr(exc))
            return
        group.append(fresh)
        old = doubled[-1]
        await group[0].ask(Shard.drop_backup, old)
        group.remove(old)
        self.host_of.pop(old, None)
        old.tell(Shard.retire)

    async def _balance_primaries(self, live: list[str]) -> None:
        """Switch primaries over until no live host leads two more shards than another."""
        for _ in range(self.shards):
            load = {h: 0 for h in live}
            for group in self.groups:
                host = self.host_of.get(group[0]) if group else None
                if host in load:
                    load[host] += 1
            heavy = max(load, key=load.__getitem__)
            light = min(load, key=load.__getitem__)
            if load[heavy] - load[light] <= 1:
                return
            for shard, group in enumerate(self.groups):
                if group and self.host_of.get(group[0]) == heavy:
                    target = next((r for r in group[1:] if self.host_of.get(r) == light), None)
                    if target is not None:
                        await self._switchover(shard, target)
                        break
            else:
                return  # no backup on the light host to promote: spreading will add one

    async def _switchover(self, shard: int, target: Ref[Shard]) -> None:
        """Hand the primary role to ``target``, a synced backup, losing nothing:
        the old primary stops serving first (between its turns, so every write
        it acknowledged is on ``target``), then ``target`` leads and replicates
        to it. Clients that reach the old one are refused and find the new one."""
        group = self.groups[shard]
        old = group[0]
        try:
            await old.ask(Shard.demote)
        except RadonError as exc:
            self.log.warning("kv.switchover_failed", shard=shard, error=repr(exc))
            return
        try:
            await target.ask(Shard.promote, [r for r in group if r != target], self.ref)
        except RadonError as exc:
            # The target failed: the old primary leads again (it lost nothing).
            self.log.warning("kv.switchover_failed", shard=shard, error=repr(exc))
            await old.ask(Shard.promote, group[1:], self.ref)
            return
        group.remove(target)
        group.insert(0, target)
        self.log.info("kv.switchover", shard=shard, primary=repr(target))
