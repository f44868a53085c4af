"""Durable state (issue #19, first part): declared state loaded before
``on_start``, saved when the atom says so, with a revision that keeps two
incarnations of one atom from both writing; each store provider in turn."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import redis_server
from durable_atoms import Cart, CartState, Tally, Unkeyed

from radon_actors import (
    RedisStore,
    SpawnError,
    SQLiteStore,
    StateConflict,
    StateStore,
    open_system,
    state,
)
from radon_actors.durable._codec import encode


@pytest.fixture(params=["sqlite", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], StateStore]]:
    """A factory of stores that all see the same data (two systems, one store)."""
    if request.param == "sqlite":
        yield lambda: SQLiteStore(tmp_path / "state.sqlite3")
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    async with redis_server() as port:
        yield lambda: RedisStore(f"redis://127.0.0.1:{port}/0")


async def test_saved_state_is_there_after_the_system_restarts(
    stores: Callable[[], StateStore],
) -> None:
    async with open_system(state_store=stores()) as system:
        cart = await system.spawn(Cart, name="user-42")
        assert await cart.ask(Cart.add, "apple") == ["apple"]
        assert await cart.ask(Cart.add, "pear") == ["apple", "pear"]
        assert await cart.ask(Cart.add, "unsaved", save=False) == ["apple", "pear", "unsaved"]
    async with open_system(state_store=stores()) as system:
        cart = await system.spawn(Cart, name="user-42")
        etag, exists, started_with = await cart.ask(Cart.info)
        assert (exists, started_with) == (True, ["apple", "pear"])  # loaded before on_start
        assert etag is not None
        other = await system.spawn(Cart, name="user-7")  # another key: its own state
        assert await other.ask(Cart.info) == (None, False, [])


async def test_a_restart_by_the_supervisor_comes_back_with_the_saved_state(
    stores: Callable[[], StateStore],
) -> None:
    async with open_system(state_store=stores()) as system:
        cart = await system.spawn(Cart, name="k")
        await cart.ask(Cart.add, "saved")
        await cart.ask(Cart.add, "lost", save=False)
        with pytest.raises(RuntimeError):
            await cart.ask(Cart.crash)
        assert await cart.ask(Cart.items) == ["saved"]  # only unsaved changes are lost


async def test_a_stale_incarnation_cannot_write(stores: Callable[[], StateStore]) -> None:
    # Two incarnations of one atom (two systems, one store): the one that writes
    # second read an older revision, so its save is refused, and it can never
    # write again; its restart reads what the other wrote.
    async with (
        open_system(state_store=stores()) as one,
        open_system(state_store=stores()) as two,
    ):
        first = await one.spawn(Cart, name="dup")
        second = await two.spawn(Cart, name="dup")
        assert await first.ask(Cart.add, "from one") == ["from one"]
        with pytest.raises(StateConflict, match="another incarnation"):
            await second.ask(Cart.add, "from two")
        # Restarted by its supervisor (the conflict failed it): fresh from the store.
        assert await second.ask(Cart.items) == ["from one"]
        assert await second.ask(Cart.add, "now two") == ["from one", "now two"]
        with pytest.raises(StateConflict):
            await first.ask(Cart.add, "one again")  # now the first one is stale


async def test_clear_leaves_nothing_and_refuses_a_stale_writer(
    stores: Callable[[], StateStore],
) -> None:
    async with (
        open_system(state_store=stores()) as one,
        open_system(state_store=stores()) as two,
    ):
        a = await one.spawn(Cart, name="c")
        await a.ask(Cart.add, "x")
        b = await two.spawn(Cart, name="c")  # reads revision 1
        await a.ask(Cart.clear)
        _, exists, _ = await a.ask(Cart.info)
        assert exists is False
        assert await a.ask(Cart.items) == []
        with pytest.raises(StateConflict):
            await b.ask(Cart.add, "y")
    async with open_system(state_store=stores()) as system:
        c = await system.spawn(Cart, name="c")
        _, exists, started = await c.ask(Cart.info)
        assert (exists, started) == (False, [])


async def test_a_durable_atom_needs_a_key(tmp_path: Path) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        with pytest.raises(SpawnError, match="needs a key"):
            await system.spawn(Unkeyed)


async def test_an_older_version_is_upgraded_and_a_newer_one_refused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    v1: Any = state(int)
    v1.name = "total"
    await store.write("tally", "t", "total", encode(5, v1), None)
    async with open_system(state_store=store) as system:
        tally = await system.spawn(Tally, name="t")
        assert await tally.ask(Tally.add, 2) == {"n": 7}  # upgraded from 5
    store = SQLiteStore(tmp_path / "s.db")
    v3: Any = state(int, version=3)
    v3.name = "total"
    etag = (await store.read("tally", "u", "total") or (None, None))[1]
    await store.write("tally", "u", "total", encode(1, v3), etag)
    async with open_system(state_store=store) as system:
        with pytest.raises(SpawnError, match="version 3"):
            await system.spawn(Tally, name="u")


async def test_a_state_class_that_gained_and_lost_fields_still_loads(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    old: Any = state(CartState)
    old.name = "cart"
    doc = encode(CartState(["a"], "ann"), old).replace('"owner"', '"gone"')
    await store.write("cart", "e", "cart", doc, None)
    async with open_system(state_store=store) as system:
        cart = await system.spawn(Cart, name="e")
        assert await cart.ask(Cart.items) == ["a"]  # "gone" dropped, owner defaulted


async def test_the_stored_document_is_json_of_the_value_format(tmp_path: Path) -> None:
    import json
    import sqlite3

    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        cart = await system.spawn(Cart, name="j")
        await cart.ask(Cart.add, "tea")
    with sqlite3.connect(tmp_path / "s.db") as db:
        (document,) = db.execute(
            "SELECT document FROM radon_state WHERE atom_type != '$radon'"
        ).fetchone()
    assert json.loads(document) == {
        "radon-state": 1,
        "version": 1,
        "fields": {"items": ["tea"], "owner": ""},
    }


async def test_concurrent_sqlite_writes_commit_together_and_conflicts_stay_their_own(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "g.db")
    outcomes: list[str | Exception] = []

    async def write(key: str) -> None:
        try:
            outcomes.append(await store.write("t", key, "s", f'"{key}"', None))
        except StateConflict as exc:
            outcomes.append(exc)

    async with trio.open_nursery() as nursery:
        for i in range(50):
            nursery.start_soon(write, f"k{i}")
        nursery.start_soon(write, "k0")  # a second "first write" of k0: refused alone
    assert sum(isinstance(o, StateConflict) for o in outcomes) == 1
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["1"] * 50
    for i in range(50):
        assert await store.read("t", f"k{i}", "s") == (f'"k{i}"', "1")
    await store.aclose()


async def test_an_sqlite_write_waits_in_a_thread_while_another_connection_holds_the_lock(
    tmp_path: Path,
) -> None:
    # Commits run in the event loop on a connection that never waits for a lock;
    # when another process (here, another connection) is writing the file, the
    # write goes to the worker thread, waits there, and commits afterwards.
    import sqlite3

    path = tmp_path / "l.db"
    store = SQLiteStore(path)
    assert await store.write("t", "k", "s", '"a"', None) == "1"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # holds the write lock
    written: list[str] = []
    async with trio.open_nursery() as nursery:

        async def write() -> None:
            written.append(await store.write("t", "k", "s", '"b"', "1"))

        nursery.start_soon(write)
        await trio.testing.wait_all_tasks_blocked()  # the write waits in the thread
        assert written == []
        assert await store.read("t", "k", "s") == ('"a"', "1")  # reads go on meanwhile
        other.execute("COMMIT")
    assert written == ["2"]
    assert await store.read("t", "k", "s") == ('"b"', "2")
    other.close()
    await store.aclose()


async def test_sqlite_checkpoints_the_wal_into_the_file_every_so_many_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The event loop's connection does not checkpoint by itself (a checkpoint
    # syncs the file): every _CHECKPOINT_EVERY commits, the thread does.
    from radon_actors.durable import _stores

    monkeypatch.setattr(_stores, "_CHECKPOINT_EVERY", 5)
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    document = '"' + "x" * 20_000 + '"'
    for i in range(4):
        await store.write("t", f"k{i}", "s", document, None)
    before = path.stat().st_size
    assert before < 20_000  # everything is in the WAL so far
    await store.write("t", "k4", "s", document, None)  # the fifth commit
    assert path.stat().st_size > before + 5 * 20_000
    await store.aclose()


class StallingStore(SQLiteStore):
    """An SQLite store whose next commit waits until ``go`` is set."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.go: trio.Event | None = None

    async def _run(self, fn: Any, *args: Any) -> Any:
        go, self.go = self.go, None
        if go is not None:
            await go.wait()
        return await super()._run(fn, *args)


async def test_writes_queued_behind_a_cancelled_commit_are_committed_by_their_writers(
    tmp_path: Path,
) -> None:
    """The first waiting writer commits for the others; if it is cancelled (its
    system stopping, say), the writes queued behind it are not failed: their
    own writers commit them. The write it was committing has an unknown
    outcome, and says so."""
    store = StallingStore(tmp_path / "state.sqlite3")
    await store.write("t", "warm", "n", '"0"', None)
    store.go = trio.Event()
    outcomes: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        committing = trio.CancelScope()

        async def write(key: str, scope: trio.CancelScope | None = None) -> None:
            with scope or trio.CancelScope():
                try:
                    outcomes[key] = await store.write("t", key, "n", f'"{key}"', None)
                except RuntimeError as exc:
                    outcomes[key] = exc

        nursery.start_soon(write, "first", committing)
        await trio.testing.wait_all_tasks_blocked()  # its commit waits for ``go``
        nursery.start_soon(write, "queued")
        await trio.testing.wait_all_tasks_blocked()
        committing.cancel()
    assert "first" not in outcomes  # cancelled
    assert isinstance(outcomes["queued"], str)
    assert await store.read("t", "queued", "n") == ('"queued"', outcomes["queued"])
    await store.aclose()
