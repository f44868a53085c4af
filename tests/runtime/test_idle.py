"""Idle atoms give their task up (the idle sweep) and get one back on their next
message; nothing queued, ordered or stopped behaves differently for it."""

from __future__ import annotations

from typing import ClassVar

import trio
import trio.testing

from radon_actors import Atom, handler, open_system
from radon_actors.runtime import AtomCell
from radon_actors.runtime._system import IDLE_SWEEP


class Log(Atom):
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.stops = 0

    @handler
    async def add(self, n: int) -> None:
        await trio.lowlevel.checkpoint()  # suspends: never an inline turn
        self.seen.append(n)

    @handler
    def get(self) -> list[int]:
        return list(self.seen)

    def on_stop(self) -> None:
        Log.stopped_with = list(self.seen)

    stopped_with: ClassVar[list[int]] = []


def _cell(ref: object) -> AtomCell:
    cell = ref._ep  # type: ignore[attr-defined]
    assert isinstance(cell, AtomCell)
    return cell


def _activation(ref: object) -> AtomCell:
    cell = ref._ep.cell  # type: ignore[attr-defined]  # an on-demand atom's endpoint
    assert isinstance(cell, AtomCell)
    return cell


async def _idle() -> None:
    # Two sweeps must find the task waiting; a third lets the loops return.
    await trio.sleep(3 * IDLE_SWEEP)
    await trio.testing.wait_all_tasks_blocked()


async def test_an_idle_atom_gives_its_task_and_queue_up_and_resumes_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Log)
        cell = _cell(ref)
        ref.tell(Log.add, 1)
        assert await ref.ask(Log.get) == [1]
        assert cell.task is not None
        await _idle()
        assert cell.task is None
        assert cell.mailbox.user == ()  # no deque held while idle
        # The first message starts a task again; what follows queues behind it.
        for n in range(2, 50):
            ref.tell(Log.add, n)
        assert await ref.ask(Log.get) == list(range(1, 50))
        assert cell.task is not None


async def test_a_busy_atom_keeps_its_task(autojump_clock: trio.testing.MockClock) -> None:
    async with open_system() as system:
        ref = await system.spawn(Log)
        cell = _cell(ref)
        task = None
        for n in range(20):
            ref.tell(Log.add, n)
            await trio.sleep(IDLE_SWEEP / 2)
            await trio.testing.wait_all_tasks_blocked()
            if task is None:
                task = cell.task
            assert cell.task is task is not None


async def test_an_idle_atom_stops_and_its_system_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Log.stopped_with = []
    async with open_system() as system:
        ref = await system.spawn(Log)
        ref.tell(Log.add, 7)
        await _idle()
        assert _cell(ref).task is None
    # The stop reached it as a control message, which gave it a task to stop in.
    assert Log.stopped_with == [7]
    assert _cell(ref).stopped.is_set()


async def test_a_stop_request_reaches_an_idle_atom(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Log)
        ref.tell(Log.add, 1)
        await _idle()
        await system.stop(ref)
        assert _cell(ref).stopped.is_set()


class TellsItself(Atom):
    """A plain ``on_start`` (so it starts inline) that queues a message to itself."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_start(self) -> None:
        self.ref.tell(TellsItself.note, "from on_start")

    @handler
    async def note(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        self.seen.append(text)

    @handler
    def get(self) -> list[str]:
        return list(self.seen)


class StopsAtOnce(Atom):
    def on_start(self) -> None:
        self.stop()

    @handler
    def get(self) -> int:
        return 1


async def test_a_message_an_inline_start_queued_gets_a_task() -> None:
    async with open_system() as system:
        ref = await system.spawn(TellsItself)
        assert await ref.ask(TellsItself.get) == ["from on_start"]


async def test_a_stop_an_inline_start_asked_for_is_carried_out() -> None:
    async with open_system() as system:
        ref = await system.spawn(StopsAtOnce)
        with trio.fail_after(5):
            await _cell(ref).stopped.wait()


class Farewell(Atom):
    """Starts inline; its on_stop cannot suspend and tells the atom itself."""

    said: ClassVar[list[str]] = []

    @handler
    def ping(self) -> str:
        return "pong"

    def on_stop(self) -> None:
        self.ref.tell(Farewell.ping)  # to a stopping atom: a dead letter
        Farewell.said.append("bye")


class SlowFarewell(Atom):
    @handler
    def ping(self) -> None:
        pass

    async def on_stop(self) -> None:
        await trio.lowlevel.checkpoint()


async def test_an_idle_atom_without_a_task_stops_inline() -> None:
    # What the collector of on-demand atoms uses: no task is started to run a
    # stop that cannot suspend; on_stop runs and what it sends is a dead letter.
    Farewell.said.clear()
    async with open_system() as system:
        ref = system.get(Farewell, "f")  # on demand: no supervisor
        assert await ref.ask(Farewell.ping) == "pong"
        cell = _activation(ref)
        assert cell.task is None  # started inline, idle
        letters = len(system.dead_letters)
        assert cell.stop_inline()
        assert cell.stopped.is_set() and cell.task is None
        assert Farewell.said == ["bye"]
        assert len(system.dead_letters) == letters + 1
        await trio.testing.wait_all_tasks_blocked()
        assert cell.task is None  # nothing woke it
        assert not cell.stop_inline()  # stopped already


async def test_stop_inline_refuses_what_needs_a_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        supervised = _cell(await system.spawn(Farewell))
        assert not supervised.stop_inline()  # its supervisor decides
        slow_ref = system.get(SlowFarewell, "s")
        await slow_ref.ask(SlowFarewell.ping)
        slow = _activation(slow_ref)
        assert not slow.stop_inline()  # its on_stop may suspend
        assert not slow.stopped.is_set()
        busy = system.get(Log, "l")
        busy.tell(Log.add, 1)  # queued: its task runs it
        await trio.testing.wait_all_tasks_blocked()
        cell = _activation(busy)
        assert await busy.ask(Log.get) == [1]
        assert cell.task is not None
        assert not cell.stop_inline()  # it has a task (not idle yet)
        await _idle()
        assert cell.stop_inline()
        assert Log.stopped_with == [1]


class Tally(Atom):
    def __init__(self) -> None:
        self.n = 0

    @handler
    def bump(self) -> int:
        self.n += 1
        return self.n


async def test_an_atom_asked_inline_has_no_mailbox_until_a_message_queues() -> None:
    # An inline-started atom that is only asked inline never needs a mailbox
    # (AtomCell.opened); the first message that queues gets one, made idle on
    # the atom, so that it starts the atom's task as before.
    async with open_system() as system:
        ref = system.get(Tally, "t")
        assert await ref.ask(Tally.bump) == 1
        cell = _activation(ref)
        assert cell.mailbox is None and cell.task is None
        made = cell.opened()  # anything that needs the mailbox itself makes it
        assert cell.mailbox is made and cell.opened() is made and cell.task is None
        assert made.statistics().queued == 0
        other = system.get(Tally, "u")
        assert await other.ask(Tally.bump) == 1
        late = _activation(other)
        assert late.mailbox is None
        other.tell(Tally.bump)  # queues: a mailbox, and a task to serve it
        assert late.mailbox is not None
        assert await other.ask(Tally.bump) == 3


async def test_an_atom_stopped_before_it_had_a_mailbox_refuses_what_comes_after() -> None:
    async with open_system() as system:
        ref = system.get(Tally, "t")
        assert await ref.ask(Tally.bump) == 1
        cell = _activation(ref)
        assert cell.mailbox is None
        assert cell.stop_inline()
        letters = len(system.dead_letters)
        cell.tell(Tally.bump, (), {})  # to the stopped cell itself: a dead letter
        assert cell.mailbox is not None and cell.mailbox.closed
        assert len(system.dead_letters) == letters + 1
        assert cell.task is None


class SlowBye(Atom):
    stops: ClassVar[int] = 0

    @handler
    def ping(self) -> str:
        return "pong"

    async def on_stop(self) -> None:
        await trio.lowlevel.checkpoint()  # may suspend: it needs a task
        SlowBye.stops += 1


async def test_a_stop_of_an_atom_without_a_mailbox_starts_one_task_and_refuses_the_rest() -> None:
    # request_stop gives an idle atom that never had a mailbox a task for its
    # stop directly; what is sent meanwhile queues for that task and is refused
    # once the atom has stopped (as behind a queued stop), and wakes no other.
    SlowBye.stops = 0
    async with open_system() as system:
        ref = await system.spawn(SlowBye)
        assert await ref.ask(SlowBye.ping) == "pong"
        cell = _cell(ref)
        assert cell.mailbox is None and cell.task is None
        letters = len(system.dead_letters)
        cell.request_stop()
        assert cell.mailbox is None  # no mailbox to carry the stop
        ref.tell(SlowBye.ping)  # queues for the stopping task
        assert cell.mailbox is not None
        with trio.fail_after(5):
            await cell.stopped.wait()
        assert SlowBye.stops == 1
        assert len(system.dead_letters) == letters + 1
        cell.request_stop()  # idempotent
        await trio.testing.wait_all_tasks_blocked()
        assert SlowBye.stops == 1
