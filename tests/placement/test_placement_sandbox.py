"""Sandboxed atoms on other hosts: component shipping, placement, supervision, migration.

The migration guarantees are the native tests of ``test_placement_migration.py``
run again here (imported below) with a sandboxed ``kind``: the target atoms are
the guest-safe classes of ``mobile_atoms`` spawned with ``sandbox=True``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import mobile_atoms
import placement_atoms
import pytest
import trio
import trio.testing
from cluster_helpers import Kind, cluster, kill_host, radon_host, record_frames, sandboxed_kind
from mobile_atoms import Counter, Move, Relay, Tag
from test_placement_backpressure import (
    test_a_full_mailbox_with_senders_here_and_on_the_target_migrates,
    test_a_migration_that_cannot_start_in_time_is_called_off,
    test_an_atom_with_a_full_mailbox_comes_home_from_a_worker,
    test_two_atoms_crossing_under_full_mailboxes_both_arrive_whole,
)

# The migration guarantees, with sandboxed target atoms (see ``kind`` below).
from test_placement_migration import (
    test_asks_during_the_hand_over_are_not_run_on_the_source,
    test_asks_in_flight_during_migration_get_their_replies,
    test_atom_spawned_on_a_worker_moves_around,
    test_coming_home_to_a_small_mailbox_loses_nothing,
    test_failed_migration_from_a_worker_leaves_it_there,
    test_failed_migration_leaves_the_atom_where_it_was,
    test_local_atom_moves_to_workers_and_back_with_state_and_refs,
    test_migration_under_load_keeps_every_sequence_complete_and_in_order,
    test_migration_waits_for_the_turn_and_a_cancelled_one_does_not_move,
    test_senders_waiting_for_room_follow_the_atom,
    test_stopping_a_migrated_atom_stops_it_where_it_lives,
    test_the_origin_learns_when_a_migrated_atom_stops_or_its_host_dies_and_restarts_it,
)

from radon_actors import (
    ChildSpec,
    LeastLoaded,
    ProtocolError,
    RoundRobin,
    SandboxConfig,
    SandboxCrashed,
    Supervisor,
    open_system,
)
from radon_actors.placement import _code
from radon_actors.placement._frames import CodeDone, CodeHas, CodePart
from radon_actors.placement._node import Node, get_node
from radon_actors.runtime import _directory
from radon_actors.sandbox.host import content_hash, entry
from radon_actors.testing import cell_of, node_of

__all__ = [
    "test_a_full_mailbox_with_senders_here_and_on_the_target_migrates",
    "test_a_migration_that_cannot_start_in_time_is_called_off",
    "test_an_atom_with_a_full_mailbox_comes_home_from_a_worker",
    "test_asks_during_the_hand_over_are_not_run_on_the_source",
    "test_asks_in_flight_during_migration_get_their_replies",
    "test_atom_spawned_on_a_worker_moves_around",
    "test_coming_home_to_a_small_mailbox_loses_nothing",
    "test_failed_migration_from_a_worker_leaves_it_there",
    "test_failed_migration_leaves_the_atom_where_it_was",
    "test_local_atom_moves_to_workers_and_back_with_state_and_refs",
    "test_migration_under_load_keeps_every_sequence_complete_and_in_order",
    "test_migration_waits_for_the_turn_and_a_cancelled_one_does_not_move",
    "test_senders_waiting_for_room_follow_the_atom",
    "test_stopping_a_migrated_atom_stops_it_where_it_lives",
    "test_the_origin_learns_when_a_migrated_atom_stops_or_its_host_dies_and_restarts_it",
    "test_two_atoms_crossing_under_full_mailboxes_both_arrive_whole",
]


@pytest.fixture(scope="session")
def mobile_component() -> Any:
    """The component of ``tests/atoms/mobile_atoms.py``, built once (cached on disk after)."""
    from radon_actors.sandbox import _engine

    return _engine.load("mobile_atoms")


@pytest.fixture
def kind(mobile_component: Any) -> Kind:
    """Overrides the native ``kind`` of the imported migration tests."""
    return sandboxed_kind()


pytestmark = pytest.mark.usefixtures("mobile_component")


async def test_a_sandboxed_atom_on_a_worker_runs_there_with_its_config_and_refs_both_ways(
    kind: Kind,
) -> None:
    async with cluster("w1", "w2") as system:
        # a small fuel budget travels with the atom: the worker enforces it
        config = SandboxConfig(fuel=50_000_000)
        ref = await system.spawn(Counter, 5, sandbox=config, host="w1")
        assert await kind.where(system, ref) == "w1"
        assert await ref.ask(Counter.incr, 2) == 7
        assert await ref.ask(Counter.me) == ref
        assert await ref.ask(Counter.spin, 10) == sum(i * i for i in range(10))
        with pytest.raises(SandboxCrashed, match="fuel"):
            await ref.ask(Counter.spin, 10**7)
        # the crash restarted it on its host (fresh state from the spawn arguments)
        assert await ref.ask(Counter.get) == 5
        assert await kind.where(system, ref) == "w1"

        # a native atom on w2 asks the sandboxed one on w1 (host to host)
        native_relay = await system.spawn(placement_atoms.Relay, host="w2")
        assert await native_relay.ask(placement_atoms.Relay.relay, ref, 10) == 15
        # a sandboxed atom on w2 asks a native atom on w1, and one here
        sandboxed_relay = await system.spawn(Relay, sandbox=True, host="w2")
        native = await system.spawn(placement_atoms.Counter, 100, host="w1")
        assert await sandboxed_relay.ask(Relay.relay, native, 1) == 101
        here = await system.spawn(placement_atoms.Counter, 7)
        assert await sandboxed_relay.ask(Relay.relay, here, 1) == 8
        # ... and a sandboxed one on w1
        assert await sandboxed_relay.ask(Relay.relay, ref, 1) == 16
        # The guest names atoms by id only; its host remembers where the Refs it
        # was handed said they run, so w2 talks to w1 without this process.
        seen = record_frames(system)
        assert await sandboxed_relay.ask(Relay.relay, native, 1) == 102
        assert await sandboxed_relay.ask(Relay.relay, ref, 1) == 17
        assert [f for f in seen if native.id in f or ref.id in f] == []


async def test_placement_policies_and_child_specs_place_sandboxed_atoms() -> None:
    async with cluster("w1", "w2") as system:
        kind = sandboxed_kind()
        policy = RoundRobin()
        spread = [await system.spawn(Counter, i, sandbox=True, host=policy) for i in range(3)]
        places = [await kind.where(system, ref) for ref in spread]
        assert sorted(places) == ["local", "w1", "w2"]
        for i, ref in enumerate(spread):
            assert await ref.ask(Counter.incr) == i + 1
        light = await system.spawn(Counter, sandbox=True, host=LeastLoaded(among=["w1", "w2"]))
        assert await kind.where(system, light) in ("w1", "w2")

        sup = await system.spawn(
            Supervisor,
            [ChildSpec(Counter, args=(40,), name="kid", sandbox=True, host="w2")],
        )
        kid = system.lookup("kid")
        assert await kind.where(system, kid) == "w2"
        assert await kid.ask(Counter.incr, 2) == 42
        assert len(await sup.ask(Supervisor.which_children)) == 1


async def test_sandboxed_atoms_of_a_killed_host_restart_on_a_live_one() -> None:
    kind = sandboxed_kind()
    async with cluster("w1", "w2") as system:
        config = SandboxConfig(fuel=50_000_000)
        placed = await system.spawn(Counter, 10, sandbox=config, host="w1")
        migrated = await system.spawn(Counter, 20, sandbox=True)
        await system.migrate(migrated, to="w1")
        await system.spawn(
            Supervisor, [ChildSpec(Counter, args=(30,), name="kid", sandbox=True, host="w1")]
        )
        kid = system.lookup("kid")
        for ref in (placed, migrated, kid):
            await ref.ask(Counter.incr, 5)
        restarted = {ref.id: trio.Event() for ref in (placed, migrated, kid)}
        for ref in (placed, migrated, kid):
            event = restarted[ref.id]
            cell_of(ref).on_crashed = [lambda c, exc, e=event: e.set()]
        node = node_of(system)
        assert node is not None
        kill_host(system, "w1")
        with trio.fail_after(30):
            for event in restarted.values():
                await event.wait()
        # fresh instances from their spawn arguments, on the live host, same Refs
        assert await placed.ask(Counter.get) == 10
        assert await migrated.ask(Counter.get) == 20
        assert await kid.ask(Counter.get) == 30
        for ref in (placed, migrated, kid):
            assert await kind.where(system, ref) == "w2"
        # the config travelled to the restart too
        with pytest.raises(SandboxCrashed, match="fuel"):
            await placed.ask(Counter.spin, 10**8)


async def test_a_host_receives_a_component_once_verifies_it_and_compiles_it_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mobile_component: Any
) -> None:
    sent: list[tuple[str, str]] = []
    request = Node.request

    async def spy(self: Node, peer: Any, frame: tuple[Any, ...]) -> Any:
        if str(frame[0]).startswith("code_"):
            sent.append((peer.name, str(frame[0])))
        return await request(self, peer, frame)

    monkeypatch.setattr(Node, "request", spy)
    async with cluster() as system:
        h, wasm = await content_hash(mobile_component)
        # a worker with an empty cache of its own
        with monkeypatch.context() as env:
            env.setenv("RADON_SANDBOX_CACHE", str(tmp_path))
            await system.start_host("w1")
        # a component whose bytes do not match its hash is refused, and not kept
        node = node_of(system)
        assert node is not None
        peer = node.peer_by_name("w1")
        bogus = "0" * 64
        await node.request(peer, CodePart("code_part", 0, bogus, 0, b"not a component"))
        with pytest.raises(ProtocolError, match="does not match its hash"):
            await node.request(
                peer, CodeDone("code_done", 0, bogus, len(b"not a component"), "mobile_atoms", [])
            )
        assert not await node.request(peer, CodeHas("code_has", 0, bogus))
        assert not (tmp_path / f"sha256-{bogus}").exists()
        # a hash names a directory there: anything but a SHA-256 is refused
        with pytest.raises(ProtocolError, match="not a component hash"):
            await node.request(peer, CodeHas("code_has", 0, "../../etc"))
        # parts must arrive in order, from offset 0
        with pytest.raises(ProtocolError, match="unexpected part"):
            await node.request(peer, CodePart("code_part", 0, bogus, 5, b"late"))
        sent.clear()

        # concurrent spawns of the same component on one host ship it once
        refs: list[Any] = []

        async def spawn(i: int) -> None:
            refs.append(await system.spawn(Counter, i, sandbox=True, host="w1"))

        async with trio.open_nursery() as nursery:
            for i in range(3):
                nursery.start_soon(spawn, i)
        assert sorted([await ref.ask(Counter.get) for ref in refs]) == [0, 1, 2]
        parts = -(-wasm.stat().st_size // _code.CHUNK)
        assert sent == [("w1", "code_has")] + [("w1", "code_part")] * parts + [("w1", "code_done")]
        # the worker stored the portable component under its hash and compiled it;
        # it built nothing itself (no other cache entry)
        assert [p.name for p in await trio.Path(tmp_path).iterdir()] == [f"sha256-{h}"]
        stored = tmp_path / f"sha256-{h}"
        assert hashlib.sha256((stored / "component.wasm").read_bytes()).hexdigest() == h
        assert (stored / "component.cwasm").is_file()
        # later spawns and moves to that host send nothing
        sent.clear()
        ref = await system.spawn(Counter, 7, sandbox=True, host="w1")
        await system.migrate(ref, to="local")
        await system.migrate(ref, to="w1")
        assert await ref.ask(Counter.incr) == 8
        # an atom there spawns a sandboxed child of that module: the host uses the
        # component it received, it does not build one
        relay = await system.spawn(Relay, sandbox=True, host="w1")
        assert await relay.ask(Relay.make_child, 5) == 6
        assert sent == []
        assert [p.name for p in await trio.Path(tmp_path).iterdir()] == [f"sha256-{h}"]


async def test_a_worker_sharing_this_machines_cache_neither_receives_nor_compiles(
    mobile_component: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A component built here is published under its hash in the machine's cache,
    # hard-linked with its compiled artifact: a worker host on this machine loads
    # that (milliseconds) instead of receiving the bytes and compiling (seconds).
    sent: list[tuple[str, str]] = []
    request = Node.request

    async def spy(self: Node, peer: Any, frame: tuple[Any, ...]) -> Any:
        if str(frame[0]).startswith("code_"):
            sent.append((peer.name, str(frame[0])))
        return await request(self, peer, frame)

    monkeypatch.setattr(Node, "request", spy)
    async with cluster("w1") as system:
        h, _wasm = await content_hash(mobile_component)
        compiled = entry(h) / "component.cwasm"
        assert (entry(h) / "meta.json").is_file() and compiled.is_file()
        before = compiled.stat()
        ref = await system.spawn(Counter, 1, sandbox=True, host="w1")
        assert await ref.ask(Counter.incr) == 2
        assert sent == [("w1", "code_has")]  # it had the component: no bytes sent
        after = compiled.stat()  # and it compiled nothing (that would replace the file)
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_a_native_and_a_sandboxed_atom_of_one_class_move_side_by_side() -> None:
    async with cluster("w1") as system:
        native = await system.spawn(mobile_atoms.Counter, 1)
        sandboxed = await system.spawn(mobile_atoms.Counter, 2, sandbox=True)
        for ref in (native, sandboxed):
            await system.migrate(ref, to="w1")
        assert await native.ask(Counter.incr) == 2
        assert await sandboxed.ask(Counter.incr) == 3
        # only the sandboxed one has a fuel budget
        assert await native.ask(Counter.spin, 1000) == await sandboxed.ask(Counter.spin, 1000)
        for ref in (native, sandboxed):
            await system.migrate(ref, to="local")
        cells = [cell_of(ref) for ref in (native, sandboxed)]
        assert [c.runtime is not None for c in cells] == [False, True]
        assert [await ref.ask(Counter.get) for ref in (native, sandboxed)] == [2, 3]


async def test_a_restored_or_threaded_sandboxed_atom_keeps_its_behaviour_when_it_moves() -> None:
    from radon_actors.sandbox._spawn import snapshot, spawn_restored

    kind = sandboxed_kind()
    async with cluster("w1", "w2") as system:
        original = await system.spawn(Counter, 3, sandbox=True)
        await original.ask(Counter.incr, 4)
        restored = await spawn_restored(system, Counter, await snapshot(original))
        await system.migrate(restored, to="w1")
        assert await restored.ask(Counter.incr) == 8
        # a crash on w1 restarts it there from its snapshot (it has no spawn arguments)
        with pytest.raises(ValueError, match="boom at 8"):
            await restored.ask(Counter.boom)
        assert await restored.ask(Counter.get) == 7
        assert await kind.where(system, restored) == "w1"

        threaded = await system.spawn(Counter, 1, sandbox=SandboxConfig(threaded=True))
        for hop in ("w1", "w2", "local"):
            await system.migrate(threaded, to=hop)
            assert await kind.where(system, threaded) == hop
            assert await threaded.ask(Counter.aincr, len(hop)) == 1 + len(hop)
            threaded_back = await threaded.ask(Counter.incr, -len(hop))
            assert threaded_back == 1
        cell = cell_of(threaded)
        assert cell.runtime.config.threaded


async def test_partial_components_of_a_host_that_went_down_are_dropped() -> None:
    # the receiving side's bookkeeping, driven directly
    async with open_system() as system:
        node = get_node(system)
        peer = node.add_peer("n9", "w9", None)
        h = "f" * 64
        await _code.serve_code_part(node, peer, CodePart("code_part", 1, h, 0, b"x" * 10))
        assert node.staging[("n9", h)] == b"x" * 10
        peer.mark_down("connection lost")
        assert ("n9", h) not in node.staging


@pytest.mark.parametrize("sandbox", [True, False])
async def test_a_radon_host_joined_by_address_runs_and_moves_sandboxed_atoms(
    tmp_path: Path, sandbox: bool
) -> None:
    # (natively too: the restart after a round trip home is not sandbox-specific)
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)  # a shared secret must be private (read_secret checks)
    kind = sandboxed_kind()
    async with (
        radon_host(secret, "remote") as (proc, line),
        open_system(shutdown_timeout=5) as system,
    ):
        await system.connect_host(line.split()[1], secret_file=secret)
        ref = await system.spawn(Counter, 1, sandbox=sandbox, host="remote", name="c")
        supervised = cell_of(ref)  # the cell its supervisor restarts
        assert await ref.ask(Counter.incr) == 2
        assert await kind.where(system, ref) == "remote"
        # home (where it runs in another cell) and away again
        await system.migrate(ref, to="local")
        assert await kind.where(system, ref) == "local"
        await system.migrate(ref, to="remote")
        assert await ref.ask(Counter.incr) == 3
        restarted = trio.Event()
        supervised.on_crashed = [lambda c, exc: restarted.set()]
        proc.kill()
        with trio.fail_after(10):
            await restarted.wait()
        # no other host: its supervisor restarted it here, fresh, and that cell is
        # the atom's entry again (for Refs resolved by id, and its name)
        assert _directory.lookup(ref.id) is supervised
        assert await kind.where(system, ref) == "local"
        assert await ref.ask(Counter.incr) == 2
        assert await system.lookup("c").ask(Counter.incr) == 3


async def test_a_sandboxed_atoms_timers_move_with_it_and_its_handles_still_cancel(
    kind: Kind,
) -> None:
    clock_cls = mobile_atoms.Clock
    async with cluster("w1", "w2") as system:
        clock = await system.spawn(clock_cls, sandbox=True)
        await clock.ask(clock_cls.every, "tick", 0.05)
        await clock.ask(clock_cls.after, "later", 0.2)
        before = await clock.ask(clock_cls.fired_after, 2)
        for to in ("w1", "w2"):
            await system.migrate(clock, to=to)
            assert await kind.where(system, clock) == to
            # the periodic timer goes on over there
            before = await clock.ask(clock_cls.fired_after, len(before) + 2)
        # The guest's handle (a number it holds) still names the moved timer.
        still_active, count = await clock.ask(clock_cls.cancel, "tick")
        assert not still_active
        await clock.ask(clock_cls.after, "sentinel", 0.3)  # 6 intervals: no tick came
        fired = await clock.ask(clock_cls.fired_after, count + 1)
        assert fired[count:] == ["sentinel"]
        # the one-shot (due long before the sentinel was armed) fired exactly once
        assert fired.count("later") == 1


async def test_hosts_that_run_sandboxed_atoms_never_import_their_module(tmp_path: Path) -> None:
    # Escape 4 of issue #15: the atom's module-level code must not run natively
    # on a host that runs the atom. The class goes by name, its arguments in the
    # value format, its handler table from the component's manifest.
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    async with (
        radon_host(secret, "remote") as (_proc, line),
        cluster() as system,
    ):
        # The radon host first: workers started after it share its secret.
        await system.connect_host(line.split()[1], secret_file=secret)
        await system.start_host("w1")
        await system.start_host("w2")
        ref = await system.spawn(Counter, 1, sandbox=True, host="w1")
        relay = await system.spawn(Relay, sandbox=True, host="remote")
        assert await ref.ask(Counter.incr) == 2
        await system.migrate(ref, to="w2")
        assert await ref.ask(Counter.incr) == 3
        assert await relay.ask(Relay.relay, ref, 1) == 4  # guest to guest, host to host
        await system.migrate(ref, to="remote")
        assert await ref.ask(Counter.incr) == 5
        # A record of the module, in a message and a reply through those hosts:
        # they pass it on as a Record; the guest, and this process, rebuild it.
        assert await ref.ask(Counter.apply, Move(2)) == Move(7)
        await system.migrate(ref, to="w1")
        assert await ref.ask(Counter.apply, Move(3)) == Move(10)
        # ... and a subclass of a built-in type keeps its class through w1 too.
        shouted = await ref.ask(Counter.shout, Tag("hi"))
        assert shouted == "HI" and type(shouted) is Tag
        for host in ("w1", "w2", "remote"):
            probe = await system.spawn(placement_atoms.Probe, host=host)
            assert await probe.ask(placement_atoms.Probe.imported, "placement_atoms")
            assert not await probe.ask(placement_atoms.Probe.imported, "mobile_atoms"), host
