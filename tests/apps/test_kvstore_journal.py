"""The kvstore's journal (``--data-dir``): every acknowledged write survives a
full restart, a write the journal refuses is not applied, and a primary that
died between journaling and replicating is caught up on failover (issue #19).

The command line, with a process SIGKILLed, is in ``test_kvstore_cli.py``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from examples.kvstore import Error, Simple, Store, open_store
from examples.kvstore._journal import Journal
from examples.kvstore._ring import Ring
from examples.kvstore._shard import Shard
from radon_actors import AtomStopped, SQLiteStore, StateStore, open_system


class FlakyStore:
    """A state store whose writes fail while ``failing`` is set (a full disk)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.failing = False

    async def read(self, atom_type: str, key: str, name: str) -> Any:
        return await self.inner.read(atom_type, key, name)

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        if self.failing:
            raise OSError(28, "No space left on device")
        return await self.inner.write(atom_type, key, name, document, etag)

    async def clear(self, atom_type: str, key: str, name: str, etag: str | None) -> str:
        return await self.inner.clear(atom_type, key, name, etag)

    async def scan(self, name: str) -> list[tuple[str, str, str, str]]:
        return await self.inner.scan(name)

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def url(self) -> str | None:
        return None


@asynccontextmanager
async def kv(**options: Any) -> AsyncIterator[Store]:
    """A store in a system of its own (``open_store``'s options)."""
    async with open_system() as system, open_store(system, **options) as store:
        yield store


async def _everything(store: Store) -> dict[bytes, Any]:
    keys = await store.keys(b"*")
    assert isinstance(keys, list)
    return {k: await store.execute([b"GET", k]) for k in keys if isinstance(k, bytes)}


async def _replicas_agree(store: Store) -> None:
    for group in await store.cluster.ask("table"):
        snapshots = [await replica.ask(Shard.snapshot) for replica in group]
        assert all(s == snapshots[0] for s in snapshots)


async def test_a_restarted_store_reads_back_every_acknowledged_write(tmp_path: Path) -> None:
    # A ring of 8 slots: snapshots every 4 change sets and the ring wraps many
    # times, so replay goes through a snapshot and the slots after it.
    rng = random.Random(7)
    path = tmp_path / "kv.sqlite3"
    ring = Ring(3)
    keys = [b"k%d" % i for i in range(30)]
    a = keys[0]
    b = next(k for k in keys if ring.shard_of(k) != ring.shard_of(a))
    journal = SQLiteStore(path)
    async with kv(shards=3, journal=journal, journal_ring=8) as store:
        for step in range(300):
            key = rng.choice(keys)
            roll = rng.random()
            if roll < 0.4:
                await store.execute([b"SET", key, b"v%d" % step])
            elif roll < 0.6:
                await store.execute([b"INCR", b"n:" + key])
            elif roll < 0.7:
                await store.execute([b"DEL", key])
            elif roll < 0.8:
                await store.execute([b"EXPIRE", key, b"3600"])
            elif roll < 0.9:  # across shards: a two-phase commit
                assert await store.transaction([[b"INCR", a], [b"INCR", b]]) is not None
            elif roll < 0.98:  # one shard: a batch
                await store.transaction([[b"APPEND", key, b"+"], [b"GET", key]])
            else:
                assert await store.flushall() == Simple("OK")
        expected = await _everything(store)
        ttl = await store.execute([b"TTL", a])
    await journal.aclose()
    assert expected

    journal = SQLiteStore(path)
    async with kv(shards=3, journal=journal, journal_ring=8) as store:
        assert await _everything(store) == expected
        assert await store.execute([b"TTL", a]) == ttl
        await _replicas_agree(store)
        await store.execute([b"SET", b"later", b"1"])  # and it goes on from there
    await journal.aclose()


async def test_without_a_journal_a_restart_starts_empty(tmp_path: Path) -> None:
    async with kv(shards=2) as store:
        await store.execute([b"SET", b"k", b"v"])
    async with kv(shards=2) as store:
        assert await store.execute([b"GET", b"k"]) is None


async def test_a_write_the_journal_refuses_is_not_applied(tmp_path: Path) -> None:
    inner = SQLiteStore(tmp_path / "kv.sqlite3")
    flaky = FlakyStore(inner)
    ring = Ring(2)
    keys = [b"k%d" % i for i in range(20)]
    k = keys[0]
    j = next(key for key in keys if ring.shard_of(key) == ring.shard_of(k) and key != k)
    other = next(key for key in keys if ring.shard_of(key) != ring.shard_of(k))
    async with kv(shards=2, replicas=2, journal=flaky) as store:
        await store.execute([b"SET", k, b"1"])
        flaky.failing = True
        refused = await store.execute([b"INCR", k])
        assert isinstance(refused, Error)
        assert refused.startswith("MISCONF Errors writing to the AOF file")
        batch = await store.transaction([[b"INCR", k], [b"SET", j, b"1"]])  # one shard
        assert isinstance(batch, Error) and batch.startswith("MISCONF")
        commit = await store.transaction([[b"INCR", k], [b"SET", other, b"1"]])  # two
        assert isinstance(commit, Error) and commit.startswith("MISCONF")
        assert await store.execute([b"MGET", k, j, other]) == [b"1", None, None]  # reads go on
        await _replicas_agree(store)
        flaky.failing = False
        assert await store.execute([b"INCR", k]) == 2  # and the locks went
        assert await store.transaction([[b"INCR", k], [b"SET", other, b"1"]]) == [3, Simple("OK")]
    async with kv(shards=2, replicas=2, journal=flaky) as store:
        assert await _everything(store) == {k: b"3", other: b"1"}
    await inner.aclose()


async def test_a_primary_that_died_after_journaling_is_caught_up_on_failover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The primary journals the INCR and dies before replicating it: its backups
    # do not have it, the journal does. The promoted backup reads the shard back
    # from the journal, and the client's retry is answered from the journaled
    # outcome: applied once, in memory and on disk.
    replicate = Shard._replicate
    armed: list[str] = []

    async def die_before_replicating(self: Shard, handler_name: str, *args: Any) -> None:
        if armed and armed[0] == handler_name:
            armed.clear()
            raise AtomStopped("the primary died after journaling, before replicating")
        await replicate(self, handler_name, *args)

    monkeypatch.setattr(Shard, "_replicate", die_before_replicating)
    journal = SQLiteStore(tmp_path / "kv.sqlite3")
    async with kv(shards=1, replicas=3, journal=journal) as store:
        await store.execute([b"SET", b"n", b"5"])
        armed.append("apply")
        assert await store.execute([b"INCR", b"n"]) == 6
        assert not armed
        assert await store.execute([b"GET", b"n"]) == b"6"
        await _replicas_agree(store)
        assert await store.execute([b"INCR", b"n"]) == 7
    async with kv(shards=1, replicas=3, journal=journal) as store:
        assert await store.execute([b"GET", b"n"]) == b"7"
    await journal.aclose()


async def test_a_shard_that_lost_every_replica_comes_back_from_its_journal(
    tmp_path: Path,
) -> None:
    journal = SQLiteStore(tmp_path / "kv.sqlite3")
    async with (
        open_system() as system,
        open_store(system, shards=2, replicas=2, journal=journal, heal_interval=None) as store,
    ):
        ring = Ring(2)
        key = next(k for k in (b"k%d" % i for i in range(20)) if ring.shard_of(k) == 0)
        await store.execute([b"SET", key, b"kept"])
        for replica in list(store.groups[0]):
            await system.stop(replica)  # every replica of shard 0 is gone
        await store.cluster.ask("heal")  # restarts it: from the journal
        assert await store.execute([b"GET", key]) == b"kept"
    await journal.aclose()


async def test_a_second_writer_of_a_journal_is_refused(tmp_path: Path) -> None:
    journal = SQLiteStore(tmp_path / "kv.sqlite3")
    async with open_system() as system:
        first = await system.spawn(Journal, 0, journal)
        second = await system.spawn(Journal, 0, journal)
        assert await first.ask(Journal.position) == 0
        assert await second.ask(Journal.position) == 0
        await first.ask(Journal.append, 1, "apply", "w1", Simple("OK"), {b"k": (b"1", None)})
        with pytest.raises(Exception, match="written by another"):
            await second.ask(Journal.append, 1, "apply", "w2", Simple("OK"), {b"k": (b"2", None)})
        # Read again, it knows where the journal is, and it does not follow from 0.
        assert await second.ask(Journal.position) == 1
        with pytest.raises(Exception, match="does not follow"):
            await second.ask(Journal.append, 1, "apply", "w2", Simple("OK"), {})
        seq, data, outcomes = await second.ask(Journal.recover)
        assert (seq, data, outcomes) == (1, {b"k": (b"1", None)}, {"w1": Simple("OK")})
    await journal.aclose()


async def test_a_journal_is_opened_only_with_its_number_of_shards(tmp_path: Path) -> None:
    journal = SQLiteStore(tmp_path / "kv.sqlite3")
    async with kv(shards=2, journal=journal) as store:
        await store.execute([b"SET", b"k", b"v"])
    with pytest.raises(ValueError, match="start it with --shards 2"):
        async with kv(shards=3, journal=journal):
            pass  # pragma: no cover
    await journal.aclose()


def test_replies_of_every_type_are_journaled_as_they_were() -> None:
    from examples.kvstore._journal import _reply_in, _reply_out
    from examples.kvstore._resp import Map, Reply, Verbatim

    replies: list[Reply] = [
        None,
        0,
        -(2**63),
        b"\x00\xff bytes",
        Simple("OK"),
        Simple("QUEUED"),
        Error("ERR x"),
        Verbatim(b"txt:hi"),
        [b"a", None, 3, [Error("E"), Simple("S")]],
        Map({b"k": [1, 2], 3: None}),
    ]
    for reply in replies:
        back = _reply_in(_reply_out(reply))
        assert back == reply
        assert type(back) is type(reply)
