"""On-demand atoms (issue #19, second part): ``system.get(cls, key)`` returns a
Ref without spawning; the first message activates the atom with its stored
state; an idle one is collected and the next message activates it again;
nothing sent meanwhile is lost. Collection is timed with trio's MockClock."""

from __future__ import annotations

import gc
import pickle

import pytest
import trio
import trio.testing
from durable_atoms import Keeper, Lingering, MemoryStore, Stateless, Visits

from radon_actors import AtomStopped, SpawnError, open_system
from radon_actors.durable._virtual import FRESH_LIMIT


async def test_get_spawns_nothing_and_the_first_message_activates() -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Visits, "alice")
        assert system.get(Visits, "alice").id == ref.id  # one atom per class and key
        durability = system.durability()
        assert durability.activations.active == {}  # type: ignore[attr-defined]
        ref.tell(Visits.bump)  # waits in the Ref until the activation is up
        assert await ref.ask(Visits.visit) == 2
        first = (await ref.ask(Visits.seen))[1]
        assert await system.get(Visits, "alice").ask(Visits.visit) == 3
        assert (await ref.ask(Visits.seen))[1] == first  # the same activation
        assert await system.get(Visits, "bob").ask(Visits.visit) == 1  # its own state


async def test_an_idle_atom_is_collected_and_comes_back_with_its_saved_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Visits, "k")
        assert await ref.ask(Visits.visit) == 1
        ref.tell(Visits.bump)  # unsaved: lost with the activation
        _, first = await ref.ask(Visits.seen)
        activations = system.durability().activations  # type: ignore[attr-defined]
        await trio.sleep(5)
        assert ref.id in activations.active  # 5 s idle: not yet
        await trio.sleep(10)
        assert ref.id not in activations.active  # collected after 10 s without a message
        count, second = await ref.ask(Visits.seen)  # activates it again
        assert (count, second != first) == (1, True)


async def test_messages_during_a_collection_go_to_the_next_activation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Lingering, "m")
        await ref.ask(Lingering.visit)
        activations = system.durability().activations  # type: ignore[attr-defined]
        ep = activations.active[ref.id]
        old = ep.cell
        # Collected on the sweep at 12.5 s; its on_stop lasts until 13.5 s.
        await trio.sleep(12.6)
        assert ep.closing and not old.stopped.is_set()
        for _ in range(3):
            ref.tell(Lingering.visit)  # while the old activation stops
        assert await ref.ask(Lingering.visit) == 5  # none lost, in order
        assert old.stopped.is_set() and ep.cell is not old
        assert len(system.dead_letters) == 0


async def test_a_daemon_is_never_collected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Keeper, "d")
        _, first = await ref.ask(Keeper.seen)
        system.get(Visits, "other").tell(Visits.bump)  # a collector runs
        await trio.sleep(3600)
        assert (await ref.ask(Keeper.seen))[1] == first


async def test_a_failure_deactivates_and_the_next_message_reactivates() -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Visits, "f")
        assert await ref.ask(Visits.visit) == 1
        _, first = await ref.ask(Visits.seen)
        ref.tell(Visits.bump)
        with pytest.raises(ValueError, match="on-demand failure"):
            await ref.ask(Visits.fail)
        count, second = await ref.ask(Visits.seen)
        assert (count, second != first) == (1, True)  # from the store, a new activation


async def test_an_activation_that_fails_to_start_fails_its_askers() -> None:
    store = MemoryStore()
    await store.write("visits", "bad", "count", "not json", None)
    async with open_system(state_store=store) as system:
        ref = system.get(Visits, "bad")
        with pytest.raises(SpawnError, match="could not be activated"):
            await ref.ask(Visits.visit)


async def test_an_on_demand_atom_needs_no_durable_state(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Stateless, "s")
        assert await ref.ask(Stateless.incr) == 1
        assert await ref.ask(Stateless.incr) == 2
        await trio.sleep(5)
        assert await ref.ask(Stateless.incr) == 1  # collected: its memory went with it


async def test_a_ref_to_an_on_demand_atom_pickles_and_comes_back() -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Visits, "p.with.dots:and%colons")
        await ref.ask(Visits.visit)
        again = pickle.loads(pickle.dumps(ref))
        assert again.id == ref.id
        assert await again.ask(Visits.visit) == 2


async def test_get_refuses_bad_input() -> None:
    async with open_system(state_store=MemoryStore()) as system:
        with pytest.raises(TypeError, match="non-empty str"):
            system.get(Visits, "")
        with pytest.raises(TypeError, match="Atom subclass"):
            system.get(int, "k")  # type: ignore[type-var]


async def test_a_collected_atoms_cell_is_gone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Stateless, "gone")
        await ref.ask(Stateless.incr)
        cell = system.durability().activations.active[ref.id].cell  # type: ignore[attr-defined]
        await trio.sleep(5)
        assert cell.stopped.is_set()
        with pytest.raises(AtomStopped):
            await cell.ref.ask(Stateless.incr)  # the old activation's own Ref is dead


async def test_a_send_during_a_collection_waits_for_the_next_activation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system(state_store=MemoryStore()) as system:
        ref = system.get(Lingering, "s")
        await ref.ask(Lingering.visit)
        ep = system.durability().activations.active[ref.id]  # type: ignore[attr-defined]
        await trio.sleep(12.6)  # collected at 12.5 s; its on_stop lasts until 13.5 s
        assert ep.closing
        with trio.fail_after(60):
            await ref.send(Lingering.visit)  # waits, then goes to the next activation
        assert await ref.ask(Lingering.visit) == 3


async def test_refs_nobody_messages_are_held_weakly_once_there_are_many() -> None:
    # ``get`` holds the endpoints it makes until a message activates them, or
    # until FRESH_LIMIT of them wait: then they are held weakly, so Refs nobody
    # messages cost nothing once dropped, and one still held keeps its atom.
    async with open_system(state_store=MemoryStore()) as system:
        activations = system.durability().activations  # type: ignore[attr-defined]
        kept = system.get(Stateless, "k0")
        for i in range(1, FRESH_LIMIT + 10):
            system.get(Stateless, f"k{i}")
        assert len(activations.fresh) <= FRESH_LIMIT
        gc.collect()
        assert set(activations.endpoints) == {kept.id}  # the others had no Ref left
        again = system.get(Stateless, "k0")
        assert again._ep is kept._ep  # the same atom
        assert await again.ask(Stateless.incr) == 1
        assert kept.id in activations.active and kept.id not in activations.endpoints
        assert await kept.ask(Stateless.incr) == 2  # the same activation
