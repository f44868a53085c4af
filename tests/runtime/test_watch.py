"""Death watch: ``self.watch(ref, handler)`` and the ``Down`` notices."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from supervisor_atoms import Boom, Worker

from radon_actors import (
    Atom,
    AtomStopped,
    BadArguments,
    ChildSpec,
    Directive,
    Down,
    HandlerNotFound,
    Ref,
    Supervisor,
    handler,
    open_system,
)


class Watcher(Atom):
    def __init__(self) -> None:
        self.downs: list[Down] = []

    @handler
    def watch_it(self, ref: Ref[Any]) -> None:
        self.watch(ref, Watcher.on_down)

    @handler
    def watch_with(self, ref: Ref[Any], h: str) -> None:
        self.watch(ref, h)

    @handler
    def unwatch_it(self, ref: Ref[Any]) -> None:
        self.unwatch(ref)

    @handler
    def on_down(self, down: Down) -> None:
        self.downs.append(down)

    @handler
    def no_args(self) -> None:
        pass

    @handler
    def seen(self) -> list[Down]:
        return list(self.downs)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


async def test_watch_normal_stop_delivers_down_with_no_reason() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await w.ask(Watcher.watch_it, target)
        await system.stop(target)
        await settle()
        assert await w.ask(Watcher.seen) == [Down(target, None, stopped=True)]


async def test_watch_crash_then_restart_delivers_the_reason_and_the_watch_goes_on() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await w.ask(Watcher.watch_it, target)
        error = Boom("x")
        with pytest.raises(Boom):
            await target.ask(Worker.fail, error)
        await settle()
        await target.ask(Worker.quit)
        await settle()
        downs = await w.ask(Watcher.seen)
        assert [(d.ref, d.reason, d.stopped) for d in downs] == [
            (target, error, False),  # crashed, restarted by the root: same Ref
            (target, None, True),  # then stopped normally
        ]


async def test_watch_crash_that_stops_the_atom_delivers_one_final_down_with_the_reason() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        await system.spawn(
            Supervisor, [ChildSpec(Worker, name="t", directives={Boom: Directive.STOP})]
        )
        target = system.lookup("t")
        await w.ask(Watcher.watch_it, target)
        error = Boom("fatal")
        with pytest.raises(Boom):
            await target.ask(Worker.fail, error)
        await settle()
        assert await w.ask(Watcher.seen) == [Down(target, error, stopped=True)]


async def test_watching_a_dead_atom_notifies_at_once() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await system.stop(target)
        await w.ask(Watcher.watch_it, target)
        await settle()
        (down,) = await w.ask(Watcher.seen)
        assert down.ref == target
        assert down.stopped
        assert isinstance(down.reason, AtomStopped)


async def test_watch_twice_is_watching_once() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await w.ask(Watcher.watch_it, target)
        await w.ask(Watcher.watch_it, target)
        await system.stop(target)
        await settle()
        assert len(await w.ask(Watcher.seen)) == 1


async def test_unwatch_stops_the_notices() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await w.ask(Watcher.watch_it, target)
        await w.ask(Watcher.unwatch_it, target)
        await system.stop(target)
        await settle()
        assert await w.ask(Watcher.seen) == []


async def test_watch_handler_is_checked_when_watching() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        with pytest.raises(HandlerNotFound):
            await w.ask(Watcher.watch_with, target, "nope")
        with pytest.raises(BadArguments):
            await w.ask(Watcher.watch_with, target, "no_args")


async def test_watch_notice_to_a_stopped_watcher_is_dropped() -> None:
    async with open_system() as system:
        w = await system.spawn(Watcher)
        target = await system.spawn(Worker)
        await w.ask(Watcher.watch_it, target)
        await system.stop(w)
        await system.stop(target)
        await settle()
        assert len(system.dead_letters) == 0


async def test_watch_many_watchers_each_get_the_notice() -> None:
    async with open_system() as system:
        watchers = [await system.spawn(Watcher) for _ in range(3)]
        target = await system.spawn(Worker)
        for w in watchers:
            await w.ask(Watcher.watch_it, target)
        await system.stop(target)
        await settle()
        for w in watchers:
            assert await w.ask(Watcher.seen) == [Down(target, None, stopped=True)]
