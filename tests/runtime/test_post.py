"""``AtomCell.post``: the one delivery path of messages that come from elsewhere.

Frames from other hosts, forwarders and queues replayed after a migration hand
a message and its reply slot to the cell; nothing is raised at them, so every
error goes to the slot (an ask) or to the dead letters (a tell).
"""

from __future__ import annotations

from typing import Any

import outcome
import pytest
import trio
import trio.testing
from runtime_atoms import Counter, Gate

from radon_actors import AtomStopped, BadArguments, HandlerNotFound, System
from radon_actors.testing import cell_of


class Slot:
    """A ReplySlot that records its outcome."""

    def __init__(self) -> None:
        self.task: Any = "pending"
        self.outcomes: list[outcome.Outcome[Any]] = []

    def deliver(self, result: outcome.Outcome[Any]) -> None:
        if self.task is not None:
            self.task = None
            self.outcomes.append(result)


async def test_a_posted_ask_runs_as_a_turn_and_answers_its_slot(system: System) -> None:
    ref = await system.spawn(Counter)
    slot = Slot()
    cell_of(ref).post("incr", (5,), {}, slot)
    await trio.testing.wait_all_tasks_blocked()
    assert [o.unwrap() for o in slot.outcomes] == [5]


async def test_errors_go_to_the_slot_or_the_dead_letters(system: System) -> None:
    ref = await system.spawn(Counter)
    cell = cell_of(ref)
    unknown, bad = Slot(), Slot()
    cell.post("nope", (), {}, unknown)
    cell.post("incr", ("x", "y", "z"), {}, bad)
    with pytest.raises(HandlerNotFound):
        unknown.outcomes[0].unwrap()
    with pytest.raises(BadArguments):
        bad.outcomes[0].unwrap()
    cell.post("nope", (), {}, None)
    assert [d.handler for d in system.dead_letters.recent()] == ["nope"]
    await system.stop(ref)
    stopped = Slot()
    cell.post("incr", (1,), {}, stopped)
    with pytest.raises(AtomStopped):
        stopped.outcomes[0].unwrap()


async def test_post_when_room_waits_for_room_and_keeps_the_order(system: System) -> None:
    opened = trio.Event()
    gate = await system.spawn(Gate, opened, mailbox_size=2)
    cell = cell_of(gate)
    busy = Slot()
    cell.post("wait_open", ("busy",), {}, busy)  # the atom's turn waits for the event
    await trio.testing.wait_all_tasks_blocked()
    slots = [Slot() for _ in range(4)]
    sent: list[int] = []

    async def replay() -> None:
        # One sender, as a forwarder replaying its queue: its order is kept.
        for tag, slot in enumerate(slots):
            await cell.post_when_room("record", (tag,), {}, slot)
            sent.append(tag)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(replay)
        await trio.testing.wait_all_tasks_blocked()
        # Two fit; the third waits for room instead of failing.
        assert sent == [0, 1]
        assert len(cell.mailbox.user) == 2
        assert not any(slot.outcomes for slot in slots)
        opened.set()
    await trio.testing.wait_all_tasks_blocked()
    assert [slot.outcomes[0].unwrap() for slot in slots] == [0, 1, 2, 3]
    assert await gate.ask(Gate.events) == [("start", "busy"), ("end", "busy"), 0, 1, 2, 3]


async def test_answer_now_runs_an_idle_atoms_def_handler_at_once(system: System) -> None:
    ref = await system.spawn(Counter, 3)
    cell = cell_of(ref)
    slot = Slot()
    assert cell.answer_now("get", (), {}, slot)  # answered synchronously, no task switch
    assert [o.unwrap() for o in slot.outcomes] == [3]
    not_now = Slot()
    assert not cell.answer_now("nope", (), {}, not_now)  # post reports the error
    gate = cell_of(await system.spawn(Gate, trio.Event()))
    assert not gate.answer_now("wait_open", ("x",), {}, not_now)  # it awaits: post it
    assert not_now.outcomes == []
