"""The system: spawn, names, lifecycle hooks, children, shutdown order, errors."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from runtime_atoms import Counter, Recorder

from radon_actors import (
    Atom,
    AtomStopped,
    NameTaken,
    NoSuchAtom,
    NotSpawned,
    Ref,
    SpawnError,
    System,
    handler,
    open_system,
)


class Lifecycle(Atom):
    """Reports on_start / on_stop to a shared journal; can spawn children."""

    def __init__(self, label: str, journal: list[str]) -> None:
        self.label = label
        self.journal = journal

    async def on_start(self) -> None:
        await trio.lowlevel.checkpoint()
        self.journal.append(f"start {self.label}")

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.label}")

    @handler
    async def child(self, label: str) -> Ref[Lifecycle]:
        return await self.spawn(Lifecycle, label, self.journal)

    @handler
    def quit(self) -> None:
        self.stop()


async def test_spawn_runs_on_start_before_returning(system: System) -> None:
    journal: list[str] = []
    await system.spawn(Lifecycle, "a", journal)
    assert journal == ["start a"]


async def test_leaving_the_block_stops_children_before_parents() -> None:
    journal: list[str] = []
    async with open_system() as system:
        root1 = await system.spawn(Lifecycle, "r1", journal)
        c1 = await root1.ask(Lifecycle.child, "r1.c1")
        await c1.ask(Lifecycle.child, "r1.c1.g")
        await root1.ask(Lifecycle.child, "r1.c2")
        await system.spawn(Lifecycle, "r2", journal)
        journal.clear()
    assert journal == ["stop r2", "stop r1.c2", "stop r1.c1.g", "stop r1.c1", "stop r1"]


async def test_error_escaping_the_block_is_not_swallowed_and_atoms_stop() -> None:
    journal: list[str] = []

    class Oops(Exception):
        pass

    with pytest.raises(Oops):
        async with open_system() as system:
            await system.spawn(Lifecycle, "x", journal)
            raise Oops
    assert journal == ["start x", "stop x"]


async def test_self_stop_runs_on_stop_and_frees_the_name(system: System) -> None:
    journal: list[str] = []
    a = await system.spawn(Lifecycle, "a", journal, name="a")
    await a.ask(Lifecycle.quit)
    await system.stop(a)  # waits; stopping twice is harmless
    assert journal == ["start a", "stop a"]
    with pytest.raises(NoSuchAtom):
        system.lookup("a")
    again = await system.spawn(Lifecycle, "a2", journal, name="a")
    assert system.lookup("a") == again


async def test_stopping_a_parent_stops_its_children(system: System) -> None:
    journal: list[str] = []
    p = await system.spawn(Lifecycle, "p", journal)
    c = await p.ask(Lifecycle.child, "c")
    await system.stop(p)
    assert journal[-2:] == ["stop c", "stop p"]
    with pytest.raises(Exception, match="not running"):
        await c.ask(Lifecycle.quit)


async def test_names_are_unique_and_lookup_fails_clearly(system: System) -> None:
    await system.spawn(Counter, name="only")
    with pytest.raises(NameTaken, match="'only'"):
        await system.spawn(Counter, name="only")
    with pytest.raises(NoSuchAtom, match="'missing'"):
        system.lookup("missing")


async def test_constructor_and_on_start_failures_raise_spawn_error(system: System) -> None:
    class BadInit(Atom):
        def __init__(self) -> None:
            raise RuntimeError("no")

    class BadStart(Atom):
        async def on_start(self) -> None:
            raise RuntimeError("nope")

    with pytest.raises(SpawnError, match="failed to start") as info:
        await system.spawn(BadInit, name="bad")
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(SpawnError):
        await system.spawn(BadStart)
    with pytest.raises(SpawnError):  # wrong constructor arguments
        await system.spawn(Counter, 1, 2, 3)  # type: ignore[call-overload]
    await system.spawn(Counter, name="bad")  # the failed spawn freed its name


async def test_spawn_rejects_non_atoms(system: System) -> None:
    with pytest.raises(TypeError, match="Atom subclass"):
        await system.spawn(dict)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="non-empty str"):
        await system.spawn(Counter, name="")


async def test_atom_built_directly_explains_itself() -> None:
    c = Counter()
    with pytest.raises(NotSpawned, match=r"system.spawn"):
        c.ref  # noqa: B018
    with pytest.raises(NotSpawned):
        c.stop()


async def test_handler_failure_restarts_with_fresh_state_and_keeps_ref(system: System) -> None:
    journal: list[str] = []

    class Fragile(Lifecycle):
        def __init__(self, label: str, journal: list[str]) -> None:
            super().__init__(label, journal)
            self.n = 0

        @handler
        def bump(self) -> int:
            self.n += 1
            return self.n

        @handler
        def crash(self) -> None:
            raise ValueError("crash")

    f = await system.spawn(Fragile, "f", journal)
    assert await f.ask(Fragile.bump) == 1
    with pytest.raises(ValueError, match="crash"):
        await f.ask(Fragile.crash)
    # The same Ref reaches the fresh incarnation (default directive: restart).
    assert await f.ask(Fragile.bump) == 1
    assert journal == ["start f", "stop f", "start f"]


async def test_messages_queued_behind_a_crash_survive_the_restart(system: System) -> None:
    class Crashy(Recorder):
        @handler
        async def crash(self) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError("crash")

    r = await system.spawn(Crashy)
    r.tell(Crashy.crash)
    for i in range(3):
        r.tell(Recorder.add, i)
    assert await r.ask(Recorder.all) == [0, 1, 2]


async def test_mailbox_size_from_class_attribute(system: System) -> None:
    class Small(Counter):
        mailbox_size = 3

    s = await system.spawn(Small)
    assert system.mailbox_statistics(s).capacity == 3
    t = await system.spawn(Small, mailbox_size=5)
    assert system.mailbox_statistics(t).capacity == 5


async def test_atoms_can_spawn_children_from_handlers(system: System) -> None:
    class Parent(Atom):
        @handler
        async def make(self, start: int) -> Ref[Counter]:
            return await self.spawn(Counter, start, name=f"child-{start}")

    p = await system.spawn(Parent)
    child: Any = await p.ask(Parent.make, 5)
    assert await child.ask(Counter.incr) == 6
    assert system.lookup("child-5") == child


async def test_asker_outside_the_system_gets_atom_stopped_when_a_turn_is_cancelled() -> None:
    class Stuck(Atom):
        @handler
        async def forever(self) -> None:
            await trio.sleep_forever()

    errors: list[BaseException] = []
    async with trio.open_nursery() as outside, open_system(shutdown_timeout=0) as system:
        s = await system.spawn(Stuck)

        async def ask_from_outside() -> None:
            try:
                await s.ask(Stuck.forever)
            except AtomStopped as exc:
                errors.append(exc)

        outside.start_soon(ask_from_outside)
        await trio.testing.wait_all_tasks_blocked()
        # The system closed with the turn stuck: shutdown timed out, the atom was
        # cancelled, and the asker (not in the system's nursery) was told.
    assert len(errors) == 1
    assert "cancelled mid-turn" in str(errors[0])
