"""The sandbox's process-wide tables hold what the process loaded, not its traffic:
locks exist only while something is being loaded, forwarding tables die with
their class."""

from __future__ import annotations

import gc
import threading
import weakref

import pytest
from sandbox_atoms import Counter

from radon_actors import Atom, SandboxBuildError, handler, open_system
from radon_actors.sandbox import _cache, _engine, _spawn
from radon_actors.sandbox._keyed import KeyedLocks


def test_a_keyed_lock_is_shared_while_used_and_dropped_after() -> None:
    table: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock)
    with table.holding("a") as first, table.holding("a") as again, table.holding("b") as other:
        assert first is again
        assert other is not first
        assert len(table) == 2
    assert len(table) == 0


def test_a_keyed_lock_serialises_threads_on_the_same_key() -> None:
    table: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock)
    inside = 0
    most = 0
    counting = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            with table.holding("m") as lock, lock:
                with counting:
                    inside += 1
                    most = max(most, inside)
                with counting:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
    assert len(table) == 0


def test_loading_a_module_leaves_no_lock_behind() -> None:
    for _ in range(3):
        with pytest.raises(SandboxBuildError):
            _engine.load("__main__")
    assert len(_engine._locks) == 0


@pytest.mark.usefixtures("sandbox_component")
async def test_loading_a_component_by_hash_leaves_no_lock_behind() -> None:
    loaded = _engine.loaded("sandbox_atoms")
    assert loaded is not None
    h, data = await _cache.read_component(loaded)
    kept = _cache._by_hash.pop(h)
    try:
        received = await _cache.store_verified(h, bytearray(data), loaded.module, [])
        assert received.module == loaded.module
        assert await _cache.by_hash(h) is received
        assert len(_cache._loading) == 0
    finally:
        _cache._by_hash[h] = kept
    async with open_system() as system:
        ref = await system.spawn(Counter, 1, sandbox=True)
        assert await ref.ask(Counter.incr) == 2


def test_forwarding_tables_die_with_their_class() -> None:
    def make() -> type[Atom]:
        class Passing(Atom):
            @handler
            def ping(self) -> int:
                return 1

        return Passing

    cls = make()
    table = _spawn.sandbox_table(cls, inline=True)
    assert _spawn.sandbox_table(cls, inline=True) is table
    assert _spawn.sandbox_table(cls, inline=False) is not table
    gone = weakref.ref(cls)
    del cls, table
    gc.collect()
    assert gone() is None
