"""Live migration between the in-process host and worker processes.

The tests that take the ``kind`` fixture run here with native atoms, and again
in ``test_placement_sandbox.py`` with sandboxed ones (same functions, another
``kind``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
from cluster_helpers import Kind, cluster, kill_host, native_kind
from placement_atoms import Counter, Freezer, Gate

from radon_actors import (
    AtomStopped,
    MigrationError,
    NoSuchAtom,
    NoSuchHost,
)
from radon_actors.testing import cell_of


async def _pid_of(ref: Any) -> int:
    return int(await ref.ask(Counter.where))


@pytest.fixture
def kind() -> Kind:
    """Native target atoms (test_placement_sandbox.py overrides it: sandboxed)."""
    return native_kind()


async def test_local_atom_moves_to_workers_and_back_with_state_and_refs(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1", "w2") as system:
        ref = await kind.spawn(system, C, 0, name="c")
        relay = await system.spawn(kind.Relay, host="w2")
        for _ in range(5):
            ref.tell(C.incr)

        await system.migrate(ref, to="w1")
        assert await kind.where(system, ref) == "w1"
        assert await ref.ask(C.incr) == 6
        # a Ref held on another host keeps working
        assert await relay.ask(kind.Relay.relay, ref, 10) == 16

        await system.migrate(ref, to="w2")
        assert await kind.where(system, ref) == "w2"
        assert await relay.ask(kind.Relay.relay, ref, 1) == 17

        await system.migrate(ref, to="local")
        assert await kind.where(system, ref) == "local"
        assert await system.lookup("c").ask(C.get) == 17
        assert await relay.ask(kind.Relay.relay, ref, 1) == 18
        # migrating to where it already is does nothing
        await system.migrate(ref, to="local")
        assert await ref.ask(C.get) == 18


async def test_atom_spawned_on_a_worker_moves_around(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1", "w2") as system:
        ref = await kind.spawn(system, C, 100, host="w1")
        assert await kind.where(system, ref) == "w1"
        await system.migrate(ref, to="w2")
        assert await ref.ask(C.incr) == 101
        assert await kind.where(system, ref) == "w2"
        await system.migrate(ref, to="local")
        assert await kind.where(system, ref) == "local"
        assert await ref.ask(C.incr) == 102
        await system.migrate(ref, to="w1")
        assert await kind.where(system, ref) == "w1"
        assert await ref.ask(C.incr) == 103


async def test_asks_in_flight_during_migration_get_their_replies(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1") as system:
        ref = await kind.spawn(system, C, 0)
        replies: list[int] = []

        async def asker() -> None:
            replies.append(await ref.ask(C.aincr))

        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(asker)
            await trio.testing.wait_all_tasks_blocked()
            # 50 asks are queued in the mailbox: they move with the atom
            await system.migrate(ref, to="w1")
        assert sorted(replies) == list(range(1, 51))
        assert await ref.ask(C.get) == 50
        assert await kind.where(system, ref) == "w1"


async def test_failed_migration_leaves_the_atom_where_it_was(kind: Kind) -> None:
    U = kind.Unpicklable
    async with cluster("w1") as system:
        ref = await kind.spawn(system, U)
        assert await ref.ask(U.incr) == 1
        for _ in range(10):
            ref.tell(U.incr)
        with pytest.raises(MigrationError, match="keeps running"):
            await system.migrate(ref, to="w1")
        # the queued messages were put back, in order, and the state is intact
        assert await ref.ask(U.incr) == 12
        with pytest.raises(NoSuchHost):
            await system.migrate(ref, to="nowhere")
        assert await ref.ask(U.incr) == 13
        assert await kind.where(system, ref) == "local"


async def test_failed_migration_from_a_worker_leaves_it_there(kind: Kind) -> None:
    C, U = kind.Counter, kind.Unpicklable
    async with cluster("w1", "w2") as system:
        ref = await kind.spawn(system, U, host="w1")
        local = await kind.spawn(system, C)
        await system.migrate(local, to="w1")
        with pytest.raises(MigrationError):
            await system.migrate(ref, to="w2")
        assert await ref.ask(U.incr) == 1
        assert await kind.where(system, ref) == "w1"
        # meanwhile an atom whose origin is here, now on w1, still moves on to w2
        await local.ask(C.incr)
        await system.migrate(local, to="w2")
        assert await local.ask(C.incr) == 2


@pytest.mark.parametrize("origin", ["local", "w1"])
async def test_migration_under_load_keeps_every_sequence_complete_and_in_order(
    origin: str, kind: Kind
) -> None:
    # origin: where the target is spawned, hence which host coordinates its moves
    n = 2000
    Sequencer, Relay = kind.Sequencer, kind.Relay
    async with cluster("w1", "w2") as system:
        target = await kind.spawn(system, Sequencer, mailbox_size=100_000, host=origin)
        remote_senders = [await system.spawn(Relay, host=h) for h in ("w1", "w2")]
        asked: list[int] = []
        done: list[str] = []

        async def local_sender(label: str) -> None:
            for i in range(n):
                await target.send(Sequencer.seq, label, i)
                if i % 100 == 99:  # flow control: bounds the backlog
                    await target.ask(Sequencer.handled)
            done.append(label)

        async def asking_sender() -> None:
            for i in range(n // 5):
                asked.append(await target.ask(Sequencer.aseq, "asker", i))
            done.append("asker")

        async def remote_sender(relay: Any, label: str) -> None:
            assert await relay.ask(Relay.stream, target, label, n) == n
            done.append(label)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(local_sender, "local-1")
            nursery.start_soon(local_sender, "local-2")
            nursery.start_soon(asking_sender)
            for relay, label in zip(remote_senders, ("on-w1", "on-w2"), strict=True):
                nursery.start_soon(remote_sender, relay, label)
            seen = 0
            visited = {await kind.where(system, target)}
            for hop in ["w1", "w2", "local", "w2", "w1", "local", "w1", "local", "w2", "w1"]:
                # let some messages through between moves, so every move is under load
                while (now := await target.ask(Sequencer.handled)) < seen + 50:
                    assert len(done) < 5, "the senders finished before the migrations"
                seen = now
                await system.migrate(target, to=hop)
                visited.add(await kind.where(system, target))
            moved_under_load = len(done) < 5
        last, errors, *pids = await target.ask(Sequencer.report)
        assert moved_under_load
        assert visited == {"local", "w1", "w2"}
        if pids:  # a native Sequencer also counts the processes it ran in
            assert len(pids[0]) == 3
        assert errors == []
        assert last == {
            "local-1": n - 1,
            "local-2": n - 1,
            "on-w1": n - 1,
            "on-w2": n - 1,
            "asker": n // 5 - 1,
        }
        assert asked == list(range(n // 5))


async def test_stopping_a_migrated_atom_stops_it_where_it_lives(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1", "w2") as system:
        ref = await kind.spawn(system, C, 1)
        await system.migrate(ref, to="w1")
        await system.migrate(ref, to="w2")
        with trio.fail_after(10):
            await system.stop(ref)
        with pytest.raises(AtomStopped):
            await ref.ask(C.get)
        spawned_remote = await kind.spawn(system, C, host="w1")
        await system.migrate(spawned_remote, to="local")
        await system.migrate(spawned_remote, to="w2")
        assert await spawned_remote.ask(C.incr) == 1


async def test_target_that_stops_answering_mid_migration_leaves_the_atom_here() -> None:
    async with cluster("w1", heartbeat_interval=0.1, heartbeat_timeout=1.0) as system:
        ref = await system.spawn(Freezer)
        assert await ref.ask(Freezer.incr) == 1
        for _ in range(5):
            ref.tell(Freezer.incr)
        with trio.fail_after(15), pytest.raises(MigrationError, match="keeps running") as info:
            # the target freezes while it unpickles the state: declared down
            await system.migrate(ref, to="w1")
        assert "down" in str(info.value)
        assert await ref.ask(Freezer.incr) == 7


async def test_migration_waits_for_the_turn_and_a_cancelled_one_does_not_move(
    kind: Kind,
) -> None:
    C = kind.Counter
    async with cluster("w1") as system:
        ref = await kind.spawn(system, C, 0)
        event = trio.Event()
        gate = await system.spawn(Gate, event)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, C.wait_on, gate)  # a long turn
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(0.2) as scope:
                await system.migrate(ref, to="w1")  # waits for the turn to end
            assert scope.cancelled_caught
            event.set()
        # the turn ended after the caller gave up: the atom did not move
        with trio.fail_after(5):
            assert await ref.ask(C.incr) == 1
        assert await kind.where(system, ref) == "local"
        await system.migrate(ref, to="w1")
        assert await kind.where(system, ref) == "w1"
        assert await ref.ask(C.incr) == 2


async def test_asks_during_the_hand_over_are_not_run_on_the_source(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1") as system:
        ref = await kind.spawn(system, C, 0)
        answered = 0
        stop = False

        async def hammer() -> None:
            nonlocal answered
            while not stop:
                await ref.ask(C.incr)  # a def handler: the inline fast path
                answered += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hammer)
            for hop in ("w1", "local", "w1", "local"):
                await system.migrate(ref, to=hop)
            stop = True
        assert await ref.ask(C.get) == answered


async def test_senders_waiting_for_room_follow_the_atom(kind: Kind) -> None:
    C = kind.Counter
    async with cluster("w1") as system:
        ref = await kind.spawn(system, C, 0, mailbox_size=2)
        event = trio.Event()
        gate = await system.spawn(Gate, event)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, C.wait_on, gate)  # a turn that waits for the gate
            await trio.testing.wait_all_tasks_blocked()
            ref.tell(C.incr)
            ref.tell(C.incr)  # the mailbox is full now
            for _ in range(5):
                nursery.start_soon(ref.send, C.incr)
            nursery.start_soon(ref.ask, C.incr)
            await trio.testing.wait_all_tasks_blocked()  # all six wait for room
            nursery.start_soon(partial(system.migrate, ref, to="w1"))
            await trio.testing.wait_all_tasks_blocked()
            event.set()
        assert await ref.ask(C.get) == 8
        assert await kind.where(system, ref) == "w1"
        assert len(system.dead_letters) == 0


async def test_the_origin_learns_when_a_migrated_atom_stops_or_its_host_dies_and_restarts_it(
    kind: Kind,
) -> None:
    Counter = kind.Counter
    async with cluster("w1", "w2") as system:
        stops: list[tuple[str, BaseException | None]] = []

        def record(cell: Any, reason: BaseException | None) -> None:
            stops.append((cell.id, reason))

        quitter = await kind.spawn(system, Counter, 0, name="quitter")
        doomed = await kind.spawn(system, Counter, 0)
        for ref in (quitter, doomed):
            await system.migrate(ref, to="w1")
            await system.migrate(ref, to="w2")
            # what a watcher or supervisor of the original cell holds on to
            cell_of(ref).add_stop_callback(record)

        await quitter.ask(Counter.halt)  # stops itself on w2
        with trio.fail_after(10):
            await cell_of(quitter).stopped.wait()
        assert stops == [(quitter.id, None)]
        with pytest.raises(AtomStopped):
            await quitter.ask(Counter.get)
        with pytest.raises(NoSuchAtom):
            system.lookup("quitter")

        await doomed.ask(Counter.incr, 3)
        restarted = trio.Event()
        cell = cell_of(doomed)
        cell.on_crashed = [lambda c, exc: restarted.set()]
        assert await kind.where(system, doomed) == "w2"
        kill_host(system, "w2")
        with trio.fail_after(10):
            await restarted.wait()
        # its supervisor (the root) restarted it on the live host, fresh, same Ref
        assert len(stops) == 1
        assert await doomed.ask(Counter.get) == 0
        assert await kind.where(system, doomed) == "w1"


async def test_coming_home_to_a_small_mailbox_loses_nothing(
    monkeypatch: pytest.MonkeyPatch, kind: Kind
) -> None:
    from radon_actors.placement._endpoints import Forward

    paused, release = trio.Event(), trio.Event()
    resume_into = Forward.resume_into

    async def held_resume_into(self: Forward, cell: Any) -> None:
        paused.set()  # the atom is home, the origin's entry still paused
        await release.wait()
        await resume_into(self, cell)

    monkeypatch.setattr(Forward, "resume_into", held_resume_into)
    S = kind.Sequencer
    async with cluster("w1") as system:
        ref = await kind.spawn(system, S, mailbox_size=4)
        relay = await system.spawn(kind.Relay, host="w1")
        await system.migrate(ref, to="w1")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(system.migrate, ref, to="local"))
            with trio.fail_after(10):
                await paused.wait()
            for i in range(4):  # local senders: the pause holds a mailbox's worth
                ref.tell(S.seq, "here", i)
            # From another host, far more than the mailbox holds (they arrive
            # before the relay's answer, on the same connection).
            assert await relay.ask(kind.Relay.stream, ref, "w1", 50) == 50
            release.set()
        assert await ref.ask(S.handled) == 54
        last, errors, *_ = await ref.ask(S.report)
        assert errors == [] and last == {"here": 3, "w1": 49}
        assert await kind.where(system, ref) == "local"
        assert len(system.dead_letters) == 0
