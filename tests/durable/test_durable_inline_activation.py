"""The cheap activation: an on-demand atom whose start cannot suspend (no
durable state, a plain ``on_start``) starts in the task of its first message,
with no task of its own until a message has to queue."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from durable_atoms import Fussy, Stateless, Visits
from structlog.testing import capture_logs

from radon_actors import SpawnError, WouldBlock, open_system
from radon_actors.runtime import AtomCell


def _cell(ref: object) -> AtomCell:
    cell = ref._ep.cell  # type: ignore[attr-defined]
    assert isinstance(cell, AtomCell)
    return cell


async def test_a_first_ask_activates_in_the_askers_task_and_starts_no_task() -> None:
    Fussy.started.clear()
    async with open_system() as system:
        ref = system.get(Fussy, "k1")
        await system.get(Fussy, "warm").ask(Fussy.items)  # the system's own tasks are up
        before = system.nursery.child_tasks
        assert await ref.ask(Fussy.items) == []
        assert Fussy.started == ["warm", "k1"]
        assert _cell(ref).task is None
        # No activation task, no task for the cell.
        assert system.nursery.child_tasks == before


async def test_ask_nowait_activates_inline_or_would_block() -> None:
    async with open_system() as system:
        ref = system.get(Fussy, "k3")
        assert ref.ask_nowait(Fussy.items) == []  # activated in this task, answered now
        ref.tell(Fussy.note, "a")  # queued: the activation's task has it
        with pytest.raises(WouldBlock):
            ref.ask_nowait(Fussy.items)
        assert await ref.ask(Fussy.items) == ["a"]
        # A class whose activation must wait (durable state to load) never answers now.
        visits = system.get(Visits, "v1")
        with pytest.raises(WouldBlock, match="being activated"):
            visits.ask_nowait(Visits.seen)
        assert (await visits.ask(Visits.seen))[0] == 0
        assert visits.ask_nowait(Visits.seen)[0] == 0  # active now


async def test_messages_queued_on_an_inline_activation_start_its_task_in_order() -> None:
    async with open_system() as system:
        ref = system.get(Fussy, "k2")
        ref.tell(Fussy.note, "a")  # activates inline, then queues: a task starts
        ref.tell(Fussy.note, "b")
        assert await ref.ask(Fussy.items) == ["a", "b"]


async def test_a_failing_constructor_fails_the_asker_and_the_next_message_tries_again() -> None:
    Fussy.started.clear()
    async with open_system() as system:
        ref = system.get(Fussy, "bad-1")
        with pytest.raises(SpawnError, match="could not be activated") as info:
            await ref.ask(Fussy.items)
        assert "no atom for bad-1" in str(info.value)
        with pytest.raises(SpawnError):
            await ref.ask(Fussy.items)
        assert Fussy.started == []
        # A tell cannot fail at its sender: it is logged and dropped.
        with capture_logs() as logs:
            ref.tell(Fussy.note, "x")
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "durable.activation_failed",
            "dead_letter",
        ]
        # Another key of the class is not affected.
        assert await system.get(Fussy, "good").ask(Fussy.items) == []


async def test_a_durable_atom_still_activates_in_a_task_of_its_own() -> None:
    from durable_atoms import MemoryStore

    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Visits, "v")
        assert await ref.ask(Visits.visit) == 1
        assert _cell(ref).task is not None  # its state was loaded in its task


async def test_an_inline_activation_is_collected_and_comes_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        ref = system.get(Stateless, "s")
        assert await ref.ask(Stateless.incr) == 1
        first = _cell(ref)
        assert first.task is None
        await trio.sleep(5)  # collected: the stop reached a cell without a task
        assert first.stopped.is_set()
        assert await ref.ask(Stateless.incr) == 1
        assert _cell(ref) is not first
