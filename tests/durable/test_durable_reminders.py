"""Reminders (issue #19, third part): kept in the state store, they reach an
on-demand atom even after it was collected or its process restarted; missed
ticks are coalesced; failed deliveries are retried. Timed with trio's
MockClock and a thread-free store; the crash test kills a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from durable_atoms import TICKS, MemoryStore, Reminded, ticks_reached

from radon_actors import SQLiteStore, System, open_system
from radon_actors.durable._reminders import LEASE_SECONDS, LEASE_STATE, RESCAN_SECONDS


@pytest.fixture(autouse=True)
def _fresh_ticks() -> None:
    TICKS.clear()


async def test_a_reminder_fires_when_due(autojump_clock: trio.testing.MockClock) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Reminded, "a")
        await ref.ask(Reminded.schedule, 60.0)
        await trio.sleep(59)
        assert TICKS == []
        await ticks_reached(1).wait()
        assert trio.current_time() >= 60
        assert TICKS == [("a", "tick")]
        assert await ref.ask(Reminded.count) == 1


async def test_a_reminder_reactivates_a_collected_atom(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Reminded, "b")
        await ref.ask(Reminded.schedule, 60.0)
        activations = system.durability().activations  # type: ignore[attr-defined]
        await trio.sleep(30)
        assert ref.id not in activations.active  # collected after 10 s idle
        await ticks_reached(1).wait()
        assert ref.id in activations.active  # the reminder brought it back


async def test_a_periodic_reminder_ticks_until_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Reminded, "c")
        await ref.ask(Reminded.schedule, 5.0, 5.0)
        await ticks_reached(3).wait()
        assert 15 <= trio.current_time() < 16
        assert await ref.ask(Reminded.forget) is True
        assert await ref.ask(Reminded.forget) is False
        await trio.sleep(60)
        assert len(TICKS) == 3


async def test_a_reminder_outlives_its_system_and_missed_ticks_come_as_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    async with open_system(state_store=store) as system:
        await system.get(Reminded, "d").ask(Reminded.schedule, 10.0, 10.0)
    await trio.sleep(1000)  # the system is down for 100 periods
    async with open_system(state_store=store) as system:
        await ticks_reached(1).wait()  # one tick for the 100 missed
        await trio.sleep(9.5)
        assert len(TICKS) == 1
        await ticks_reached(2).wait()  # then a period later
        assert await system.get(Reminded, "d").ask(Reminded.count) == 2


async def test_a_failed_delivery_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Reminded, "e")
        await ref.ask(Reminded.schedule, 10.0)
        await ref.ask(Reminded.fail_next, 1)
        await ticks_reached(1).wait()  # the first try failed; the retry a second later
        assert trio.current_time() >= 11
        await trio.sleep(100)
        assert len(TICKS) == 1  # a one-shot reminder: delivered once, then removed
        assert await store_has_no_reminders(system)


async def store_has_no_reminders(system: object) -> bool:
    store = system.durability().store  # type: ignore[attr-defined]
    return await store.scan("$reminders") == []


async def test_reminders_are_for_on_demand_atoms_and_take_valid_times(
    tmp_path: Path,
) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        spawned = await system.spawn(Reminded, name="spawned")
        with pytest.raises(TypeError, match="reminders are for on-demand atoms"):
            await spawned.ask(Reminded.schedule, 1.0)
        ref = system.get(Reminded, "v")
        with pytest.raises(ValueError, match="due time"):
            await ref.ask(Reminded.schedule, -1.0)
        ref = system.get(Reminded, "w")
        with pytest.raises(ValueError, match="period"):
            await ref.ask(Reminded.schedule, 1.0, 0.0)


_CHILD = textwrap.dedent(
    """
    import sys, trio
    from durable_atoms import Reminded
    from radon_actors import SQLiteStore, open_system

    async def main():
        async with open_system(state_store=SQLiteStore(sys.argv[1])) as system:
            for i in range(1000):
                ref = system.get(Reminded, f"k{i}")
                await ref.ask(Reminded.ring, "saved")  # an acknowledged save
                if i % 100 == 0:
                    await ref.ask(Reminded.schedule, 0.5, 0.5, "after the crash")
            print("READY", flush=True)
            await trio.sleep_forever()

    trio.run(main)
    """
)


async def test_a_killed_process_loses_no_acknowledged_save_and_reminders_go_on(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", _CHILD, str(db)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        seen = b""
        with trio.fail_after(120):
            while b"READY" not in seen:
                chunk = await proc.stdout.receive_some()
                assert chunk, "the child exited early"
                seen += chunk
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
    TICKS.clear()
    with trio.fail_after(60):
        async with open_system(state_store=SQLiteStore(db)) as system:
            for i in range(1000):
                count = await system.get(Reminded, f"k{i}").ask(Reminded.count)
                assert count >= 1, f"k{i} lost its acknowledged save"
            await ticks_reached(20).wait()  # the reminders fire in the new process
            assert {what for _, what in TICKS} == {"after the crash"}
            assert {key for key, _ in TICKS} <= {f"k{i}" for i in range(0, 1000, 100)}


# ----------------------------------------------------------------------
# Several systems on one store: one serves, by a lease
# ----------------------------------------------------------------------
def _holders(*systems: System) -> list[bool]:
    return [s.durability().reminders.holding for s in systems]  # type: ignore[attr-defined]


async def test_several_systems_on_one_store_deliver_each_reminder_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    async with open_system(state_store=store) as system:  # one stored before they start
        await system.get(Reminded, "stored").ask(Reminded.schedule, 30.0)
    async with open_system(state_store=store) as a, open_system(state_store=store) as b:
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(_holders(a, b)) == [False, True]
        # Set from each system, whichever holds the lease.
        await a.get(Reminded, "from-a").ask(Reminded.schedule, 60.0)
        await b.get(Reminded, "from-b").ask(Reminded.schedule, 60.0)
        await ticks_reached(3).wait()
        assert 60 <= trio.current_time() <= 60 + RESCAN_SECONDS + 1
        await trio.sleep(300)
        assert sorted(TICKS) == [("from-a", "tick"), ("from-b", "tick"), ("stored", "tick")]


async def test_a_standby_system_takes_over_when_the_holder_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()

    async def first_system(
        close: trio.Event, task_status: trio.TaskStatus[System] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with open_system(state_store=store) as system:
            await trio.testing.wait_all_tasks_blocked()
            task_status.started(system)
            await close.wait()

    async with trio.open_nursery() as nursery:
        close_a = trio.Event()
        a = await nursery.start(first_system, close_a)
        async with open_system(state_store=store) as b:
            await trio.testing.wait_all_tasks_blocked()
            assert _holders(a, b) == [True, False]
            start = trio.current_time()
            await a.get(Reminded, "p").ask(Reminded.schedule, 5.0, 5.0)
            await ticks_reached(2).wait()
            close_a.set()  # a lets the lease go as it closes
            await ticks_reached(5).wait()
            assert _holders(b) == [True]
            # Every 5 s and no faster: one system delivered each tick.
            assert trio.current_time() - start >= 25 - 0.5
            await trio.sleep(2)
            assert len(TICKS) == 5


async def test_the_lease_of_a_system_that_died_runs_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = MemoryStore()
    # A holder that died without letting go: its lease runs 10 s more.
    until = time.time() + LEASE_SECONDS
    lease = json.dumps({"holder": "deadbeef", "until": until})
    await store.write(*LEASE_STATE, lease, None)
    async with open_system(state_store=store) as system:
        await system.get(Reminded, "late").ask(Reminded.schedule, 1.0)
        await trio.sleep(LEASE_SECONDS - 1)
        assert TICKS == [] and _holders(system) == [False]
        await ticks_reached(1).wait()
        assert trio.current_time() <= LEASE_SECONDS + RESCAN_SECONDS + 1
        assert _holders(system) == [True]
