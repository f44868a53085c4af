"""The kvstore through failover: every write applied exactly once (issue #18).

A primary that dies after replicating a write but before replying leaves the
write on its backups; the store retries it on the promoted backup. These tests
make that happen deterministically (the primary's turn fails right after its
replication, as a SIGKILL at that moment would end it) and for real (a worker
host SIGKILLed under load), and check that no write is applied twice or lost.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import kill_workers

from examples.kvstore import Error, Simple, Store, deployment, open_store
from examples.kvstore._ring import Ring
from examples.kvstore._shard import Shard
from examples.kvstore._store import Deployment
from radon_actors import AtomStopped, open_system
from radon_actors.mailbox import BUDGET, budget
from radon_actors.testing import node_of


class Crash:
    """Arms a primary to die right after replicating a given operation."""

    def __init__(self) -> None:
        self.armed: str | None = None
        self.fired = 0


@pytest.fixture
def crash(monkeypatch: pytest.MonkeyPatch) -> Crash:
    state = Crash()
    replicate = Shard._replicate

    async def replicate_then_maybe_die(self: Shard, handler_name: str, *args: Any) -> None:
        await replicate(self, handler_name, *args)
        if state.armed == handler_name:
            state.armed = None
            state.fired += 1
            # The backups have it; the asker never hears back from this primary.
            raise AtomStopped("the primary died after replicating, before replying")

    replicate_colocated = Shard._replicate_colocated

    def replicate_colocated_then_maybe_die(self: Shard, handler_name: str, *args: Any) -> None:
        replicate_colocated(self, handler_name, *args)
        if state.armed == handler_name:
            state.armed = None
            state.fired += 1
            # The backups have it queued; the asker never hears back.
            raise AtomStopped("the primary died after replicating, before replying")

    monkeypatch.setattr(Shard, "_replicate", replicate_then_maybe_die)
    monkeypatch.setattr(Shard, "_replicate_colocated", replicate_colocated_then_maybe_die)
    return state


async def _values(store: Store, keys: list[bytes]) -> list[Any]:
    return [await store.execute([b"GET", k]) for k in keys]


async def _replicas_agree(store: Store) -> None:
    for group in await store.cluster.ask("table"):
        snapshots = [await replica.ask(Shard.snapshot) for replica in group]
        assert all(s == snapshots[0] for s in snapshots), [len(x) for x in snapshots]


@pytest.mark.parametrize("colocated", [True, False], ids=["by-tell", "by-ask"])
async def test_a_write_whose_primary_died_after_replicating_is_applied_once(
    crash: Crash, colocated: bool
) -> None:
    async with open_system() as system, open_store(system, shards=1, replicas=3) as store:
        # In one process plain writes replicate by tell (Shard.write_colocated);
        # elsewhere, or journaled, by ask (Shard.write): both apply once.
        assert store._write == "write_colocated"  # the in-process default
        store._write = "write_colocated" if colocated else "write"
        await store.execute([b"SET", b"n", b"5"])
        crash.armed = "apply"
        # Today's answer was -TRYAGAIN (outcome unknown); now the retry on the
        # promoted backup finds the write recorded and answers its reply.
        assert await store.execute([b"INCR", b"n"]) == 6
        assert crash.fired == 1
        assert await store.execute([b"GET", b"n"]) == b"6"
        await _replicas_agree(store)


class _SmallMailboxes(Deployment):
    """Shards in this process, each with a mailbox of four messages."""

    def options(self, host: str | None) -> dict[str, Any]:
        return {"mailbox_size": 4}


async def test_a_backup_too_far_behind_for_a_tell_is_replaced_with_a_full_copy() -> None:
    options = _SmallMailboxes()
    async with (
        open_system() as system,
        open_store(
            system, shards=1, replicas=2, spawn_options=options, heal_interval=None
        ) as store,
    ):
        assert store._write == "write_colocated"
        ((_, backup),) = await store.cluster.ask("table")
        # A message queued first keeps the backup from applying change sets at
        # once: each is told, behind it. Inline writes, one after the other
        # without a checkpoint: the backup's task gets no turn, its four places
        # fill, and the fourth change set is refused.
        backup.tell(Shard.status)
        # A fresh scheduling budget, so that no budget checkpoint falls among the
        # writes (what earlier tests left of it would decide where one falls).
        budget.left = BUDGET
        for i in range(12):
            assert await store.execute([b"SET", b"k%d" % i, b"v"]) == Simple("OK")
        await trio.testing.wait_all_tasks_blocked()
        ((_, replacement),) = await store.cluster.ask("table")
        assert replacement != backup  # dropped, and a fresh replica loaded in its place
        await _replicas_agree(store)
        assert await store.dbsize() == 12


async def test_a_single_shard_transaction_is_applied_once_through_failover(crash: Crash) -> None:
    # Finding 1 of the issue: MULTI/EXEC on one shard, its primary lost mid-reply.
    async with open_system() as system, open_store(system, shards=1, replicas=2) as store:
        await store.mset([b"a", b"100", b"b", b"100"])
        crash.armed = "apply"
        replies = await store.transaction([[b"DECRBY", b"a", b"30"], [b"INCRBY", b"b", b"30"]])
        assert replies == [70, 130]
        assert crash.fired == 1
        assert await _values(store, [b"a", b"b"]) == [b"70", b"130"]  # not 40 / 160


async def test_a_commit_retried_on_a_promoted_backup_changes_nothing(crash: Crash) -> None:
    async with open_system() as system, open_store(system, shards=4, replicas=2) as store:
        ring = Ring(4)
        keys = [b"k%d" % i for i in range(64)]
        a = keys[0]
        b = next(k for k in keys if ring.shard_of(k) != ring.shard_of(a))
        await store.mset([a, b"10", b, b"10"])
        crash.armed = "apply_unlock"
        assert await store.transaction([[b"INCR", a], [b"INCR", b]]) == [11, 11]
        assert crash.fired == 1
        assert await _values(store, [a, b]) == [b"11", b"11"]
        await _replicas_agree(store)


async def test_flushall_clears_every_replica_in_one_turn_and_once(crash: Crash) -> None:
    async with open_system() as system, open_store(system, shards=2, replicas=2) as store:
        await store.mset([b"x", b"1", b"y", b"2"])
        crash.armed = "clear"
        assert await store.flushall() == Simple("OK")
        assert crash.fired == 1
        await store.execute([b"SET", b"after", b"1"])
        assert await _values(store, [b"x", b"y", b"after"]) == [None, None, b"1"]
        await _replicas_agree(store)


async def test_writes_racing_flushall_leave_the_replicas_agreeing() -> None:
    # Finding 2: FLUSHALL cleared primaries, then backups, so a write landing in
    # between lived on the primary only, and was lost when that primary died.
    async with open_system() as system, open_store(system, shards=2, replicas=2) as store:
        acked_after: list[bytes] = []
        flushed = trio.Event()

        async def writer(w: int) -> None:
            for i in range(150):
                key = b"w%d:%d" % (w, i)
                after = flushed.is_set()  # sent after FLUSHALL was acknowledged
                if await store.execute([b"SET", key, b"v"]) == Simple("OK") and after:
                    acked_after.append(key)
                await trio.lowlevel.checkpoint()

        async def flusher() -> None:
            for _ in range(20):
                await trio.lowlevel.checkpoint()
            assert await store.flushall() == Simple("OK")
            flushed.set()

        async with trio.open_nursery() as nursery:
            for w in range(3):
                nursery.start_soon(writer, w)
            nursery.start_soon(flusher)
        await _replicas_agree(store)
        for shard in range(2):
            await system.stop(store.groups[shard][0])  # every primary dies
        assert acked_after
        assert await _values(store, acked_after) == [b"v"] * len(acked_after)


async def test_a_shard_with_no_replica_left_answers_clusterdown() -> None:
    async with open_system() as system, open_store(system, shards=1, replicas=2) as store:
        await store.execute([b"SET", b"k", b"v"])
        for replica in list(store.groups[0]):
            await system.stop(replica)
        reply = await store.execute([b"GET", b"k"])
        assert isinstance(reply, Error) and reply.startswith("CLUSTERDOWN")
        reply = await store.execute([b"SET", b"k", b"w"])
        assert isinstance(reply, Error) and "outcome is unknown" in reply
        reply = await store.transaction([[b"INCR", b"k"], [b"INCR", b"k"]])
        assert isinstance(reply, Error) and reply.startswith("CLUSTERDOWN")
        # The cluster atom is not taken down with the shard: it still answers.
        assert len(await store.cluster.ask("table")) == 1


async def test_single_shard_transfers_through_a_killed_host_apply_each_once() -> None:
    """Finding 1 for real: MULTI/EXEC transfers between accounts of one shard,
    the host of that shard's primary SIGKILLed mid-run; the balances must be
    exactly what the acknowledged transfers make them. (The kill must land
    between a replication and its reply to show the old double apply: it did in
    about one run in three; the crash fixture above makes that moment certain.)"""
    accounts = [b"acct:%d" % i for i in range(400)]
    ring = Ring(4)
    target = ring.shard_of(accounts[0])
    accounts = [a for a in accounts if ring.shard_of(a) == target][:20]
    async with open_system() as system:
        try:
            hosts = [await system.start_host("w1"), await system.start_host("w2")]
            async with open_store(
                system, shards=4, replicas=2, coordinators=2, spawn_options=deployment(hosts)
            ) as store:
                for a in accounts:
                    await store.execute([b"SET", a, b"1000"])
                node = node_of(system)
                assert node is not None
                primary_host = await store.groups[target][0].ask(Shard.where)
                victim = next(
                    p for p in node.processes.values() if primary_host.endswith(f"/{p.pid}")
                )
                rng = random.Random(3)
                acked: list[tuple[bytes, bytes, int]] = []
                errors: list[Any] = []
                halfway = trio.Event()

                async def client() -> None:
                    for _ in range(60):
                        src, dst = rng.sample(accounts, 2)
                        amount = rng.randint(1, 20)
                        replies = await store.transaction(
                            [[b"DECRBY", src, b"%d" % amount], [b"INCRBY", dst, b"%d" % amount]]
                        )
                        if isinstance(replies, Error):
                            errors.append(replies)
                        else:
                            acked.append((src, dst, amount))
                        if len(acked) == 150:
                            halfway.set()

                async def killer() -> None:
                    await halfway.wait()
                    os.kill(victim.pid, signal.SIGKILL)

                async with trio.open_nursery() as nursery:
                    for _ in range(8):
                        nursery.start_soon(client)
                    nursery.start_soon(killer)
                assert errors == []  # one replica of every shard survived
                expected = dict.fromkeys(accounts, 1000)
                for src, dst, amount in acked:
                    expected[src] -= amount
                    expected[dst] += amount
                got = dict(zip(accounts, await _values(store, accounts), strict=True))
                assert got == {a: b"%d" % v for a, v in expected.items()}
        finally:
            kill_workers(system)


async def _kill_and_wait(system: Any, name: str) -> None:
    """SIGKILL a worker host and wait until this process knows it is down."""
    node = node_of(system)
    assert node is not None
    down = trio.Event()

    def seen(host: str, reason: object) -> None:
        if host == name:
            down.set()

    node.host_down_callbacks.append(seen)
    node.processes[node.peer_by_name(name).node_id].kill()
    await down.wait()
    node.host_down_callbacks.remove(seen)


def _balanced(hosts: list[list[str | None]], live: list[str]) -> bool:
    leads = [group[0] for group in hosts]
    counts = [leads.count(h) for h in live]
    return max(counts) - min(counts) <= 1


async def test_replicas_heal_through_host_losses_and_returns() -> None:
    """Finding 3: spread primaries, re-replicate after a host loss, spread again
    when a host comes back, survive the second loss, answer CLUSTERDOWN with no
    host left, and serve again when one returns."""
    from examples.kvstore._cluster import Cluster

    async with open_system() as system:
        try:
            await system.start_host("w1")
            await system.start_host("w2")
            async with open_store(
                system,
                shards=4,
                replicas=2,
                spawn_options=deployment(["w1", "w2"]),
                heal_interval=None,  # the test heals when it wants to
            ) as store:
                cluster = store.cluster
                hosts = await cluster.ask(Cluster.hosts)
                assert all(len(set(group)) == 2 for group in hosts)  # a shard's replicas differ
                assert _balanced(hosts, ["w1", "w2"])  # not every primary on one host
                keys = [b"key:%d" % i for i in range(120)]
                for k in keys:
                    assert await store.execute([b"SET", k, k]) == Simple("OK")

                await _kill_and_wait(system, "w1")
                assert await _values(store, keys) == keys  # through failover
                await cluster.ask(Cluster.heal)
                hosts = await cluster.ask(Cluster.hosts)
                assert hosts == [["w2", "w2"]] * 4  # full strength on what is left
                await _replicas_agree(store)

                await system.start_host("w3")  # a host comes (back)
                await cluster.ask(Cluster.heal)
                hosts = await cluster.ask(Cluster.hosts)
                assert all(sorted(group) == ["w2", "w3"] for group in hosts)
                assert _balanced(hosts, ["w2", "w3"])
                assert await _values(store, keys) == keys
                await _replicas_agree(store)

                await _kill_and_wait(system, "w2")  # the second loss: nothing lost
                assert await _values(store, keys) == keys
                await cluster.ask(Cluster.heal)
                assert await cluster.ask(Cluster.hosts) == [["w3", "w3"]] * 4

                await _kill_and_wait(system, "w3")  # no host left
                reply = await store.execute([b"GET", keys[0]])
                assert isinstance(reply, Error) and reply.startswith("CLUSTERDOWN")
                await cluster.ask(Cluster.heal)  # nothing to heal onto: still down
                reply = await store.execute([b"SET", b"x", b"1"])
                assert isinstance(reply, Error) and reply.startswith("CLUSTERDOWN")

                await system.start_host("w4")
                await cluster.ask(Cluster.heal)  # back, empty: the keys died with w3
                assert await store.execute([b"SET", b"x", b"1"]) == Simple("OK")
                assert await store.execute([b"GET", keys[0]]) is None
                assert await store.dbsize() == 1
                assert await cluster.ask(Cluster.hosts) == [["w4", "w4"]] * 4
        finally:
            kill_workers(system)
