"""Mailboxes: bounds, overflow behaviour, the priority lane, the stash, floods."""

from __future__ import annotations

import resource

import pytest
import trio
import trio.testing
from runtime_atoms import Gate

from radon_actors import Atom, MailboxFull, StashOverflow, System, handler
from radon_actors.mailbox import Mailbox
from radon_actors.testing import cell_of


def test_capacity_must_be_positive() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive int"):
            Mailbox(bad)  # type: ignore[arg-type]


def test_put_nowait_fails_loudly_when_full() -> None:
    box = Mailbox(2)
    assert box.put_nowait("a") and box.put_nowait("b")
    with pytest.raises(MailboxFull, match=r"await ref.send"):
        box.put_nowait("c")
    assert box.statistics().queued == 2


def test_control_lane_is_unbounded_and_closed_box_refuses() -> None:
    box = Mailbox(1)
    box.put_nowait("user")
    assert box.put_control("stop") and box.put_control("other")
    assert list(box.control) == ["stop", "other"]
    assert box.close() == ["user"]
    assert not box.put_nowait("late") and not box.put_control("late")


def test_unstash_puts_messages_back_first_in_order() -> None:
    box = Mailbox(3)
    box.put_nowait("new")
    for m in ("s1", "s2", "s3"):
        box.stash(m)
    with pytest.raises(StashOverflow):
        box.stash("s4")
    assert box.unstash_all() == 3
    assert list(box.user) == ["s1", "s2", "s3", "new"]


async def test_tell_on_full_mailbox_raises_and_send_waits(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered, mailbox_size=2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "busy")
        await entered.wait()
        g.tell(Gate.record, 1)
        g.tell(Gate.record, 2)
        with pytest.raises(MailboxFull):
            g.tell(Gate.record, 3)
        sent = trio.Event()

        async def sender() -> None:
            await g.send(Gate.record, 3)
            sent.set()

        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        assert not sent.is_set()
        assert system.mailbox_statistics(g).senders_waiting == 1
        opened.set()
        await sent.wait()
    assert await g.ask(Gate.events) == [("start", "busy"), ("end", "busy"), 1, 2, 3]


async def test_stop_overtakes_queued_user_messages(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "busy")
        await entered.wait()
        for i in range(10):
            g.tell(Gate.record, i)
        nursery.start_soon(system.stop, g)
        await trio.testing.wait_all_tasks_blocked()
        opened.set()
    # None of the ten queued messages ran: all are dead letters.
    assert [d.args[0] for d in system.dead_letters.recent()] == list(range(10))


class Initialising(Atom):
    """Stashes work until it is told it is ready (the classic stash use)."""

    def __init__(self) -> None:
        self.ready = False
        self.done: list[int] = []

    @handler
    def work(self, i: int) -> int:
        if not self.ready:
            self.stash()
            return -1  # ignored: the message waits in the stash
        self.done.append(i)
        return i * 10

    @handler
    async def awork(self, i: int) -> int:
        await trio.lowlevel.checkpoint()
        return self.work(i)

    @handler
    def become_ready(self) -> None:
        self.ready = True
        self.unstash_all()

    @handler
    def history(self) -> list[int]:
        return self.done


async def test_stash_holds_messages_and_releases_them_in_order(system: System) -> None:
    a = await system.spawn(Initialising)
    results: dict[int, int] = {}

    async def ask(i: int) -> None:
        handler = Initialising.work if i % 2 else Initialising.awork
        results[i] = await a.ask(handler, i)

    async with trio.open_nursery() as nursery:
        for i in range(6):
            nursery.start_soon(ask, i)
            await trio.testing.wait_all_tasks_blocked()
        a.tell(Initialising.work, 6)
        await trio.testing.wait_all_tasks_blocked()
        assert results == {}
        assert system.mailbox_statistics(a).stashed == 7
        a.tell(Initialising.become_ready)
    assert results == {i: i * 10 for i in range(6)}
    assert await a.ask(Initialising.history) == list(range(7))


def test_stash_outside_a_turn_is_an_error() -> None:
    async def main() -> None:
        from radon_actors import open_system

        async with open_system() as system:
            ref = await system.spawn(Initialising)

            cell = cell_of(ref)
            assert cell is not None
            with pytest.raises(RuntimeError, match="during its turn"):
                cell.instance.stash()

    trio.run(main)


class Slow(Atom):
    def __init__(self) -> None:
        self.count = 0
        self.peak = 0

    @handler
    async def hit(self) -> None:
        self.count += 1
        await trio.lowlevel.checkpoint()  # a slow consumer: yields on every message

    @handler
    def total(self) -> int:
        return self.count


async def test_a_flood_of_a_million_tells_keeps_memory_bounded(system: System) -> None:
    n = 1_000_000
    capacity = 1000
    slow = await system.spawn(Slow, mailbox_size=capacity)
    for _ in range(10_000):  # warm up allocator pools before measuring
        await slow.send(Slow.hit)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peak_queued = 0
    for i in range(n - 10_000):
        await slow.send(Slow.hit)
        if i % 1000 == 0:
            peak_queued = max(peak_queued, system.mailbox_statistics(slow).queued)
    assert await slow.ask(Slow.total) == n
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert peak_queued <= capacity
    # A million queued messages would need well over 100 MiB.
    assert grown_mib < 40, f"memory grew by {grown_mib:.0f} MiB"


def test_an_idle_consumer_is_woken_by_the_first_message_and_after_a_reopen() -> None:
    woken: list[str] = []

    class Consumer:
        def wake_idle(self) -> None:
            woken.append("woken")

    box = Mailbox(4)
    box.idle(Consumer())
    assert box.user == ()  # no lane held while idle
    box.put_nowait("m1")
    assert woken == ["woken"] and list(box.user) == ["m1"]
    box.put_nowait("m2")
    assert woken == ["woken"]  # once: the consumer has its task now
    box.user.clear()
    box.idle(Consumer())
    assert box.close() == []
    assert box.put_nowait("late") is False and woken == ["woken"]
    box.reopen(user=["again"])
    assert woken == ["woken", "woken"]


def test_a_mailbox_with_messages_cannot_go_idle() -> None:
    class Consumer:
        def wake_idle(self) -> None:
            raise AssertionError("not woken")

    box = Mailbox(4)
    box.put_nowait("m")
    with pytest.raises(RuntimeError, match="cannot go idle"):
        box.idle(Consumer())
