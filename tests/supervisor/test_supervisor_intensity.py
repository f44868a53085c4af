"""Restart intensity and escalation (OTP's MaxR/MaxT), on a MockClock."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor_atoms import Boom, Worker, events_of, spec

from radon_actors import (
    ChildSpec,
    RestartIntensityExceeded,
    Strategy,
    Supervisor,
    open_system,
)


@pytest.fixture(autouse=True)
def _reset_starts_badly() -> Iterator[None]:
    yield
    StartsBadly.failures_left = 0


async def crash(label: str, system: object) -> None:
    ref = system.lookup(label)  # type: ignore[attr-defined]
    with pytest.raises(Boom):
        await ref.ask(Worker.fail, Boom(label))
    await trio.testing.wait_all_tasks_blocked()


async def _run_until_crash(root: ChildSpec, body: Callable[[Any], Awaitable[None]]) -> None:
    async with open_system(root=root) as system:
        await body(system)
        await trio.sleep_forever()  # cancelled by the system crash


async def crashed(root: ChildSpec, body: Callable[[Any], Awaitable[None]]) -> BaseException:
    """Run ``body`` in a system with ``root``; return what open_system raised."""
    with pytest.raises(RestartIntensityExceeded) as info:
        await _run_until_crash(root, body)
    return info.value


async def test_intensity_allows_max_restarts_within_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    root = Supervisor.spec([spec("a")], max_restarts=2, within=5)
    async with open_system(root=root) as system:
        await crash("a", system)
        await crash("a", system)
        assert events_of("start") == ["a", "a", "a"]  # two restarts, still up


async def test_intensity_more_than_max_restarts_within_period_stops_all_children_then_supervisor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mid = Supervisor.spec([spec("a"), spec("b")], max_restarts=1, within=5, name="mid")
    # The parent allows no restart of `mid`, so the give-up reaches the system.

    async def body(system: Any) -> None:
        await crash("a", system)
        await crash("a", system)  # second restart within 5 s: more than 1

    error = await crashed(Supervisor.spec([mid], max_restarts=0), body)
    assert events_of("stop") == ["a", "b", "a"]  # a restarted once; then b, a in reverse
    assert isinstance(error.__cause__, RestartIntensityExceeded)  # mid's, escalated
    assert isinstance(error.__cause__.__cause__, Boom)


async def test_intensity_window_slides_restarts_older_than_period_are_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(root=Supervisor.spec([spec("a")], max_restarts=1, within=5)) as system:
        for _ in range(4):
            await crash("a", system)
            await trio.sleep(5)  # each restart leaves the window before the next
        assert events_of("start") == ["a"] * 5


async def test_intensity_zero_means_the_first_failure_gives_up(
    autojump_clock: trio.testing.MockClock,
) -> None:

    async def body(system: Any) -> None:
        await crash("a", system)

    await crashed(Supervisor.spec([spec("a")], max_restarts=0), body)
    assert events_of("start") == ["a"]


async def test_intensity_default_is_three_restarts_in_five_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    top = Supervisor.spec([Supervisor.spec([spec("a")], name="mid")], max_restarts=0)

    async def body(system: Any) -> None:
        for _ in range(3):
            await crash("a", system)
        assert events_of("start") == ["a"] * 4
        await trio.sleep(4.9)
        await crash("a", system)  # the fourth within 5 s

    await crashed(top, body)


async def test_intensity_escalates_two_levels_and_the_grandparent_restarts_the_subtree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leaf = Supervisor.spec([spec("w")], max_restarts=0, name="leaf")
    mid = Supervisor.spec([leaf], max_restarts=0, name="mid")
    async with open_system(root=Supervisor.spec([mid], max_restarts=1)) as system:
        mid_ref = system.lookup("mid")
        await system.lookup("w").ask(Worker.incr)
        await crash("w", system)
        # leaf gave up (0 restarts allowed) -> mid had to restart leaf, gave up too
        # -> the root restarted mid (1 allowed), which started leaf and w afresh.
        assert events_of("start") == ["w", "w"]
        assert system.lookup("mid") == mid_ref  # restarted in place: same Ref
        (info,) = await system.root.ask(Supervisor.which_children)
        assert info.id == "mid"
        assert info.restarts == 1
        assert await system.lookup("w").ask(Worker.get) == 0


async def test_intensity_escalation_reaching_the_root_crashes_the_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    leaf = Supervisor.spec([spec("w")], max_restarts=0, name="leaf")

    async def body(system: Any) -> None:
        await crash("w", system)

    error = await crashed(Supervisor.spec([leaf], max_restarts=0), body)
    assert "gave up" in str(error.__cause__)
    assert events_of("stop") == ["w"]


async def test_intensity_give_up_of_a_supervisor_spawned_at_the_default_root_crashes_the_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def run() -> None:
        async with open_system() as system:
            await system.spawn(Supervisor, [spec("a")], max_restarts=0)
            await crash("a", system)
            await trio.sleep_forever()

    with pytest.raises(RestartIntensityExceeded) as info:
        await run()
    assert isinstance(info.value.__cause__, Boom)  # the supervisor's own error, not wrapped
    assert events_of("start") == ["a"]


class StartsBadly(Worker):
    """Its on_start fails while ``failures_left`` > 0 (shared by incarnations)."""

    failures_left = 0

    def on_start(self) -> None:
        super().on_start()
        if StartsBadly.failures_left > 0:
            StartsBadly.failures_left -= 1
            raise Boom("cannot start")


async def test_intensity_counts_a_failed_restart_and_retries_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [ChildSpec(StartsBadly, args=("s",), name="s")], max_restarts=3
        )
        ref = system.lookup("s")
        StartsBadly.failures_left = 2
        await crash("s", system)
        # one restart for the crash, two more for the failed starts: 3, allowed
        assert events_of("start") == ["s"] * 4
        assert await ref.ask(Worker.incr) == 1


async def test_intensity_gives_up_when_failed_restarts_exceed_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def body(system: Any) -> None:
        StartsBadly.failures_left = 5
        await crash("s", system)

    spec = ChildSpec(StartsBadly, args=("s",), name="s")
    error = await crashed(Supervisor.spec([spec], max_restarts=2), body)
    StartsBadly.failures_left = 0
    assert "keeps failing" in str(error)
    # the first start, the restart for the crash, one retry; a second retry would
    # be the third restart within 5 s
    assert events_of("start") == ["s"] * 3


async def test_failed_restart_under_unlimited_intensity_stops_the_child() -> None:
    async with open_system() as system:
        ref = await system.spawn(StartsBadly, "s")
        StartsBadly.failures_left = 1
        with pytest.raises(Boom):
            await ref.ask(Worker.fail, Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert events_of("start") == ["s", "s"]  # one attempt, not a loop
        assert await system.root.ask(Supervisor.which_children) == []


def _sliding_window_model(max_restarts: int, within: float, delays: list[int]) -> int | None:
    """OTP's rule, on its own: the failure number at which the supervisor gives up."""
    now = 0.0
    times: list[float] = []
    for i, delay in enumerate(delays):
        now += delay
        times = [t for t in times if now - t < within] + [now]
        if len(times) > max_restarts:
            return i + 1
    return None


async def _inject(max_restarts: int, within: float, delays: list[int]) -> int | None:
    injected = 0
    root = Supervisor.spec([spec("a")], max_restarts=max_restarts, within=within)
    try:
        async with open_system(root=root) as system:
            ref = system.lookup("a")
            for delay in delays:
                await trio.sleep(delay)
                injected += 1
                with contextlib.suppress(Boom):
                    await ref.ask(Worker.fail, Boom())
                await trio.testing.wait_all_tasks_blocked()
    except RestartIntensityExceeded:
        return injected
    return None


@settings(max_examples=40, deadline=None)
@given(
    max_restarts=st.integers(0, 3),
    within=st.integers(1, 5),
    delays=st.lists(st.integers(0, 6), min_size=1, max_size=8),
)
def test_intensity_matches_the_sliding_window_model(
    max_restarts: int, within: int, delays: list[int]
) -> None:
    window = within + 0.5  # failures land on whole seconds: never on the boundary
    clock = trio.testing.MockClock(autojump_threshold=0)
    actual = trio.run(_inject, max_restarts, window, delays, clock=clock)
    assert actual == _sliding_window_model(max_restarts, window, delays)


async def test_intensity_give_up_while_restarting_a_group_stops_the_already_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def body(system: Any) -> None:
        StartsBadly.failures_left = 5
        await crash("a", system)

    group = Supervisor.spec(
        [spec("a"), ChildSpec(StartsBadly, args=("s",), name="s")],
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=1,
    )
    with trio.fail_after(100):  # a child left running would hang the give-up
        await crashed(Supervisor.spec([group], max_restarts=0), body)
    StartsBadly.failures_left = 0
    # a restarted, then s failed to start (the second restart): a is stopped again
    assert events_of("start") == ["a", "s", "a", "s"]
    assert events_of("stop") == ["s", "a", "a"]
