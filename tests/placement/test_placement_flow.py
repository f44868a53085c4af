"""Credit-based flow control between hosts, and large messages in parts (issue
#14, finding 4 and the chunking it asks for).

A remote atom's mailbox bound holds across hosts: ``tell`` raises
``MailboxFull`` at the sender once the atom's mailbox is full and a mailbox's
worth is on its way, ``send`` waits for credit, the sender's buffer stays
bounded, and a slow atom never delays messages to the other atoms that share
its connection. A large message goes in parts, so it does not hold up the small
ones behind it either, while messages to one atom keep their order.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
import trio
import trio.testing
from cluster_helpers import cluster
from placement_atoms import Burst, Counter, Gate, Sequencer, Sink

from radon_actors import MailboxFull, ProtocolError, open_system
from radon_actors.placement import _flow, _wire
from radon_actors.placement._endpoints import CallbackReply
from radon_actors.placement._flow import INITIAL_WINDOW
from radon_actors.placement._transport import Peer
from radon_actors.testing import node_of

if TYPE_CHECKING:
    from radon_actors.placement._node import Node


async def test_a_slow_atom_does_not_hold_up_its_neighbours_on_the_connection() -> None:
    # Before: the connection's reader waited for room in the slow atom's
    # mailbox, so an ask to another atom on the same host got no answer.
    with trio.fail_after(60):
        async with cluster("w1") as system:
            event = trio.Event()
            gate = await system.spawn(Gate, event)
            slow = await system.spawn(Counter, host="w1", mailbox_size=10)
            other = await system.spawn(Counter, 41, host="w1")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow.ask, Counter.wait_on, gate)  # a turn that waits
                await trio.testing.wait_all_tasks_blocked()
                sent = 0

                async def flood() -> None:
                    nonlocal sent
                    for _ in range(2_000):
                        await slow.send(Counter.incr)  # waits for credit
                        sent += 1

                nursery.start_soon(flood)
                peer = node_of(system).peer_by_name("w1")
                while peer.flows.get(slow.id) is None or peer.flows[slow.id].room is None:
                    await trio.testing.wait_all_tasks_blocked(cushion=0.005)
                # The flood waits for credit: 10 in the mailbox and 10 on their way.
                assert sent == 20
                assert peer.flows[slow.id].out == 10
                assert await other.ask(Counter.incr) == 42  # the neighbour answers
                event.set()
            assert await slow.ask(Counter.get) == 2_000


async def test_a_ref_from_another_host_learns_the_mailbox_size_and_pushes_back() -> None:
    # The burst's host did not spawn the atom: it starts from the default
    # window, and the first credit tells it the mailbox size (5).
    with trio.fail_after(60):
        async with cluster("w1", "w2") as system:
            event = trio.Event()
            gate = await system.spawn(Gate, event)
            slow = await system.spawn(Counter, host="w1", mailbox_size=5)
            burst = await system.spawn(Burst, host="w2")
            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow.ask, Counter.wait_on, gate)
                await trio.testing.wait_all_tasks_blocked()
                # Without yielding, the burst has only the default window: all
                # 300 go, 5 into the mailbox and the rest held on w1.
                assert await burst.ask(Burst.burst, slow, 300) == 300
                # The credit for those 5 says the mailbox size: from then on the
                # atom takes nothing more from w2 until it has room.
                told = await burst.ask(Burst.trickle, slow, 2 * INITIAL_WINDOW)
                assert told < INITIAL_WINDOW - 300
                event.set()
            assert await burst.ask(Burst.read, slow) == 300 + told  # none lost


async def test_sends_from_two_hosts_to_a_slow_atom_all_arrive_in_order() -> None:
    with trio.fail_after(60):
        async with cluster("w1", "w2") as system:
            target = await system.spawn(Sequencer, host="w1", mailbox_size=8)
            async with trio.open_nursery() as nursery:

                async def local() -> None:
                    for i in range(1_000):
                        await target.send(Sequencer.seq, "here", i)

                nursery.start_soon(local)
                relay = await system.spawn(Counter, host="w2")  # a second host's sender
                del relay
            assert await target.ask(Sequencer.handled) == 1_000
            _, errors, *_ = await target.ask(Sequencer.report)
            assert errors == []
            assert len(system.dead_letters) == 0


class _Node:
    """What a :class:`Peer` needs of its node, for a connection in memory."""

    heartbeat_interval = 60.0
    heartbeat_timeout = 60.0
    closing = False

    def __init__(self, nursery: trio.Nursery) -> None:
        self.nursery = nursery
        self.downs: list[str] = []

    def peer_down(self, peer: Peer, reason: str) -> None:
        self.downs.append(reason)


async def _read_frames(stream: trio.abc.ReceiveStream, n: int) -> list[tuple[Any, ...]]:
    reader = _wire.FrameReader()
    frames: list[tuple[Any, ...]] = []
    while len(frames) < n:
        frames.extend(reader.feed(await stream.receive_some(1 << 16)))
    return frames


async def test_a_large_frame_goes_in_parts_and_lets_small_ones_through() -> None:
    # Before: a large frame went out whole, and what was sent after it waited
    # until all of it had been written.
    big = ("tell", "n.1", "take", ("big", b"x" * (8 * _wire.PART)), {})
    async with trio.open_nursery() as nursery:
        send, receive = trio.testing.memory_stream_one_way_pair()
        peer = Peer(cast("Node", _Node(nursery)), "n", "n", None)
        peer.attach(cast("trio.abc.Stream", send))
        peer.send(big)
        peer.send(("tell", "n.1", "take", ("after", b""), {}))  # same atom: behind
        peer.send(("tell", "n.2", "take", ("other", b""), {}))  # another atom: ahead
        peer.send(("reply", 7, b"done"), urgent=True)  # a reply: ahead
        frames = await _read_frames(receive, 4)
        assert [f[0] for f in frames] == ["tell", "reply", "tell", "tell"]
        assert frames[0][1] == "n.2"
        assert frames[2] == big
        assert frames[3][3][0] == "after"
        nursery.cancel_scope.cancel()


async def test_large_messages_between_hosts_keep_each_atoms_order() -> None:
    big = b"x" * (24 << 20)  # 96 parts
    with trio.fail_after(60):
        async with cluster("w1") as system:
            sink = await system.spawn(Sink, host="w1")
            probe = await system.spawn(Sink, host="w1")
            sink.tell(Sink.take, "big", big)
            assert await probe.ask(Sink.take, "small", b"") == 0
            # To the same atom, order holds: the small one waits behind.
            sink.tell(Sink.take, "big2", big)
            assert await sink.ask(Sink.take, "small2", b"") == 0
            arrivals = await sink.ask(Sink.arrivals)
            assert sorted(arrivals) == ["big", "big2", "small", "small2"]
            assert arrivals.index("big2") < arrivals.index("small2")


async def test_a_large_reply_comes_back_in_parts() -> None:
    with trio.fail_after(60):
        async with cluster("w1") as system:
            sink = await system.spawn(Sink, host="w1")
            blob = bytes(range(256)) * ((3 * _wire.PART) // 256 + 7)
            assert await sink.ask(Sink.take, "echo", blob) == len(blob)


@pytest.fixture
def undrained(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inflows whose drain does nothing: what a peer sends stays held."""

    async def no_drain(*args: object) -> None:
        await trio.lowlevel.checkpoint()

    monkeypatch.setattr(_flow, "_drain", no_drain)


async def test_a_peer_that_sends_past_its_credit_is_cut_off(undrained: None) -> None:
    # A broken or hostile peer ignores the credit: what it sends is held (the
    # atom cannot take it) up to twice the window, then its connection closes
    # (the reader turns the ProtocolError into closing that one connection).
    async with trio.open_nursery() as nursery:
        node = SimpleNamespace(nursery=nursery)
        peer = SimpleNamespace(inflows={}, label="'rogue'")
        limit = 2 * INITIAL_WINDOW
        for _ in range(limit):
            _flow.hold(cast("Node", node), cast("Peer", peer), "z.1", "h", (), {}, None)
        with pytest.raises(ProtocolError, match="past its credit"):
            _flow.hold(cast("Node", node), cast("Peer", peer), "z.1", "h", (), {}, None)


async def test_asks_held_for_a_full_atom_are_bounded_per_peer(undrained: None) -> None:
    # Asks take no credit, but a peer cannot leave more than twice the window
    # of them waiting for one atom: past that, each is answered at once with
    # MailboxFull (before, they were held without bound).
    async with trio.open_nursery() as nursery:
        node = SimpleNamespace(nursery=nursery)
        peer = SimpleNamespace(inflows={}, label="'eager'")
        limit = 2 * INITIAL_WINDOW
        answers: list[Any] = []
        for _ in range(limit + 3):
            reply = CallbackReply(answers.append)
            _flow.hold(cast("Node", node), cast("Peer", peer), "z.1", "h", (), {}, reply)
        assert len(peer.inflows["z.1"].queue) == limit
        assert len(answers) == 3
        for answer in answers:
            with pytest.raises(MailboxFull, match="full mailbox"):
                answer.unwrap()


async def test_a_held_ask_answered_inline_passes_the_room_on_to_a_waiting_sender() -> None:
    # An inflow's drain waits for room in a full mailbox like a local sender,
    # and is woken the same way; but woken, it may answer an ask inline (an idle
    # atom, empty lanes) and leave the room unused. Before, that wake-up was
    # lost: a local sender waiting behind it stayed parked by an empty mailbox
    # for good (bench/migration_stress found it: seeds 43 and 1037 hung).
    async with open_system() as system, trio.open_nursery() as nursery:
        event = trio.Event()
        gate = await system.spawn(Gate, event)
        counter = await system.spawn(Counter, mailbox_size=1)
        nursery.start_soon(counter.ask, Counter.wait_on, gate)  # busy until the event
        await trio.testing.wait_all_tasks_blocked()
        counter.tell(Counter.incr)  # the mailbox is full
        node = SimpleNamespace(nursery=nursery, rerouted=set(), peers={})
        peer = SimpleNamespace(
            inflows={}, label="'w1'", node_id="w1", down=None, due=defaultdict(int)
        )
        answers: list[Any] = []
        held = CallbackReply(answers.append)
        _flow.hold(cast("Node", node), cast("Peer", peer), counter.id, "get", (), {}, held)
        await trio.testing.wait_all_tasks_blocked()  # the drain waits for room
        sent = trio.Event()

        async def send() -> None:
            await counter.send(Counter.incr)
            sent.set()

        nursery.start_soon(send)
        await trio.testing.wait_all_tasks_blocked()  # and the local sender behind it
        event.set()
        await trio.testing.wait_all_tasks_blocked()
        assert [answer.unwrap() for answer in answers] == [1]  # answered inline
        assert sent.is_set()
        assert await counter.ask(Counter.get) == 2
        assert not peer.inflows
