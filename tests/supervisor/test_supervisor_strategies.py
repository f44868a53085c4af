"""Restart strategies: one-for-all, rest-for-one, simple-one-for-one."""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor_atoms import EVENTS, Boom, Worker, events_of, spec

from radon_actors import (
    AtomStopped,
    ChildSpec,
    Restart,
    SpawnError,
    Strategy,
    Supervisor,
    SupervisorError,
    handler,
    open_system,
)


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


# ---------------------------------------------------------------------------
# A model of the three static strategies with the three restart types, checked
# against the real thing on random sequences of increments, failures and stops.
# ---------------------------------------------------------------------------


def _model(
    strategy: Strategy, restarts: list[Restart], ops: list[tuple[str, int]]
) -> tuple[list[list[int | None]], list[int]]:
    """After each op, each child's counter (None: not running); starts per child."""
    values: list[int | None] = [0] * len(restarts)
    starts = [1] * len(restarts)
    snapshots = []
    for op, i in ops:
        if values[i] is None:
            pass
        elif op == "incr":
            values[i] = (values[i] or 0) + 1
        else:
            abnormal = op == "fail"
            kind = restarts[i]
            comes_back = kind is Restart.PERMANENT or (abnormal and kind is Restart.TRANSIENT)
            if not comes_back:
                values[i] = None
            else:
                if strategy is Strategy.ONE_FOR_ALL:
                    group = range(len(values))
                elif strategy is Strategy.REST_FOR_ONE:
                    group = range(i, len(values))
                else:
                    group = range(i, i + 1)
                for j in group:
                    if values[j] is None:
                        continue
                    if j != i and restarts[j] is Restart.TEMPORARY:
                        values[j] = None
                    else:
                        values[j] = 0
                        starts[j] += 1
        snapshots.append(list(values))
    return snapshots, starts


async def _drive(
    strategy: Strategy, restarts: list[Restart], ops: list[tuple[str, int]]
) -> tuple[list[list[int | None]], list[int]]:
    specs = [
        ChildSpec(Worker, args=(f"c{i}",), name=f"c{i}", restart=r) for i, r in enumerate(restarts)
    ]
    snapshots = []
    async with open_system() as system:
        await system.spawn(Supervisor, specs, strategy=strategy, max_restarts=None)
        refs = [system.lookup(f"c{i}") for i in range(len(restarts))]
        for op, i in ops:
            try:
                if op == "incr":
                    await refs[i].ask(Worker.incr)
                elif op == "fail":
                    await refs[i].ask(Worker.fail, Boom())
                else:
                    await refs[i].ask(Worker.quit)
            except (Boom, AtomStopped):
                pass
            await trio.testing.wait_all_tasks_blocked()
            snapshot: list[int | None] = []
            for ref in refs:
                try:
                    snapshot.append(await ref.ask(Worker.get))
                except AtomStopped:
                    snapshot.append(None)
            snapshots.append(snapshot)
    starts = [events_of("start").count(f"c{i}") for i in range(len(restarts))]
    return snapshots, starts


@settings(max_examples=100, deadline=None)
@given(
    strategy=st.sampled_from([Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]),
    restarts=st.lists(st.sampled_from(list(Restart)), min_size=1, max_size=4),
    raw_ops=st.lists(
        st.tuples(st.sampled_from(["incr", "incr", "fail", "quit"]), st.integers(0, 3)),
        max_size=12,
    ),
)
def test_strategies_and_restart_types_match_the_model(
    strategy: Strategy, restarts: list[Restart], raw_ops: list[tuple[str, int]]
) -> None:
    ops = [(op, i % len(restarts)) for op, i in raw_ops]
    EVENTS.clear()
    actual = trio.run(_drive, strategy, restarts, ops)
    assert actual == _model(strategy, restarts, ops)


class AsksItsSupervisor(Worker):
    @handler
    async def ask_sup_after(self, sup: Any, gate: trio.Event) -> int:
        await gate.wait()
        return len(await sup.ask(Supervisor.which_children))


async def test_one_for_all_sibling_busy_asking_the_supervisor_restarts_after_its_shutdown_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor,
            [ChildSpec(AsksItsSupervisor, args=("a",), name="a", shutdown=2), spec("b")],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a = system.lookup("a")
        gate = trio.Event()
        answers: list[int] = []

        async def ask_a() -> None:
            answers.append(await a.ask(AsksItsSupervisor.ask_sup_after, sup, gate))

        with structlog.testing.capture_logs() as logs, trio.fail_after(100):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ask_a)
                await trio.testing.wait_all_tasks_blocked()  # a's turn waits for the gate
                EVENTS.clear()
                start = trio.current_time()
                with pytest.raises(Boom):
                    await system.lookup("b").ask(Worker.fail, Boom())
                await trio.testing.wait_all_tasks_blocked()  # sup waits for a to stop
                gate.set()  # a asks sup: without a limit on that wait, a deadlock
        assert answers == [2]  # a's turn got its answer
        assert trio.current_time() - start == pytest.approx(2.0)  # a's shutdown time
        await trio.testing.wait_all_tasks_blocked()
        assert events_of("start") == ["b", "a"]  # a restarted last, on its own
        assert [e["event"] for e in logs].count("supervisor.child_unresponsive") == 1
