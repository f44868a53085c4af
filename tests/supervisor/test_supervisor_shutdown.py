"""Shutdown order and per-child shutdown timeouts (on a MockClock)."""

from __future__ import annotations

import pytest
import structlog.testing
import trio
import trio.testing
from supervisor_atoms import EVENTS, Boom, Worker, events_of

from radon_actors import ChildSpec, Strategy, Supervisor, handler, open_system


class Hangs(Worker):
    """A worker whose on_stop never returns by itself."""

    async def on_stop(self) -> None:
        EVENTS.append(("stop", self.label))
        await trio.sleep_forever()
        EVENTS.append(("stopped", self.label))  # pragma: no cover


class Slow(Worker):
    """A worker whose on_stop takes 100 s."""

    async def on_stop(self) -> None:
        await trio.sleep(100)
        EVENTS.append(("stop", self.label))


def spec_with_shutdown(
    label: str, cls: type[Worker] = Worker, shutdown: float | None = 5.0
) -> ChildSpec:
    return ChildSpec(cls, args=(label,), name=label, shutdown=shutdown)


async def test_shutdown_timeout_cancels_on_stop_that_hangs_past_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor,
            [spec_with_shutdown("a"), spec_with_shutdown("h", Hangs, 2.0), spec_with_shutdown("c")],
        )
        start = trio.current_time()
        with structlog.testing.capture_logs() as logs:
            await system.stop(sup)
        assert trio.current_time() - start == pytest.approx(2.0)
        assert events_of("stop") == ["c", "h", "a"]  # the order holds around the hang
        assert "stopped" not in {kind for kind, _ in EVENTS}
        (warning,) = [e for e in logs if e["event"] == "atom.shutdown_timeout"]
        assert warning["timeout"] == 2.0


async def test_shutdown_timeout_bounds_on_stop_during_a_restart_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor,
            [spec_with_shutdown("h", Hangs, 3.0), spec_with_shutdown("b")],
            strategy=Strategy.ONE_FOR_ALL,
        )
        start = trio.current_time()
        with pytest.raises(Boom):
            await system.lookup("b").ask(Worker.fail, Boom())
        assert await system.lookup("b").ask(Worker.incr) == 1  # queued behind the restart
        assert trio.current_time() - start == pytest.approx(3.0)
        assert events_of("start") == ["h", "b", "h", "b"]


async def test_shutdown_none_lets_on_stop_finish_however_long(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(shutdown_timeout=1000) as system:
        sup = await system.spawn(Supervisor, [spec_with_shutdown("s", Slow, None)])
        start = trio.current_time()
        await system.stop(sup)
        assert trio.current_time() - start == pytest.approx(100)
        assert events_of("stop") == ["s"]


async def test_shutdown_zero_is_a_brutal_kill_on_stop_does_not_run() -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor, [spec_with_shutdown("a", shutdown=0), spec_with_shutdown("b")]
        )
        await system.stop(sup)
        assert events_of("stop") == ["b"]


async def test_nested_tree_stops_depth_first_in_reverse_start_order() -> None:
    inner = Supervisor.spec([spec_with_shutdown("i1"), spec_with_shutdown("i2")], name="inner")
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor, [spec_with_shutdown("a"), inner, spec_with_shutdown("z")]
        )
        assert events_of("start") == ["a", "i1", "i2", "z"]
        await system.stop(sup)
        assert events_of("stop") == ["z", "i2", "i1", "a"]


async def test_system_close_stops_root_children_in_reverse_start_order() -> None:
    root = Supervisor.spec([spec_with_shutdown("a"), spec_with_shutdown("b")])
    async with open_system(root=root) as system:
        await system.spawn(Worker, "c")
        await system.spawn(Worker, "d")
    assert events_of("start") == ["a", "b", "c", "d"]
    assert events_of("stop") == ["d", "c", "b", "a"]


def test_supervisor_spec_has_no_shutdown_limit_and_workers_five_seconds() -> None:
    assert Supervisor.spec([]).shutdown is None
    assert ChildSpec(Worker).shutdown == 5.0
    with pytest.raises(ValueError, match="shutdown"):
        ChildSpec(Worker, shutdown=-1)


class SlowStop(Worker):
    async def on_stop(self) -> None:
        await trio.sleep(2)
        EVENTS.append(("stop", self.label))


async def test_simple_one_for_one_pool_members_stop_concurrently(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        pool = await system.spawn(
            Supervisor, [ChildSpec(SlowStop, args=("m",))], strategy=Strategy.SIMPLE_ONE_FOR_ONE
        )
        for _ in range(3):
            await pool.ask(Supervisor.start_child)
        start = trio.current_time()
        await system.stop(pool)
        assert trio.current_time() - start == pytest.approx(2.0)  # not 3 x 2 s
        assert events_of("stop") == ["m", "m", "m"]


async def test_static_children_stop_one_after_the_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor, [spec_with_shutdown("a", SlowStop), spec_with_shutdown("b", SlowStop)]
        )
        start = trio.current_time()
        await system.stop(sup)
        assert trio.current_time() - start == pytest.approx(4.0)
        assert events_of("stop") == ["b", "a"]


class QuitsSlowly(Worker):
    @handler
    async def quit_then_wait(self, gate: trio.Event) -> None:
        self.stop()
        await gate.wait()


async def test_shutdown_of_the_supervisor_overrides_a_childs_pending_normal_exit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec_with_shutdown("q", QuitsSlowly)])
        gate = trio.Event()
        system.lookup("q").tell(QuitsSlowly.quit_then_wait, gate)
        await trio.testing.wait_all_tasks_blocked()  # q has asked to stop, mid-turn
        async with trio.open_nursery() as nursery:
            nursery.start_soon(system.stop, sup)
            await trio.testing.wait_all_tasks_blocked()  # sup is stopping, waits for q
            gate.set()
            with trio.fail_after(60):  # a hang would show as a timeout
                await sup_stopped(system, sup)
        assert events_of("start") == ["q"]  # not restarted by a stopping supervisor
        assert events_of("stop") == ["q"]


async def sup_stopped(system: object, sup: object) -> None:
    await system.stop(sup)  # type: ignore[attr-defined]


async def test_top_level_atoms_have_no_shutdown_limit_of_their_own(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(shutdown_timeout=1000) as system:
        ref = await system.spawn(Slow, "s")
        start = trio.current_time()
        await system.stop(ref)
        assert trio.current_time() - start == pytest.approx(100)
        assert events_of("stop") == ["s"]
