"""Turn semantics: one message at a time, per-sender FIFO, cancellation safety."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_atoms import Gate

from radon_actors import Atom, System, handler, open_system


async def test_an_awaiting_handler_does_not_let_the_next_message_in(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    done: list[str] = []

    async def ask_record() -> None:
        await g.ask(Gate.record, "second")  # a plain def: would run inline if idle
        done.append("second")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "first")
        await entered.wait()
        nursery.start_soon(ask_record)
        await trio.testing.wait_all_tasks_blocked()
        g.tell(Gate.record, "third")
        await trio.testing.wait_all_tasks_blocked()
        assert done == []  # queued behind the running turn
        opened.set()
    assert await g.ask(Gate.events) == [("start", "first"), ("end", "first"), "second", "third"]


class Seq(Atom):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    @handler
    def put(self, sender: int, i: int) -> None:
        self.seen.append((sender, i))

    @handler
    async def aput(self, sender: int, i: int) -> None:
        self.seen.append((sender, i))
        await trio.lowlevel.checkpoint()

    @handler
    async def nput(self, sender: int, i: int) -> None:  # async, but never suspends
        self.seen.append((sender, i))

    @handler
    def dump(self) -> list[tuple[int, int]]:
        return self.seen


_OPS = st.lists(
    st.sampled_from(["tell", "atell", "ask", "aask", "nask", "send"]), min_size=1, max_size=40
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_OPS, min_size=1, max_size=4))
def test_per_sender_fifo_holds_across_all_delivery_paths(plans: list[list[str]]) -> None:
    """Mixes inline asks, queued asks, tells and sends from several senders."""

    async def main() -> None:
        async with open_system(mailbox_size=8) as system:
            seq = await system.spawn(Seq)

            async def sender(who: int, plan: list[str]) -> None:
                for i, op in enumerate(plan):
                    if op == "tell":
                        while True:  # tell never waits: retry with a yield when full
                            try:
                                seq.tell(Seq.put, who, i)
                                break
                            except Exception:
                                await trio.lowlevel.checkpoint()
                    elif op == "atell":
                        await seq.send(Seq.aput, who, i)
                    elif op == "send":
                        await seq.send(Seq.put, who, i)
                    elif op == "ask":
                        await seq.ask(Seq.put, who, i)
                    elif op == "nask":
                        await seq.ask(Seq.nput, who, i)
                    else:
                        await seq.ask(Seq.aput, who, i)

            async with trio.open_nursery() as nursery:
                for who, plan in enumerate(plans):
                    nursery.start_soon(sender, who, plan)
            seen = await seq.ask(Seq.dump)
            for who, plan in enumerate(plans):
                assert [i for s, i in seen if s == who] == list(range(len(plan)))

    trio.run(main)


class WhereAmI(Atom):
    @handler
    def plain(self) -> object:
        return trio.lowlevel.current_task()

    @handler
    async def no_await(self) -> object:
        return trio.lowlevel.current_task()

    @handler
    async def awaits(self) -> object:
        await trio.lowlevel.checkpoint()
        return trio.lowlevel.current_task()


async def test_idle_atom_runs_non_suspending_handlers_inline(system: System) -> None:
    w = await system.spawn(WhereAmI)
    me = trio.lowlevel.current_task()
    assert await w.ask(WhereAmI.plain) is me
    assert await w.ask(WhereAmI.no_await) is me
    assert await w.ask(WhereAmI.awaits) is not me  # a queued turn on the atom's task


async def test_cancelled_caller_withdraws_a_queued_message(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "first")
        await entered.wait()
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when_blocked, scope)
            await g.ask(Gate.record, "withdrawn")
        assert scope.cancelled_caught
        opened.set()
    assert await g.ask(Gate.events) == [("start", "first"), ("end", "first")]


async def test_cancelled_caller_does_not_interrupt_a_running_turn(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered)
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_after, entered, scope)
            await g.ask(Gate.wait_open, "cancelled caller")
    assert scope.cancelled_caught
    # The turn is still running, unharmed; it finishes once released.
    opened.set()
    assert await g.ask(Gate.record, "next") == "next"
    assert await g.ask(Gate.events) == [
        ("start", "cancelled caller"),
        ("end", "cancelled caller"),
        "next",
    ]


async def test_already_cancelled_caller_does_not_run_inline_handler(system: System) -> None:
    g = await system.spawn(Gate, trio.Event())
    with trio.CancelScope() as scope:
        scope.cancel()
        await g.ask(Gate.record, "never")
    assert scope.cancelled_caught
    assert await g.ask(Gate.events) == []


async def test_cancelled_send_waiting_for_room_is_not_delivered(system: System) -> None:
    opened, entered = trio.Event(), trio.Event()
    g = await system.spawn(Gate, opened, entered, mailbox_size=1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(g.ask, Gate.wait_open, "busy")
        await entered.wait()
        g.tell(Gate.record, "fits")
        with trio.CancelScope() as scope:
            nursery.start_soon(_cancel_when_blocked, scope)
            await g.send(Gate.record, "never sent")
        assert scope.cancelled_caught
        opened.set()
    assert await g.ask(Gate.events) == [("start", "busy"), ("end", "busy"), "fits"]


async def test_inline_turns_yield_to_other_tasks() -> None:
    """A loop of inline asks still gives other tasks a turn (cooperative budget)."""

    async with open_system() as system:
        g = await system.spawn(Gate, trio.Event())
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            start = ticks
            for i in range(1000):
                await g.ask(Gate.record, i)
            assert ticks > start
            nursery.cancel_scope.cancel()


async def _cancel_when_blocked(scope: trio.CancelScope) -> None:
    await trio.testing.wait_all_tasks_blocked()
    scope.cancel()


async def _cancel_after(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()
