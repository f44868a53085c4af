"""Timers: send_after / send_every, cancellation, and their lifetime (MockClock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from radon_actors import Atom, Timer, handler, open_system


class Ticker(Atom):
    def __init__(self) -> None:
        self.ticks: list[float] = []
        self.timer: Timer | None = None

    @handler
    def tick(self, tag: str = "tick") -> None:
        self.ticks.append(trio.current_time())

    @handler
    def once(self, delay: float) -> None:
        self.timer = self.send_after(delay, Ticker.tick)

    @handler
    def every(self, interval: float) -> None:
        self.timer = self.send_every(interval, "tick", tag="periodic")

    @handler
    def cancel(self) -> None:
        assert self.timer is not None
        self.timer.cancel()

    @handler
    def active(self) -> bool:
        return self.timer is not None and self.timer.active

    @handler
    def times(self) -> list[float]:
        return self.ticks

    @handler
    def bad(self) -> None:
        self.send_every(0, Ticker.tick)


async def test_send_after_fires_once_after_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        t = await system.spawn(Ticker)
        start = trio.current_time()
        await t.ask(Ticker.once, 5.0)
        assert await t.ask(Ticker.active)
        await trio.sleep(10)
        assert [round(x - start, 6) for x in await t.ask(Ticker.times)] == [5.0]
        assert not await t.ask(Ticker.active)


async def test_send_every_is_periodic_and_cancellable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        t = await system.spawn(Ticker)
        start = trio.current_time()
        await t.ask(Ticker.every, 2.0)
        await trio.sleep(7)
        await t.ask(Ticker.cancel)
        await trio.sleep(20)
        ticks = [round(x - start, 6) for x in await t.ask(Ticker.times)]
        assert ticks == [2.0, 4.0, 6.0]
        assert not await t.ask(Ticker.active)


async def test_cancelled_timer_drops_its_already_queued_message(
    mock_clock: trio.testing.MockClock,
) -> None:
    class Holder(Ticker):
        @handler
        async def hold_then_cancel(self, go: trio.Event) -> None:
            await go.wait()  # the timer fires meanwhile and queues its tick
            assert self.timer is not None
            self.timer.cancel()

    go = trio.Event()
    async with open_system() as system, trio.open_nursery() as nursery:
        t = await system.spawn(Holder)
        await t.ask(Ticker.once, 1.0)
        nursery.start_soon(t.ask, Holder.hold_then_cancel, go)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(1.0)
        await trio.testing.wait_all_tasks_blocked()
        assert system.mailbox_statistics(t).queued == 1  # the tick is in the mailbox
        go.set()
        await trio.testing.wait_all_tasks_blocked()
        assert await t.ask(Ticker.times) == []


async def test_timers_die_with_their_atom(autojump_clock: trio.testing.MockClock) -> None:
    async with open_system() as system:
        t = await system.spawn(Ticker)
        await t.ask(Ticker.every, 1.0)
        await system.stop(t)
        await trio.sleep(10)
        assert len(system.dead_letters) == 0  # no tick was sent to the dead atom


async def test_timer_interval_must_be_positive() -> None:
    async with open_system() as system:
        t = await system.spawn(Ticker)
        with pytest.raises(ValueError, match="positive"):
            await t.ask(Ticker.bad)
