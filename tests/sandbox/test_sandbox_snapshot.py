"""Snapshot and restore of sandboxed atoms (what placement uses to move an atom)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from sandbox_atoms import Boom, Counter, Keeper, Point, Relay

from radon_actors import Atom, AtomStopped, SandboxConfig, SandboxError, handler, open_system
from radon_actors.sandbox._spawn import snapshot, spawn_restored
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")


async def test_snapshot_and_restore_carry_the_state() -> None:
    async with open_system() as system:
        original = await system.spawn(Counter, 5, sandbox=True)
        await original.ask(Counter.incr, 2)
        state = await snapshot(original)
        assert isinstance(state, str)
        restored = await spawn_restored(system, Counter, state, name="copy")
        assert restored != original
        assert await restored.ask(Counter.get) == 7
        assert await restored.ask(Counter.incr) == 8
        assert await original.ask(Counter.get) == 7
        # The restored atom's own ref is its new identity.
        assert await restored.ask(Counter.me) == restored
        # A crash restarts it from the snapshot (it has no spawn arguments).
        with pytest.raises(Boom, match="boom"):
            await restored.ask(Counter.fail, "boom")
        assert await restored.ask(Counter.get) == 7


async def test_state_with_refs_and_objects_survives() -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter, sandbox=True)
        relay = await system.spawn(Relay, sandbox=True)
        assert await relay.ask(Relay.forward, counter, 1) == 3
        restored = await spawn_restored(system, Relay, await snapshot(relay))
        assert await restored.ask(Relay.history) == [2]
        assert await restored.ask(Relay.forward, counter, 1) == 7
        echo = await system.spawn(Counter, sandbox=True)
        assert await echo.ask(Counter.move, Point(0, 0), 1) == Point(1, 0)


async def test_refs_inside_state_with_no_portable_form_survive() -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter)
        keeper = await system.spawn(Keeper, counter, sandbox=True)
        assert await keeper.ask(Keeper.poke) == [1, 11, "1/3", Point(1, 2)]
        state = await snapshot(keeper)
        # Host form: the Ref as its id, never as the old instance's handle; the
        # deque and the Fraction as the guest's own opaque pickle.
        assert f'[null,"{counter.id}",null]' in state and '"$opaque"' in state
        restored = await spawn_restored(system, Keeper, state)
        assert await restored.ask(Keeper.poke) == [12, 22, "1/3", Point(1, 2)]


class Gate(Atom):
    """A native atom whose ``incr`` answers only once the gate opens."""

    def __init__(self, gate: trio.Event) -> None:
        self.gate = gate

    @handler
    async def incr(self, by: int = 1) -> int:
        await self.gate.wait()
        return by


async def test_no_snapshot_of_native_or_stopped_atoms() -> None:
    async with open_system() as system:
        native = await system.spawn(Counter)
        with pytest.raises(SandboxError, match="not sandboxed"):
            await snapshot(native)
        relay = await system.spawn(Relay, sandbox=True)
        assert isinstance(await snapshot(relay), str)
        await system.stop(relay)
        with pytest.raises(AtomStopped):
            await snapshot(relay)


@pytest.mark.parametrize("config", [True, SandboxConfig(threaded=True)], ids=["inline", "threaded"])
async def test_snapshot_mid_turn_waits_for_the_turn_boundary(config: object) -> None:
    async with open_system() as system:
        gate = trio.Event()
        target = await system.spawn(Gate, gate)
        relay = await system.spawn(Relay, sandbox=config)
        states: list[str] = []
        answers: list[int] = []

        async def take() -> None:
            states.append(await snapshot(relay))

        async def forward() -> None:
            answers.append(await relay.ask(Relay.forward, target, 1))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(forward)
            await trio.testing.wait_all_tasks_blocked()
            # The relay's turn is suspended in the guest, waiting for its ask.
            nursery.start_soon(take)
            await trio.testing.wait_all_tasks_blocked()
            assert states == []  # waiting for the turn to end
            gate.set()
        assert answers == [2]
        # Taken after the turn: its effect (seen == [1]) is in the snapshot.
        restored = await spawn_restored(system, Relay, states[0])
        assert await restored.ask(Relay.history) == [1]


async def test_a_cancelled_snapshot_is_withdrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    from radon_actors.sandbox._instance import GuestAtom

    calls: list[object] = []
    original = GuestAtom.snapshot

    async def counting(self: GuestAtom) -> str:
        calls.append(self)
        return await original(self)

    monkeypatch.setattr(GuestAtom, "snapshot", counting)
    async with open_system() as system:
        gate = trio.Event()
        target = await system.spawn(Gate, gate)
        relay = await system.spawn(Relay, sandbox=True)
        cell = cell_of(relay)
        assert cell is not None
        callbacks = list(cell.on_stopped or ())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.ask, Relay.forward, target, 1)
            await trio.testing.wait_all_tasks_blocked()
            with trio.CancelScope() as scope:

                async def cancel_once_waiting() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    scope.cancel()

                nursery.start_soon(cancel_once_waiting)
                await snapshot(relay)
            assert scope.cancelled_caught
            gate.set()
        # The atom went on (its turn ended, the withdrawn request did nothing).
        assert await relay.ask(Relay.history) == [1]
        assert calls == []
        assert list(cell.on_stopped or ()) == callbacks  # nothing left behind


async def test_snapshot_of_an_atom_stopping_after_its_turn_raises_atom_stopped() -> None:
    async with open_system() as system:
        gate = trio.Event()
        target = await system.spawn(Gate, gate)
        relay = await system.spawn(Relay, sandbox=True)
        errors: list[BaseException] = []

        async def take() -> None:
            try:
                await snapshot(relay)
            except AtomStopped as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.ask, Relay.forward, target, 1)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(system.stop, relay)  # requested first: handled first
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(take)
            await trio.testing.wait_all_tasks_blocked()
            assert errors == []
            gate.set()
        assert len(errors) == 1
        assert "stopped before its turn ended" in str(errors[0])


async def test_snapshots_of_a_threaded_atom_never_overlap_its_turns() -> None:
    # Turns and snapshots both run the guest on worker threads; the guest's store
    # must only ever be entered by one of them at a time.
    async with open_system() as system:
        counter = await system.spawn(Counter, sandbox=SandboxConfig(threaded=True))
        taken: list[int] = []

        async def hammer() -> None:
            for _ in range(30):
                await counter.ask(Counter.incr)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hammer)
            nursery.start_soon(hammer)
            for _ in range(30):
                state = await snapshot(counter)  # mid-turn: waits for the boundary
                restored = await spawn_restored(system, Counter, state)
                taken.append(await restored.ask(Counter.get))
                await system.stop(restored)
        assert await counter.ask(Counter.get) == 60
        # The first snapshot starts while the atom is idle, and the hammers' first
        # turns arrive while it runs on its thread: the overlap this guards against.
        assert len(taken) == 30
        assert taken == sorted(taken)
        assert all(0 <= value <= 60 for value in taken)
