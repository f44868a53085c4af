"""Restart strategies: one-for-all, rest-for-one, simple-one-for-one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
import trio.testing
from _sup_helpers import EVENTS, Boom, Worker, events_of

from radon_actors import (
    AtomStopped,
    ChildSpec,
    Restart,
    SpawnError,
    Strategy,
    Supervisor,
    SupervisorError,
    open_system,
)


@pytest.fixture(autouse=True)
def _clear_events() -> Iterator[None]:
    EVENTS.clear()
    yield
    EVENTS.clear()


def spec(label: str, restart: Restart = Restart.PERMANENT) -> ChildSpec:
    return ChildSpec(Worker, args=(label,), name=label, restart=restart)


async def fail(system: object, label: str) -> None:
    with pytest.raises(Boom):
        await system.lookup(label).ask(Worker.fail, Boom(label))  # type: ignore[attr-defined]
    await trio.testing.wait_all_tasks_blocked()


async def test_one_for_all_stops_all_in_reverse_order_then_starts_all_in_order() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [spec("a"), spec("b"), spec("c")], strategy=Strategy.ONE_FOR_ALL
        )
        refs = [system.lookup(x) for x in "abc"]
        for ref in refs:
            await ref.ask(Worker.incr)
        EVENTS.clear()
        await fail(system, "b")
        assert events_of("stop") == ["c", "b", "a"]
        assert events_of("start") == ["a", "b", "c"]
        assert [system.lookup(x) for x in "abc"] == refs  # every Ref kept
        assert [await ref.ask(Worker.get) for ref in refs] == [0, 0, 0]  # all fresh


async def test_one_for_all_temporary_sibling_is_stopped_and_not_restarted() -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor,
            [spec("a"), spec("t", Restart.TEMPORARY), spec("c")],
            strategy=Strategy.ONE_FOR_ALL,
        )
        t = system.lookup("t")
        EVENTS.clear()
        await fail(system, "a")
        assert events_of("stop") == ["c", "t", "a"]
        assert events_of("start") == ["a", "c"]
        with pytest.raises(AtomStopped):
            await t.ask(Worker.get)
        assert [c.id for c in await sup.ask(Supervisor.which_children)] == ["a", "c"]


async def test_one_for_all_counts_one_restart_toward_intensity() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor,
            [spec("a"), spec("b"), spec("c")],
            strategy=Strategy.ONE_FOR_ALL,
            max_restarts=1,
        )
        EVENTS.clear()
        await fail(system, "c")  # three children restart: one restart
        assert events_of("start") == ["a", "b", "c"]
        assert await system.lookup("a").ask(Worker.incr) == 1  # still supervised, not given up


async def test_one_for_all_sibling_failing_during_the_group_restart_is_absorbed() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [spec("a"), spec("b")], strategy=Strategy.ONE_FOR_ALL, max_restarts=1
        )
        EVENTS.clear()

        async def afail(label: str) -> None:
            with pytest.raises(Boom):
                await system.lookup(label).ask(Worker.afail, Boom(label))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(afail, "a")
            nursery.start_soon(afail, "b")
        await trio.testing.wait_all_tasks_blocked()
        # Both failed before the supervisor acted: one group restart covers both.
        assert events_of("start") == ["a", "b"]
        assert await system.lookup("b").ask(Worker.incr) == 1


async def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor,
            [spec("a"), spec("b"), spec("c"), spec("d")],
            strategy=Strategy.REST_FOR_ONE,
        )
        a = system.lookup("a")
        await a.ask(Worker.incr)
        EVENTS.clear()
        await fail(system, "b")
        assert events_of("stop") == ["d", "c", "b"]
        assert events_of("start") == ["b", "c", "d"]
        assert await a.ask(Worker.get) == 1  # started before b: untouched


async def test_rest_for_one_failure_of_the_last_child_restarts_only_it() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [spec("a"), spec("b"), spec("c")], strategy=Strategy.REST_FOR_ONE
        )
        EVENTS.clear()
        await fail(system, "c")
        assert events_of("stop") == ["c"]
        assert events_of("start") == ["c"]


def pool_spec() -> ChildSpec:
    return ChildSpec(Worker, args=("pool",))


async def test_simple_one_for_one_starts_no_child_and_start_child_appends_args() -> None:
    async with open_system() as system:
        pool = await system.spawn(Supervisor, [pool_spec()], strategy=Strategy.SIMPLE_ONE_FOR_ONE)
        assert EVENTS == []
        m1 = await pool.ask(Supervisor.start_child, 10)
        m2 = await pool.ask(Supervisor.start_child, start_value=20)
        assert await m1.ask(Worker.args) == ("pool", 10)
        assert await m2.ask(Worker.args) == ("pool", 20)
        assert await pool.ask(Supervisor.count_children) == {"specs": 2, "active": 2}


async def test_simple_one_for_one_restarts_a_member_alone_with_its_own_args() -> None:
    async with open_system() as system:
        pool = await system.spawn(Supervisor, [pool_spec()], strategy=Strategy.SIMPLE_ONE_FOR_ONE)
        m1 = await pool.ask(Supervisor.start_child, 10)
        m2 = await pool.ask(Supervisor.start_child, 20)
        await m1.ask(Worker.incr)
        await m2.ask(Worker.incr)
        with pytest.raises(Boom):
            await m1.ask(Worker.fail, Boom())
        assert await m1.ask(Worker.get) == 10  # restarted from its own arguments
        assert await m2.ask(Worker.get) == 21  # the other member untouched


async def test_simple_one_for_one_members_are_forgotten_when_they_stop() -> None:
    async with open_system() as system:
        pool = await system.spawn(Supervisor, [pool_spec()], strategy=Strategy.SIMPLE_ONE_FOR_ONE)
        m1 = await pool.ask(Supervisor.start_child, 1)
        await pool.ask(Supervisor.start_child, 2)
        await pool.ask(Supervisor.terminate_child, m1)
        assert await pool.ask(Supervisor.count_children) == {"specs": 1, "active": 1}
        with pytest.raises(SupervisorError, match="no child"):
            await pool.ask(Supervisor.terminate_child, m1)


async def test_simple_one_for_one_needs_exactly_one_unnamed_template() -> None:
    async with open_system() as system:
        for children in ([], [pool_spec(), pool_spec()], [spec("named")]):
            with pytest.raises(SpawnError):
                await system.spawn(Supervisor, children, strategy=Strategy.SIMPLE_ONE_FOR_ONE)
