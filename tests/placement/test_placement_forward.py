"""A cell's Forward on its own: the pause queue keeps the mailbox's bound for
local senders, and never for what arrives from elsewhere (issue #12)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from placement_atoms import Sequencer

from radon_actors import MailboxFull, open_system
from radon_actors.placement._endpoints import Forward
from radon_actors.runtime import CellState
from radon_actors.testing import cell_of


async def test_a_paused_forward_bounds_local_senders_and_replays_in_order() -> None:
    async with open_system() as system:
        moving = await system.spawn(Sequencer, mailbox_size=3)
        there = await system.spawn(Sequencer)  # where the atom "moved"
        cell, new_home = cell_of(moving), cell_of(there)
        fwd = Forward(new_home)
        fwd.pause()
        assert cell.move_away(fwd).messages() == []
        for i in range(3):
            moving.tell(Sequencer.seq, "a", i)
        with pytest.raises(MailboxFull, match="is moving"):
            moving.tell(Sequencer.seq, "a", 99)
        # What comes from elsewhere is never refused (a connection's reader
        # must not wait on an atom between two places).
        cell.post("seq", ("remote", 0), {}, None)
        sent = trio.Event()

        async def send_more() -> None:
            await moving.send(Sequencer.seq, "a", 3)
            await moving.send(Sequencer.seq, "a", 4)
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_more)
            await trio.testing.wait_all_tasks_blocked()
            assert not sent.is_set()  # waits for room in the pause queue
            assert len(fwd.paused or ()) == 4
            fwd.resume()
        assert await there.ask(Sequencer.handled) == 6
        last, errors, _ = await there.ask(Sequencer.report)
        assert errors == [] and last == {"a": 4, "remote": 0}
        assert cell.state is CellState.RUNNING and len(system.dead_letters) == 0
        cell.come_back()
