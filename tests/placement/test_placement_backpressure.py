"""Live migration under backpressure, with a deadline (issue #12).

A migration closes the atom's mailbox when it takes the atom out (step 3):
every sender waiting for room, here or on another host, then queues behind the
move in the cell's transit queue, and a connection's reader never waits on an
atom that cannot drain until a reply on that same connection arrives. These
tests run with native atoms here, and sandboxed in ``test_placement_sandbox.py``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import Kind, cluster, count_when_arrived, native_kind
from placement_atoms import Doorman, Gate, SlowToRestore

from radon_actors import MigrationError
from radon_actors.testing import cell_of


@pytest.fixture
def kind() -> Kind:
    """Native target atoms (test_placement_sandbox.py overrides it: sandboxed)."""
    return native_kind()


async def _until(predicate: Any) -> None:
    """Wait until ``predicate()`` holds, checking each time this process is idle."""
    while not predicate():
        await trio.testing.wait_all_tasks_blocked(cushion=0.005)


async def test_a_full_mailbox_with_senders_here_and_on_the_target_migrates(kind: Kind) -> None:
    # The scenario: the atom's mailbox is full, two senders here and one
    # on w1 (whose frames a connection reader here delivers) wait for room, and
    # the atom moves to w1. It used to hang for good: the reader waited for room
    # and the target's answer to the move was queued behind on that connection.
    S = kind.Sequencer
    n = 300
    with trio.fail_after(60):
        async with cluster("w1") as system:
            target = await kind.spawn(system, S, mailbox_size=10)
            payer = await system.spawn(kind.Relay, host="w1")
            event = trio.Event()
            gate = await system.spawn(Gate, event)
            mailbox = cell_of(target).opened()

            async def local(sender: str) -> None:
                for i in range(n):
                    await target.send(S.seq, sender, i)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(target.ask, S.wait_on, gate)  # a turn that waits
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(local, "a")
                nursery.start_soon(local, "b")
                nursery.start_soon(payer.ask, kind.Relay.flood, target, "remote", n)
                await _until(lambda: mailbox.statistics().senders_waiting >= 3)
                assert mailbox.statistics().queued == 10
                nursery.start_soon(partial(system.migrate, target, to="w1"))  # waits for the turn
                await trio.testing.wait_all_tasks_blocked()
                event.set()
            assert await kind.where(system, target) == "w1"
            assert await count_when_arrived(target, S.handled, 3 * n) == 3 * n  # none lost
            last, errors, *_ = await target.ask(S.report)
            assert errors == []  # each sender's messages in order
            assert last == {"a": n - 1, "b": n - 1, "remote": n - 1}
            assert len(system.dead_letters) == 0


async def test_an_atom_with_a_full_mailbox_comes_home_from_a_worker(kind: Kind) -> None:
    # The reverse: the atom is on w1 with a full mailbox, a sender on w1 and one
    # here wait for room, and it moves back into this process.
    S = kind.Sequencer
    n = 300
    with trio.fail_after(60):
        async with cluster("w1") as system:
            target = await kind.spawn(system, S, mailbox_size=10)
            await system.migrate(target, to="w1")
            payer = await system.spawn(kind.Relay, host="w1")

            async def local() -> None:
                for i in range(n):
                    await target.send(S.seq, "here", i)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(local)
                nursery.start_soon(payer.ask, kind.Relay.flood, target, "remote", n)
                await target.ask(S.handled)  # both are under way
                await system.migrate(target, to="local")
                await system.migrate(target, to="w1")
                await system.migrate(target, to="local")
            assert await kind.where(system, target) == "local"
            assert await count_when_arrived(target, S.handled, 2 * n) == 2 * n
            last, errors, *_ = await target.ask(S.report)
            assert errors == []
            assert last == {"here": n - 1, "remote": n - 1}


async def test_a_migration_that_cannot_start_in_time_is_called_off(kind: Kind) -> None:
    C = kind.Counter
    with trio.fail_after(60):
        async with cluster("w1") as system:
            ref = await kind.spawn(system, C, 0, mailbox_size=5)
            event = trio.Event()
            gate = await system.spawn(Gate, event)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ref.ask, C.wait_on, gate)  # a turn that lasts
                await trio.testing.wait_all_tasks_blocked()
                for _ in range(5):
                    ref.tell(C.incr)
                with pytest.raises(MigrationError, match="current turn had not ended"):
                    await system.migrate(ref, to="w1", timeout=0.2)
                event.set()
            assert await kind.where(system, ref) == "local"
            assert await ref.ask(C.incr) == 6


async def test_a_target_too_slow_to_activate_leaves_the_atom_here_with_its_messages() -> None:
    with trio.fail_after(60):
        async with cluster("w1") as system:
            ref = await system.spawn(SlowToRestore, 1.0)
            for _ in range(5):
                ref.tell(SlowToRestore.incr)
            with pytest.raises(MigrationError, match="could not activate it in time"):
                await system.migrate(ref, to="w1", timeout=0.3)
            assert await ref.ask(SlowToRestore.incr) == 6
            assert cell_of(ref).away is None
            # w1 did not keep a copy: the atom moves there once there is time.
            await system.migrate(ref, to="w1", timeout=None)
            assert await ref.ask(SlowToRestore.incr) == 7


async def test_a_bad_timeout_is_refused() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Gate, trio.Event())
        for bad in (0, -1.0, float("nan")):
            with pytest.raises(ValueError, match="positive number of seconds"):
                await system.migrate(ref, to="w1", timeout=bad)


async def test_two_atoms_crossing_under_full_mailboxes_both_arrive_whole(kind: Kind) -> None:
    # One atom moves here -> w1 while another moves w1 -> here, both with full
    # mailboxes and senders on both sides waiting for room.
    S = kind.Sequencer
    n = 200
    with trio.fail_after(60):
        async with cluster("w1") as system:
            a = await kind.spawn(system, S, mailbox_size=5)
            b = await kind.spawn(system, S, mailbox_size=5)
            await system.migrate(b, to="w1")
            pump_a = await system.spawn(kind.Relay, host="w1")
            pump_b = await system.spawn(kind.Relay, host="w1")

            async def local(target: Any) -> None:
                for i in range(n):
                    await target.send(S.seq, "here", i)

            async with trio.open_nursery() as nursery:
                for target, pump in ((a, pump_a), (b, pump_b)):
                    nursery.start_soon(local, target)
                    nursery.start_soon(pump.ask, kind.Relay.flood, target, "w1", n)
                await a.ask(S.handled)
                await b.ask(S.handled)
                async with trio.open_nursery() as moves:
                    moves.start_soon(partial(system.migrate, a, to="w1"))
                    moves.start_soon(partial(system.migrate, b, to="local"))
            for target, where in ((a, "w1"), (b, "local")):
                assert await kind.where(system, target) == where
                assert await count_when_arrived(target, S.handled, 2 * n) == 2 * n
                last, errors, *_ = await target.ask(S.report)
                assert errors == [] and last == {"here": n - 1, "w1": n - 1}


async def test_a_cancelled_migration_under_way_settles_and_the_system_closes_promptly() -> None:
    # Cancelled once the hand-over has started (the target takes 1 s to unpickle
    # the state): the move completes on its own, nothing is lost, and closing
    # the system afterwards does not wait for the shutdown timeout.
    with trio.fail_after(60):
        async with cluster("w1") as system:
            ref = await system.spawn(SlowToRestore, 1.0, mailbox_size=3)
            cell = cell_of(ref)
            async with trio.open_nursery() as nursery:

                async def move() -> None:
                    with trio.move_on_after(30) as scope:
                        await system.migrate(ref, to="w1")
                    assert not scope.cancelled_caught  # cancelled from outside

                sent = 0

                async def send() -> None:
                    nonlocal sent
                    await ref.send(SlowToRestore.incr)
                    sent += 1

                for _ in range(3):
                    ref.tell(SlowToRestore.incr)
                nursery.start_soon(move)
                await _until(lambda: cell.away is not None)  # under way
                for _ in range(10):
                    nursery.start_soon(send)
                await trio.testing.wait_all_tasks_blocked()
                assert sent == 3  # the transit queue holds a mailbox's worth
                nursery.cancel_scope.cancel()  # the 7 waiting senders send nothing
            # every message that was accepted arrived, none twice
            assert await ref.ask(SlowToRestore.incr, timeout=30) == 3 + sent + 1
            assert len(system.dead_letters) == 0
            closing_started = trio.current_time()
        assert trio.current_time() - closing_started < 4  # shutdown_timeout is 5


async def test_stashed_and_queued_messages_move_in_order_with_senders_waiting() -> None:
    # A full stash and a full mailbox move, with senders here and on w1 waiting
    # for room: every message is handled once, each sender's in order, and the
    # stash is still a stash on the target.
    n = 60
    with trio.fail_after(60):
        async with cluster("w1") as system:
            door = await system.spawn(Doorman, mailbox_size=20)
            pump = await system.spawn(native_kind().Relay, host="w1")
            for i in range(20):  # into the stash (a mailbox's worth)
                door.tell(Doorman.seq, "early", i)
            assert await door.ask(Doorman.report) == []

            async def local() -> None:
                for i in range(n):
                    await door.send(Doorman.seq, "here", i)

            event = trio.Event()
            gate = await system.spawn(Gate, event)
            mailbox = cell_of(door).opened()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(door.ask, Doorman.wait_on, gate)  # a turn that waits
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(local)
                nursery.start_soon(pump.ask, native_kind().Relay.flood, door, "w1", n)
                await _until(lambda: mailbox.statistics().senders_waiting >= 2)
                nursery.start_soon(partial(system.migrate, door, to="w1"))
                await trio.testing.wait_all_tasks_blocked()
                event.set()
            assert await native_kind().where(system, door) == "w1"
            await door.ask(Doorman.open_door)
            seen = await door.ask(Doorman.report)
            by_sender: dict[str, list[int]] = {}
            for sender, i in seen:
                by_sender.setdefault(sender, []).append(i)
            assert by_sender == {
                "early": list(range(20)),
                "here": list(range(n)),
                "w1": list(range(n)),
            }
            assert seen[-20:] == [("early", i) for i in range(20)]  # unstashed last
