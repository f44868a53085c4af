"""``ref.ask_nowait``: the answer now, in the caller's task, or ``WouldBlock``
with nothing delivered."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from runtime_atoms import Counter, Gate

from radon_actors import (
    Atom,
    AtomStopped,
    BadArguments,
    HandlerNotFound,
    System,
    WouldBlock,
    handler,
)


class Stasher(Atom):
    """Stashes ``put`` until ``open``; records what it takes."""

    def __init__(self) -> None:
        self.ready = False
        self.items: list[int] = []

    @handler
    def put(self, item: int) -> int:
        if not self.ready:
            self.stash()
            return -1
        self.items.append(item)
        return len(self.items)

    @handler
    def open(self) -> None:
        self.ready = True
        self.unstash_all()

    @handler
    def all(self) -> list[int]:
        return list(self.items)


async def test_an_idle_local_atom_answers_now(system: System) -> None:
    c = await system.spawn(Counter, 10)
    assert c.ask_nowait(Counter.incr, 5) == 15  # async def with no await: cannot suspend
    assert c.ask_nowait(Counter.get) == 15
    assert c.ask_nowait("incr", by=2) == 17
    assert await c.ask(Counter.get) == 17


async def test_it_has_no_scheduling_point(system: System) -> None:
    c = await system.spawn(Counter)
    with trio.CancelScope() as scope:  # noqa: ASYNC100  # no await inside: the point
        scope.cancel()
        # An ask would raise Cancelled here; ask_nowait never checkpoints.
        for _ in range(1000):
            c.ask_nowait(Counter.incr)
    assert await c.ask(Counter.get) == 1000


async def test_a_busy_atom_would_block_and_gets_nothing(system: System) -> None:
    opened = trio.Event()
    g = await system.spawn(Gate, opened)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "w")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(WouldBlock, match="busy"):
            g.ask_nowait(Gate.record, "now")
        opened.set()
    assert await g.ask(Gate.events) == [("start", "w"), ("end", "w")]


async def test_queued_messages_go_first_so_it_would_block(system: System) -> None:
    opened = trio.Event()
    g = await system.spawn(Gate, opened)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "w")
        await trio.testing.wait_all_tasks_blocked()
        g.tell(Gate.record, "queued")
        opened.set()
        # "queued" waits for the turn to end: an answer now would overtake it.
        with pytest.raises(WouldBlock, match="queued"):
            g.ask_nowait(Gate.record, "now")
    assert await g.ask(Gate.events) == [("start", "w"), ("end", "w"), "queued"]
    assert g.ask_nowait(Gate.record, "now") == "now"


async def test_a_handler_that_may_suspend_would_block_and_does_not_run(system: System) -> None:
    g = await system.spawn(Gate, trio.Event())
    with pytest.raises(WouldBlock, match="may suspend"):
        g.ask_nowait(Gate.wait_open, "w")
    assert await g.ask(Gate.events) == []


async def test_the_handlers_exception_is_raised_and_the_atom_carries_on(system: System) -> None:
    c = await system.spawn(Counter, 3)
    with pytest.raises(ValueError, match="boom"):
        c.ask_nowait(Counter.fail, "boom")
    # The crash reached the supervisor, which restarted the atom from its arguments.
    assert await c.ask(Counter.get) == 3
    assert c.ask_nowait(Counter.incr) == 4


async def test_bad_messages_and_stopped_atoms_raise_as_ask_does(system: System) -> None:
    c = await system.spawn(Counter)
    with pytest.raises(HandlerNotFound):
        c.ask_nowait("nope")
    with pytest.raises(BadArguments):
        c.ask_nowait(Counter.incr, 1, 2, 3)
    await system.stop(c)
    with pytest.raises(AtomStopped):
        c.ask_nowait(Counter.get)


async def test_a_stashed_message_is_declined_not_kept(system: System) -> None:
    s = await system.spawn(Stasher)
    with pytest.raises(WouldBlock, match="stashed"):
        s.ask_nowait(Stasher.put, 1)
    await s.ask(Stasher.open)
    # Nothing was kept in the stash: the unstash delivered no 1.
    assert await s.ask(Stasher.all) == []
    assert s.ask_nowait(Stasher.put, 2) == 1
    assert await s.ask(Stasher.all) == [2]
