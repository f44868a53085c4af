"""Snapshot and restore of sandboxed atoms (what placement uses to move an atom)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from sandbox_atoms import Boom, Counter, Point, Relay
from sandbox_fixtures import sandbox_component

from radon_actors import Atom, AtomStopped, SandboxError, handler, open_system
from radon_actors.sandbox._spawn import snapshot, spawn_restored

pytestmark = pytest.mark.usefixtures("sandbox_component")
__all__ = ["sandbox_component"]


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


class Gate(Atom):
    """A native atom whose ``incr`` answers only once the gate opens."""

    def __init__(self, gate: trio.Event) -> None:
        self.gate = gate

    @handler
    async def incr(self, by: int = 1) -> int:
        await self.gate.wait()
        return by


async def test_no_snapshot_mid_turn_or_of_native_or_stopped_atoms() -> None:
    async with open_system() as system:
        native = await system.spawn(Counter)
        with pytest.raises(SandboxError, match="not sandboxed"):
            await snapshot(native)
        gate = trio.Event()
        target = await system.spawn(Gate, gate)
        relay = await system.spawn(Relay, sandbox=True)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(relay.ask, Relay.forward, target, 1)
            await trio.testing.wait_all_tasks_blocked()
            # The relay's turn is suspended in the guest, waiting for its ask.
            with pytest.raises(SandboxError, match="middle of a turn"):
                await snapshot(relay)
            gate.set()
        assert await relay.ask(Relay.history) == [1]
        assert isinstance(await snapshot(relay), str)
        await system.stop(relay)
        with pytest.raises(AtomStopped):
            await snapshot(relay)
