"""ask / tell / send: results, errors, timeouts, stopped atoms, dead letters, Refs."""

from __future__ import annotations

import pickle
import traceback

import cloudpickle
import pytest
import trio
import trio.testing
from runtime_atoms import Counter, Forwarder, Gate, Recorder

from radon_actors import (
    AskTimeout,
    Atom,
    AtomStopped,
    BadArguments,
    DeadlockError,
    HandlerNotFound,
    RadonError,
    System,
    handler,
)


async def test_ask_by_name_and_by_function(system: System) -> None:
    c = await system.spawn(Counter, 10, name="counter")
    assert await c.ask("incr", 5) == 15
    assert await c.ask(Counter.incr, 5) == 20
    assert await c.ask(Counter.incr, by=2) == 22
    assert await c.ask(Counter.get) == 22


async def test_tell_is_fire_and_forget_and_runs_in_order(system: System) -> None:
    c = await system.spawn(Counter)
    for _ in range(100):
        c.tell("incr")
    c.tell(Counter.incr, 1000)
    assert await c.ask("get") == 1100


async def test_send_waits_for_room_and_delivers(system: System) -> None:
    c = await system.spawn(Counter, mailbox_size=2)
    for _ in range(50):
        await c.send(Counter.incr)
    assert await c.ask(Counter.get) == 50


async def test_unknown_handler_is_an_error_at_the_caller(system: System) -> None:
    c = await system.spawn(Counter, 1)
    with pytest.raises(HandlerNotFound, match=r"no handler 'nope'.*handlers: fail, get, incr"):
        await c.ask("nope")
    with pytest.raises(HandlerNotFound, match="not marked @handler"):
        await c.ask("not_a_handler")
    with pytest.raises(HandlerNotFound):
        c.tell(Counter.not_a_handler)
    with pytest.raises(HandlerNotFound):
        await c.ask("__init__")
    # The atom did not crash and kept its state.
    assert await c.ask("get") == 1


async def test_wrong_arguments_are_an_error_at_the_caller(system: System) -> None:
    c = await system.spawn(Counter, 1)
    with pytest.raises(BadArguments, match=r"incr\(\).*positional.*signature: incr\(by: int = 1\)"):
        await c.ask("incr", 1, 2)
    with pytest.raises(BadArguments, match="unexpected keyword argument 'bogus'"):
        c.tell("incr", bogus=3)
    with pytest.raises(TypeError):  # BadArguments is a TypeError too
        await c.ask(Counter.fail)
    assert await c.ask("get") == 1


async def test_handler_exception_reaches_asker_with_atom_traceback(system: System) -> None:
    c = await system.spawn(Counter)
    with pytest.raises(ValueError, match="boom") as info:
        await c.ask(Counter.fail, "boom")
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "fail" in frames  # the atom-side frame is part of the traceback
    assert any("Counter.fail" in note for note in info.value.__notes__)


async def test_exception_from_async_handler_reaches_asker(system: System) -> None:
    class Boom(Atom):
        @handler
        async def go(self) -> None:
            await trio.lowlevel.checkpoint()
            raise KeyError("async boom")

    b = await system.spawn(Boom)
    with pytest.raises(KeyError, match="async boom") as info:
        await b.ask("go")
    assert "go" in [f.name for f in traceback.extract_tb(info.value.__traceback__)]


async def test_ask_on_stopped_atom_raises_at_once(system: System) -> None:
    c = await system.spawn(Counter)
    await system.stop(c)
    with trio.testing.assert_no_checkpoints():
        coro = c.ask("incr")
    with pytest.raises(AtomStopped, match="not running"):
        await coro
    with pytest.raises(AtomStopped):
        await c.ask("get")


async def test_queued_asks_fail_when_atom_stops(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    results: list[BaseException] = []

    async def asker(tag: int) -> None:
        try:
            await g.ask(Gate.record, tag)
        except AtomStopped as exc:
            results.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "blocker")
        await entered.wait()
        for i in range(3):
            nursery.start_soon(asker, i)
        await trio.testing.wait_all_tasks_blocked()
        stopping = trio.Event()

        async def stop() -> None:
            await system.stop(g)
            stopping.set()

        nursery.start_soon(stop)
        await trio.testing.wait_all_tasks_blocked()
        # Stop waits for the running turn; release it.
        opened.set()
    assert len(results) == 3


async def test_timeout_raises_and_late_reply_is_dropped(system: System) -> None:
    opened = trio.Event()
    g = await system.spawn(Gate, opened)
    with pytest.raises(AskTimeout, match=r"within 0.01 s"):
        await g.ask("wait_open", "late", timeout=0.01)
    # The turn is still running; let it finish: the late reply goes nowhere.
    assert isinstance(AskTimeout("x"), TimeoutError)
    opened.set()
    assert await g.ask(Gate.events) == [("start", "late"), ("end", "late")]


async def test_timeout_with_autojump_clock(autojump_clock: trio.testing.MockClock) -> None:
    from radon_actors import open_system

    async with open_system() as system:
        g = await system.spawn(Gate, trio.Event())
        with pytest.raises(AskTimeout):
            await g.ask("wait_open", 1, timeout=30)
        assert trio.current_time() >= 30


async def test_self_ask_is_a_deadlock_error(system: System) -> None:
    class Selfish(Atom):
        @handler
        async def outer(self) -> int:
            result: int = await self.ref.ask("inner")
            return result

        @handler
        def inner(self) -> int:
            return 1

    s = await system.spawn(Selfish)
    with pytest.raises(DeadlockError):
        await s.ask("outer")


async def test_refs_are_hashable_comparable_and_picklable(system: System) -> None:
    c = await system.spawn(Counter, 3, name="c")
    d = await system.spawn(Counter)
    assert c == system.lookup("c")
    assert c != d
    assert len({c, system.lookup("c"), d}) == 2
    for expected, dumps in ((4, pickle.dumps), (5, cloudpickle.dumps)):
        copy = pickle.loads(dumps(c))
        assert copy == c and hash(copy) == hash(c)
        assert await copy.ask(Counter.incr) == expected
    assert c.name == "c" and isinstance(c.id, str)
    assert "'c'" in repr(c)


async def test_refs_work_inside_messages(system: System) -> None:
    c = await system.spawn(Counter)
    f = await system.spawn(Forwarder)
    assert await f.ask(Forwarder.relay, c, 7) == 7
    # A Ref that went through pickle inside a message works too.
    assert await f.ask(Forwarder.relay, pickle.loads(pickle.dumps(c)), 1) == 8


async def test_unpickled_ref_of_stopped_atom_is_a_dead_end(system: System) -> None:
    c = await system.spawn(Counter)
    data = pickle.dumps(c)
    await system.stop(c)
    ghost = pickle.loads(data)
    with pytest.raises(AtomStopped):
        await ghost.ask("get")
    before = len(system.dead_letters)
    ghost.tell("incr", 5)  # a dead letter of the atom's system, not an error
    await ghost.send(Counter.incr, 6)
    assert len(system.dead_letters) == before + 2
    letters = system.dead_letters.recent()[-2:]
    assert [(d.atom_id, d.handler, d.args) for d in letters] == [
        (c.id, "incr", (5,)),
        (c.id, "incr", (6,)),
    ]


async def test_tell_to_stopped_atom_goes_to_dead_letters(system: System) -> None:
    r = await system.spawn(Recorder, name="rec")
    await system.stop(r)
    before = len(system.dead_letters)
    r.tell(Recorder.add, "lost")
    await r.send("add", "lost too")
    assert len(system.dead_letters) == before + 2
    letter = system.dead_letters.recent()[-1]
    assert (letter.atom_name, letter.handler, letter.args) == ("rec", "add", ("lost too",))
    assert letter.reason == "atom stopped"


async def test_queued_tells_become_dead_letters_when_atom_stops(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "x")
        await entered.wait()
        for i in range(5):
            g.tell(Gate.record, i)
        nursery.start_soon(system.stop, g)
        await trio.testing.wait_all_tasks_blocked()
        opened.set()
    assert [d.args for d in system.dead_letters.recent()] == [(i,) for i in range(5)]


async def test_errors_share_a_base_class() -> None:
    for exc in (AskTimeout, AtomStopped, BadArguments, HandlerNotFound, DeadlockError):
        assert issubclass(exc, RadonError)
