"""Timers move with their atom in a live migration (radon_actors.placement).

The process tests use real worker hosts, so they cannot use a MockClock: they
wait for explicit signals (a timer's own firing, or a later sentinel timer) and
assert only what a loaded machine cannot make flaky. The exact due-time
arithmetic is checked in-process with a MockClock.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import cluster
from placement_timer_atoms import Clock

from radon_actors import Atom, MigrationError, Ref, Timer, handler, open_system
from radon_actors.runtime._timers import TimerHandle, rearm, restoring, snapshot, start
from radon_actors.testing import cell_of


async def _fired(clock: Ref[Clock], n: int) -> list[tuple[str, int]]:
    with trio.fail_after(20):
        return await clock.ask(Clock.fired_after, n)


async def test_a_pending_one_shot_timer_fires_once_on_the_target_with_the_time_it_had_left() -> (
    None
):
    async with cluster("w1", "w2") as system:
        clock = await system.spawn(Clock, host="w1")
        w1 = await clock.ask(Clock.where)
        await clock.ask(Clock.after, "t", 2.0)
        await clock.ask(Clock.after, "cue", 1.5)
        await _fired(clock, 1)  # "cue": 1.5 s of the 2 s have passed
        await system.migrate(clock, to="w2")
        w2 = await clock.ask(Clock.where)
        assert w2 != w1
        assert await clock.ask(Clock.active, "t")  # the handle in its state is live there
        await _fired(clock, 2)
        # long after the source's copy would have fired: nothing more came
        await clock.ask(Clock.after, "sentinel", 0.5)
        assert await _fired(clock, 3) == [("cue", w1), ("t", w2), ("sentinel", w2)]
        elapsed = await clock.ask(Clock.elapsed, "t")
        # never early, and not re-armed with the full delay: that would fire at
        # least 1.5 s (the cue) + 2 s after it was armed
        assert 2.0 <= elapsed < 3.5


async def test_a_periodic_timer_goes_on_at_the_target_and_its_handle_cancels_it_there() -> None:
    async with cluster("w1", "w2") as system:
        clock = await system.spawn(Clock, host="w1")
        await clock.ask(Clock.every, "tick", 0.05)
        before = await _fired(clock, 3)
        await system.migrate(clock, to="w2")
        w2 = await clock.ask(Clock.where)
        ticks = await _fired(clock, len(before) + 6)
        assert ticks[-3:] == [("tick", w2)] * 3
        still_active, count = await clock.ask(Clock.cancel, "tick")
        assert not still_active
        await clock.ask(Clock.after, "sentinel", 0.3)  # 6 intervals: no tick came
        fired = await _fired(clock, count + 1)
        assert fired[count:] == [("sentinel", w2)]
        await system.migrate(clock, to="local")  # a cancelled timer stays cancelled
        assert not await clock.ask(Clock.active, "tick")
        assert (await clock.ask(Clock.state))["fired"] == count + 1


async def test_timers_due_across_several_migrations_each_fire_exactly_once() -> None:
    n = 40
    async with cluster("w1", "w2") as system:
        clock = await system.spawn(Clock)
        await clock.ask(Clock.many, n, 0.05)
        for k, to in enumerate(["w1", "w2", "local", "w2", "w1", "local"]):
            await _fired(clock, 5 * (k + 1))  # migrate while the rest are pending
            await system.migrate(clock, to=to)
        await _fired(clock, n)
        await clock.ask(Clock.after, "sentinel", 0.3)
        fired = await _fired(clock, n + 1)
        assert fired[n] == ("sentinel", os.getpid())
        tags = [tag for tag, _ in fired[:n]]
        assert sorted(tags, key=int) == [str(i) for i in range(n)]  # none lost, none twice
        # the first ones fired here; the moves came while the others were pending
        assert {pid for _, pid in fired[:5]} == {os.getpid()}
        assert len({pid for _, pid in fired[:n]}) >= 2


async def test_a_failed_migration_leaves_the_timers_running_where_they_were() -> None:
    async with cluster("w1") as system:
        clock = await system.spawn(Clock, host="w1")
        w1 = await clock.ask(Clock.where)
        await clock.ask(Clock.after, "t", 0.3)
        await clock.ask(Clock.poison)
        with pytest.raises(MigrationError):
            await system.migrate(clock, to="local")
        assert await clock.ask(Clock.active, "t")
        await clock.ask(Clock.after, "sentinel", 0.6)
        assert await _fired(clock, 2) == [("t", w1), ("sentinel", w1)]


# ----------------------------------------------------------------------
# The due-time arithmetic, in one process with a MockClock
# ----------------------------------------------------------------------
class Ticker(Atom):
    def __init__(self) -> None:
        self.ticks: list[tuple[str, float]] = []
        self.handles: dict[str, Timer] = {}

    @handler
    def arm(self) -> None:
        self.handles["once"] = self.send_after(10, Ticker.tick, "once")
        self.handles["every"] = self.send_every(3, Ticker.tick, "every")

    @handler
    def tick(self, tag: str) -> None:
        self.ticks.append((tag, trio.current_time()))

    @handler
    def cancel(self, tag: str) -> None:
        self.handles[tag].cancel()

    @handler
    def seen(self) -> list[tuple[str, float]]:
        return list(self.ticks)

    @handler
    async def hold(self, release: trio.Event) -> None:
        await release.wait()


def _move_timers(source: Ref[Ticker], target: Ref[Ticker]) -> None:
    """What a migration does with the timers, between two cells of this process."""
    src, dst = cell_of(source), cell_of(target)
    assert src is not None and dst is not None
    states = snapshot(src)
    blob = pickle.dumps(src.instance.handles)  # the handles in the atom's state
    src.cancel_timers()
    with restoring() as table:
        dst.instance.handles = pickle.loads(blob)
    start(dst, rearm(dst, table, states))


async def test_moved_timers_keep_their_time_left_and_their_handles(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        a, b = await system.spawn(Ticker), await system.spawn(Ticker)
        t0 = trio.current_time()
        await a.ask(Ticker.arm)
        await trio.sleep(4)
        _move_timers(a, b)  # at t0 + 4: "every" has 2 s left, "once" 6 s
        await trio.sleep(7.5)
        assert [(tag, round(t - t0, 6)) for tag, t in await a.ask(Ticker.seen)] == [("every", 3)]
        seen = [(tag, round(t - t0, 6)) for tag, t in await b.ask(Ticker.seen)]
        assert seen == [("every", 6), ("every", 9), ("once", 10)]
        await b.ask(Ticker.cancel, "every")  # through the moved handle
        await trio.sleep(20)
        assert len(await b.ask(Ticker.seen)) == 3
        assert len(await a.ask(Ticker.seen)) == 1


async def test_a_fired_one_shot_whose_message_moves_queued_is_still_cancellable(
    mock_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        a, b = await system.spawn(Ticker), await system.spawn(Ticker)
        src, dst = cell_of(a), cell_of(b)
        assert src is not None and dst is not None
        release = trio.Event()
        a.tell(Ticker.hold, release)  # a long turn: the timer's message waits behind it
        timer = src.send_after(1, Ticker.tick, ("late",), {})
        blob = pickle.dumps(timer)
        mock_clock.jump(1)
        await trio.testing.wait_all_tasks_blocked()
        queued = [m for m in src.mailbox.user if m[3] is timer]
        assert len(queued) == 1 and not timer.active
        (state,) = snapshot(src, [timer])
        assert state[-1] is None  # fired, message queued: not armed again
        with restoring() as table:
            moved: Any = pickle.loads(blob)
        assert rearm(dst, table, [state]) == []
        assert isinstance(moved, TimerHandle) and moved is table[state[0]]
        moved.cancel()  # the atom cancels it on the target before the message ran
        assert moved.task is None  # so the moved message is dropped there
        # a handle unpickled outside a migration is inert
        stray: Any = pickle.loads(blob)
        assert not stray.active
        stray.cancel()
        release.set()  # (a migration would have taken the message out of this mailbox)
        await trio.testing.wait_all_tasks_blocked()
        assert [tag for tag, _ in await a.ask(Ticker.seen)] == ["late"]
