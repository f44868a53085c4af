"""The node's tables shrink as well as grow: what churn adds is pruned.

Driven in one process, with peers that never connect (what is sent to them
stays in their outgoing buffer, where the test reads it).
"""

from __future__ import annotations

import pickle

import cloudpickle  # type: ignore[import-untyped]
import pytest

from radon_actors import open_system
from radon_actors.placement import _classes
from radon_actors.placement._frames import CLASSES
from radon_actors.placement._node import get_node
from radon_actors.placement._wire import FrameReader


async def test_rerouted_atoms_are_forgotten_when_their_origin_says_they_stopped_or_is_lost() -> (
    None
):
    async with open_system() as system:
        node = get_node(system)
        origin = node.add_peer("nA", "a", None)
        sender = node.add_peer("nS", "s", None)
        tell = node.table.handlers["tell"]

        # A hinted tell for an atom of nA that is not here goes on to its origin,
        # which is asked to say when the atom stops.
        assert tell(sender, ("tell", "nA.5", "incr", (), {})) is None
        assert "nA.5" in node.rerouted
        sent = FrameReader().feed(bytes(origin.out))
        assert [f[:2] for f in sent] == [("watch", "nA.5"), ("tell", "nA.5")]
        origin.out.clear()
        # The next one goes the same way, without a second watch.
        tell(sender, ("tell", "nA.5", "incr", (), {}))
        assert [f[0] for f in FrameReader().feed(bytes(origin.out))] == ["tell"]

        # A crash it survived changes nothing; once it stopped, nothing can be
        # travelling through the origin any more.
        node.table.handlers["down"](origin, ("down", "nA.5", "boom", False))
        assert "nA.5" in node.rerouted
        node.table.handlers["down"](origin, ("down", "nA.5", None, True))
        assert "nA.5" not in node.rerouted

        # The origin lost: so is everything that went through it.
        tell(sender, ("tell", "nA.6", "incr", (), {}))
        tell(sender, ("tell", "nA.7", "incr", (), {}))
        assert node.rerouted == {"nA.6", "nA.7"}
        origin.mark_down("connection lost")
        assert node.rerouted == set()
        # ... and a lost origin adds nothing.
        tell(sender, ("tell", "nA.8", "incr", (), {}))
        assert node.rerouted == set()


async def test_migration_locks_go_when_nobody_holds_them() -> None:
    async with open_system() as system:
        node = get_node(system)
        async with node.migration_lock("x.1"):
            assert node._migration_locks["x.1"].locked()
        assert node._migration_locks == {}
        assert node.try_migration_lock("x.2")
        node.release_migration_lock("x.2")
        assert node._migration_locks == {}


def test_the_class_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_classes, "_classes", {})
    monkeypatch.setattr(_classes, "MAX_CLASSES", 3)
    blobs = [cloudpickle.dumps(cls, pickle.HIGHEST_PROTOCOL) for cls in (int, str, list, dict)]
    for blob in blobs:
        _classes.load_class(blob)
    assert len(_classes._classes) == 3
    assert _classes.load_class(blobs[0]) is int  # evicted, loaded again: the same class


async def test_the_dispatch_table_handles_every_frame_kind() -> None:
    async with open_system() as system:
        handlers = get_node(system).table.handlers
        assert set(handlers) == set(CLASSES) | {"tell", "ask", "reply"}
