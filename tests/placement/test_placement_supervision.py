"""Supervisors restart children lost with their host (SIGKILLed worker processes)."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import trio
from cluster_helpers import cluster, kill_workers, radon_host
from placement_atoms import Counter
from placement_supervision_atoms import Member, Recorder

from radon_actors import (
    Atom,
    AtomStopped,
    ChildSpec,
    Directive,
    Down,
    HostDown,
    Ref,
    Restart,
    Strategy,
    Supervisor,
    System,
    handler,
    open_system,
)
from radon_actors.runtime import _directory
from radon_actors.testing import cell_of


class Watcher(Atom):
    """Records the Down notices of the atoms it watches (runs in this process)."""

    def __init__(self, got: trio.Event) -> None:
        self.got = got
        self.downs: list[Down] = []

    @handler
    def follow(self, ref: Ref[Any]) -> None:
        self.watch(ref, Watcher.on_down)

    @handler
    def on_down(self, down: Down) -> None:
        self.downs.append(down)
        self.got.set()

    @handler
    def seen(self) -> list[tuple[str, str, bool]]:
        return [(d.ref.id, type(d.reason).__name__, d.stopped) for d in self.downs]

    @handler
    def causes(self) -> list[tuple[str, str, str]]:
        """Per notice: the reason's type, its cause's type, and the cause's notes."""
        return [
            (
                type(d.reason).__name__,
                type(d.reason.__cause__).__name__,
                "".join(getattr(d.reason.__cause__, "__notes__", [])),
            )
            for d in self.downs
        ]


class Latch(Atom):
    """Holds whoever asks ``wait``; says when someone is waiting (runs in this process)."""

    def __init__(self, entered: trio.Event, release: trio.Event) -> None:
        self.entered = entered
        self.release = release

    @handler
    async def wait(self) -> None:
        self.entered.set()
        await self.release.wait()


async def _pid(ref: Ref[Any]) -> int:
    return int(await ref.ask(Counter.where))


async def _watcher(system: System) -> tuple[Ref[Watcher], trio.Event]:
    got = trio.Event()
    return await system.spawn(Watcher, got), got


async def test_a_child_of_a_killed_host_restarts_on_a_live_host_with_the_same_ref() -> None:
    async with cluster("w1", "w2") as system:
        sup = await system.spawn(
            Supervisor, [ChildSpec(Counter, args=(5,), name="c", host="w1")], max_restarts=1
        )
        ref = system.lookup("c")  # the name is registered here, at the origin
        assert await ref.ask(Counter.incr) == 6
        w1_pid, w2_pid = [await _pid(await system.spawn(Counter, host=h)) for h in ("w1", "w2")]
        assert await _pid(ref) == w1_pid
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, ref)

        os.kill(w1_pid, signal.SIGKILL)
        with trio.fail_after(10):
            await got.wait()  # sent once the supervisor has restarted it
        assert await watcher.ask(Watcher.seen) == [(ref.id, "HostDown", False)]
        # a fresh instance from the spec's arguments, on the other live host
        assert await ref.ask(Counter.get) == 5
        assert await _pid(ref) == w2_pid
        assert await ref.ask(Counter.incr) == 6
        (info,) = await sup.ask(Supervisor.which_children)
        assert info.ref == ref
        assert info.restarts == 1


async def test_the_restart_goes_back_to_the_named_host_while_it_is_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from radon_actors.placement import _supervised

    restarted = trio.Event()
    original = _supervised.restart_elsewhere

    async def restart_elsewhere(node: Any, cell: Any) -> None:
        await original(node, cell)
        restarted.set()

    monkeypatch.setattr(_supervised, "restart_elsewhere", restart_elsewhere)
    async with cluster("w1", "w2") as system:
        sup = await system.spawn(Supervisor, [ChildSpec(Counter, args=(1,), name="p", host="w2")])
        ref = system.lookup("p")
        w2_pid = await _pid(ref)
        await ref.ask(Counter.incr, 10)
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, ref)
        await ref.ask(Counter.halt)  # a permanent child that stops itself comes back
        with trio.fail_after(10):
            await restarted.wait()
        assert (await sup.ask(Supervisor.which_children))[0].restarts == 1
        assert await ref.ask(Counter.get) == 1
        assert await _pid(ref) == w2_pid
        assert not got.is_set()  # a normal exit is not a crash


async def test_with_no_other_host_up_the_child_restarts_in_this_process() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 7, host="w1")
        pid = await _pid(ref)
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, ref)
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(10):
            await got.wait()
        assert await ref.ask(Counter.incr) == 8
        assert await _pid(ref) == os.getpid()
        # it is an ordinary local atom now: it can move out again
        await system.start_host("w2")
        await system.migrate(ref, to="w2")
        assert await ref.ask(Counter.incr) == 9
        assert await _pid(ref) != os.getpid()


async def test_a_temporary_child_of_a_killed_host_is_not_restarted() -> None:
    async with cluster("w1", "w2") as system:
        sup = await system.spawn(
            Supervisor, [ChildSpec(Counter, name="t", host="w1", restart=Restart.TEMPORARY)]
        )
        ref = system.lookup("t")
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, ref)
        os.kill(await _pid(ref), signal.SIGKILL)
        with trio.fail_after(10):
            await got.wait()
        assert await watcher.ask(Watcher.seen) == [(ref.id, "HostDown", True)]
        with pytest.raises(AtomStopped):
            await ref.ask(Counter.get)
        assert await sup.ask(Supervisor.count_children) == {"specs": 0, "active": 0}
        assert _directory.lookup(ref.id) is None


async def test_asks_in_flight_fail_and_the_next_ones_reach_the_new_incarnation() -> None:
    async with cluster("w1", "w2") as system:
        ref = await system.spawn(Counter, 0, host="w1")
        errors: list[BaseException] = []

        async def ask_hanging() -> None:
            try:
                await ref.ask(Counter.hang)
            except HostDown as exc:
                errors.append(exc)

        pid = await _pid(ref)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(ask_hanging)
                await trio.testing.wait_all_tasks_blocked()
                os.kill(pid, signal.SIGKILL)
        assert len(errors) == 3
        # whatever is sent from now on is held until the restart, then delivered
        for _ in range(10):
            ref.tell(Counter.incr)
        with trio.fail_after(10):
            assert await ref.ask(Counter.get) == 10
        assert await _pid(ref) not in (pid, os.getpid())
        assert system.load() == 0  # it runs on w2: no load here (least-loaded policies)


async def test_a_watcher_on_another_host_hears_of_the_restart_and_the_stop() -> None:
    from placement_atoms import Watcher as RemoteWatcher

    async with cluster("w1", "w2") as system:
        target = await system.spawn(Counter, host="w2")
        watcher = await system.spawn(RemoteWatcher, host="w1")
        await watcher.ask(RemoteWatcher.follow, target)  # on w1; the origin is here
        os.kill(await _pid(target), signal.SIGKILL)
        with trio.fail_after(10):
            downs = await watcher.ask(RemoteWatcher.downs_after, 1)
        assert downs == [(target.id, "RemoteError", False)]  # restarted (HostDown)
        assert await target.ask(Counter.incr) == 1
        await system.stop(target)
        with trio.fail_after(10):
            downs = await watcher.ask(RemoteWatcher.downs_after, 2)
        assert downs[1] == (target.id, "NoneType", True)


async def test_a_watcher_hears_when_the_origin_host_of_the_atom_dies() -> None:
    from placement_atoms import Watcher as RemoteWatcher

    async with cluster("w1", "w2") as system:
        on_w2 = await system.spawn(RemoteWatcher, host="w2")
        child = await on_w2.ask(RemoteWatcher.make)  # its origin is w2
        watcher = await system.spawn(RemoteWatcher, host="w1")
        await watcher.ask(RemoteWatcher.follow, child)
        assert await child.ask(Counter.incr) == 1
        os.kill(await _pid(child), signal.SIGKILL)
        with trio.fail_after(10):
            downs = await watcher.ask(RemoteWatcher.downs_after, 1)
        assert downs == [(child.id, "HostDown", True)]
        # watching it now (its origin is down) notifies at once
        await watcher.ask(RemoteWatcher.follow, child)
        downs = await watcher.ask(RemoteWatcher.downs_after, 2)
        assert downs[1] == (child.id, "HostDown", True)


async def test_a_restart_that_fails_on_one_host_is_retried_on_the_next() -> None:
    from placement_atoms import FailsOn

    async with cluster("w1", "w2") as system:
        w2_pid = await _pid(await system.spawn(Counter, host="w2"))
        sup = await system.spawn(
            Supervisor,
            [ChildSpec(FailsOn, args=(w2_pid,), name="f", host="w1")],
            max_restarts=3,
        )
        ref = system.lookup("f")
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, ref)
        os.kill(int(await ref.ask(FailsOn.where)), signal.SIGKILL)
        with trio.fail_after(10):
            await got.wait()
        # w1 is down and the start on w2 failed: the second attempt ran here
        assert int(await ref.ask(FailsOn.where)) == os.getpid()
        (info,) = await sup.ask(Supervisor.which_children)
        assert info.restarts == 2


async def test_every_atom_of_a_killed_host_is_restarted_with_its_own_state() -> None:
    async with cluster("w1", "w2") as system:
        refs = [await system.spawn(Counter, i, host="w1") for i in range(20)]
        w1_pid = await _pid(refs[0])
        watcher, _ = await _watcher(system)
        for ref in refs:
            await watcher.ask(Watcher.follow, ref)
            await ref.ask(Counter.incr, 1000)
        all_down = trio.Event()
        seen = 0

        def count(cell: Any, exc: BaseException) -> None:
            nonlocal seen
            seen += 1
            if seen == len(refs):
                all_down.set()

        for ref in refs:
            cell = cell_of(ref)
            assert cell is not None and cell.on_crashed is not None
            cell.on_crashed.append(count)
        os.kill(w1_pid, signal.SIGKILL)
        with trio.fail_after(20):
            await all_down.wait()
        assert [await ref.ask(Counter.get) for ref in refs] == list(range(20))
        assert {await _pid(ref) for ref in refs} == {
            await _pid(await system.spawn(Counter, host="w2"))
        }
        seen_downs = await watcher.ask(Watcher.seen)
        assert sorted(seen_downs) == sorted((ref.id, "HostDown", False) for ref in refs)


async def test_an_atom_on_a_sigkilled_radon_host_restarts_on_a_worker(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)  # a shared secret must be private (read_secret checks)
    async with radon_host(secret, "remote") as (proc, line):
        address = line.split()[1]
        async with open_system(shutdown_timeout=5) as system:
            try:
                await system.connect_host(address, secret_file=secret)
                await system.start_host("w1")  # gets the joined host's secret
                ref = await system.spawn(Counter, 3, host="remote")
                assert await _pid(ref) == proc.pid
                watcher, got = await _watcher(system)
                await watcher.ask(Watcher.follow, ref)
                proc.kill()
                with trio.fail_after(10):
                    await got.wait()
                assert await ref.ask(Counter.incr) == 4
                assert await _pid(ref) not in (proc.pid, os.getpid())
            finally:
                kill_workers(system)


# ----------------------------------------------------------------------
# Remote children in group restarts, and remote handler failures
# ----------------------------------------------------------------------
async def _events(recorder: Ref[Recorder], n: int) -> list[tuple[Any, ...]]:
    with trio.fail_after(20):
        return await recorder.ask(Recorder.after, n)


async def test_one_for_all_stops_and_restarts_a_remote_child_in_order_when_a_sibling_fails() -> (
    None
):
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        sup = await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec, 10), name="b", host="w1"),
                ChildSpec(Member, args=("c", rec), name="c"),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        w1 = await b.ask(Member.where)
        assert w1 != os.getpid()
        assert await b.ask(Member.incr, 5) == 15
        with pytest.raises(ValueError, match="boom at"):
            await a.ask(Member.boom)
        events = await _events(rec, 9)
        assert [e[:2] for e in events[3:]] == [
            ("stop", "c"),
            ("stop", "b"),
            ("stop", "a"),
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
        ]
        assert events[4][2:] == (w1, 15)  # its on_stop ran on its host, before a's
        assert events[7][2] == w1  # started again on its host, which is up
        assert system.lookup("b") == b
        assert await b.ask(Member.get) == 10  # a fresh instance, behind the same Ref
        infos = await sup.ask(Supervisor.which_children)
        assert [(i.id, i.restarts) for i in infos] == [("a", 1), ("b", 1), ("c", 1)]


async def test_rest_for_one_after_a_remote_failure_keeps_the_messages_queued_behind_it() -> None:
    async with cluster("w1", "w2") as system:
        rec = await system.spawn(Recorder)
        sup = await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec), name="b", host="w1"),
                ChildSpec(Member, args=("c", rec), name="c", host="w2"),
            ],
            strategy=Strategy.REST_FOR_ONE,
        )
        a, b, c = (system.lookup(n) for n in "abc")
        await _events(rec, 3)
        await a.ask(Member.incr, 7)
        await c.ask(Member.incr, 3)
        w1, w2 = await b.ask(Member.where), await c.ask(Member.where)
        # FIFO through one Ref: the five increments queue on w1 behind the failure
        b.tell(Member.boom)
        for _ in range(5):
            b.tell(Member.incr)
        events = await _events(rec, 7)
        assert events[3:] == [
            ("stop", "c", w2, 3),
            ("stop", "b", w1, 0),
            ("start", "b", w1),
            ("start", "c", w2),
        ]
        assert await b.ask(Member.get) == 5  # handed back, handled by the new incarnation
        assert await c.ask(Member.get) == 0
        assert await a.ask(Member.get) == 7  # before the failed child: untouched
        infos = await sup.ask(Supervisor.which_children)
        assert [(i.id, i.restarts) for i in infos] == [("a", 0), ("b", 1), ("c", 1)]


async def test_a_group_restart_whose_remote_child_loses_its_host_meanwhile_restarts_elsewhere() -> (
    None
):
    async with cluster("w1", "w2") as system:
        rec = await system.spawn(Recorder)
        entered, release = trio.Event(), trio.Event()
        latch = await system.spawn(Latch, entered, release)
        sup = await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec, 1), name="b", host="w1", shutdown=60),
                ChildSpec(Member, args=("c", rec), name="c"),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        await _events(rec, 3)
        w1 = await b.ask(Member.where)
        w2 = await _pid(await system.spawn(Counter, host="w2"))
        errors: list[BaseException] = []

        async def busy() -> None:
            try:
                await b.ask(Member.wait_on, latch)
            except HostDown as exc:
                errors.append(exc)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(busy)
                with trio.fail_after(10):
                    await entered.wait()  # b is in a turn: the terminate waits for it
                with pytest.raises(ValueError, match="boom at"):
                    await a.ask(Member.boom)
                await _events(rec, 4)  # c stopped: the supervisor now waits for b
                os.kill(w1, signal.SIGKILL)
        finally:
            release.set()
        events = await _events(rec, 8)
        assert events[3:] == [
            ("stop", "c", os.getpid(), 0),
            ("stop", "a", os.getpid(), 0),
            ("start", "a", os.getpid()),
            ("start", "b", w2),
            ("start", "c", os.getpid()),
        ]
        assert len(errors) == 1  # the ask in flight on the dead host
        assert await b.ask(Member.get) == 1
        assert await b.ask(Member.where) == w2
        infos = await sup.ask(Supervisor.which_children)
        assert [(i.id, i.restarts) for i in infos] == [("a", 1), ("b", 1), ("c", 1)]


async def test_remote_handler_failures_count_against_the_origin_supervisors_intensity() -> None:
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        inner_spec = Supervisor.spec(
            [ChildSpec(Member, args=("b", rec), name="b", host="w1")],
            max_restarts=1,
            within=60,
            name="inner",
        )
        await system.spawn(Supervisor, [inner_spec])
        inner, b = system.lookup("inner"), system.lookup("b")
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, inner)
        w1 = await b.ask(Member.where)
        await b.ask(Member.incr, 4)
        with pytest.raises(ValueError, match="boom at 4") as first:
            await b.ask(Member.boom)
        assert "remote traceback" in "".join(first.value.__notes__)
        assert await b.ask(Member.incr) == 1  # restarted once, fresh, on its host
        assert await b.ask(Member.where) == w1
        (info,) = await inner.ask(Supervisor.which_children)
        assert info.restarts == 1
        with pytest.raises(ValueError, match="boom at"):
            await b.ask(Member.boom)
        with trio.fail_after(20):
            await got.wait()  # the second restart exceeded the limit: inner gave up
        assert await watcher.ask(Watcher.seen) == [(inner.id, "RestartIntensityExceeded", False)]
        ((_, cause, notes),) = await watcher.ask(Watcher.causes)
        assert cause == "ValueError"  # the remote exception itself, with its traceback
        assert "remote traceback (host 'w1')" in notes
        assert "boom at 1" in notes
        # the outer supervisor restarted the subtree: a new child on w1
        new_b = system.lookup("b")
        assert new_b != b
        assert await new_b.ask(Member.get) == 0
        assert await new_b.ask(Member.where) == w1


async def test_directives_apply_to_remote_failures_resume_keeps_state_escalate_gives_up() -> None:
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        directives = {KeyError: Directive.RESUME, ValueError: Directive.ESCALATE}
        inner_spec = Supervisor.spec(
            [ChildSpec(Member, args=("b", rec), name="b", host="w1", directives=directives)],
            name="inner",
        )
        await system.spawn(Supervisor, [inner_spec])
        inner, b = system.lookup("inner"), system.lookup("b")
        watcher, got = await _watcher(system)
        await watcher.ask(Watcher.follow, inner)
        w1 = await b.ask(Member.where)
        await b.ask(Member.incr, 5)
        with pytest.raises(KeyError):
            await b.ask(Member.boom, "key")
        assert await b.ask(Member.incr) == 6  # resumed: the remote instance kept its state
        (info,) = await inner.ask(Supervisor.which_children)
        assert info.restarts == 0
        with pytest.raises(ValueError, match="boom at"):
            await b.ask(Member.boom)
        with trio.fail_after(20):
            await got.wait()
        assert await watcher.ask(Watcher.seen) == [(inner.id, "Escalated", False)]
        ((_, cause, _),) = await watcher.ask(Watcher.causes)
        assert cause == "ValueError"
        events = await _events(rec, 3)
        assert events == [("start", "b", w1), ("stop", "b", w1, 6), ("start", "b", w1)]
        assert await system.lookup("b").ask(Member.get) == 0


async def test_a_remote_child_still_in_its_turn_at_its_shutdown_timeout_hands_its_queue_later() -> (
    None
):
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        entered, release = trio.Event(), trio.Event()
        latch = await system.spawn(Latch, entered, release)
        await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec), name="b", host="w1", shutdown=0.2),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        await _events(rec, 2)
        w1 = await b.ask(Member.where)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(b.ask, Member.wait_on, latch)
                with trio.fail_after(10):
                    await entered.wait()
                for _ in range(3):
                    b.tell(Member.incr)  # queued on w1 behind the turn
                with pytest.raises(ValueError, match="boom at"):
                    await a.ask(Member.boom)
                events = await _events(rec, 5)
                # b did not reach a turn boundary in time: a new incarnation runs
                # beside the old one, which is left to end its turn
                assert [e[:2] for e in events[2:]] == [
                    ("stop", "a"),
                    ("start", "a"),
                    ("start", "b"),
                ]
                assert events[4][2] == w1
                assert await b.ask(Member.get) == 0
                release.set()  # the old turn ends (its asker gets its reply) and it retires
        finally:
            release.set()
        with trio.fail_after(20):
            # its three queued increments reached the new incarnation, through the origin
            assert await b.ask(Member.at_least, 3) == 3
        events = await _events(rec, 6)
        assert events[5] == ("stop", "b", w1, 0)  # the old one's on_stop, when it retired


async def test_a_migrated_atoms_handler_failure_is_decided_by_its_supervisor_at_the_origin() -> (
    None
):
    async with cluster("w1", "w2") as system:
        rec = await system.spawn(Recorder)
        sup = await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec), name="b", host="w1"),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        await system.migrate(b, to="w2")
        w2 = await b.ask(Member.where)
        await b.ask(Member.incr, 2)
        await a.ask(Member.incr, 3)
        with pytest.raises(ValueError, match="boom at 2"):
            await b.ask(Member.boom)
        events = await _events(rec, 6)
        assert [e[:2] for e in events[2:]] == [
            ("stop", "b"),
            ("stop", "a"),
            ("start", "a"),
            ("start", "b"),
        ]
        assert events[2][2:] == (w2, 2)
        assert events[5][2] == w2  # started again where it was retired
        assert await b.ask(Member.get) == 0
        assert await a.ask(Member.get) == 0  # its sibling restarted with it
        infos = await sup.ask(Supervisor.which_children)
        assert [(i.id, i.restarts) for i in infos] == [("a", 1), ("b", 1)]
        # a local atom migrated out: the root supervisor at the origin restarts it
        local = await system.spawn(Member, "l", rec, 5)
        await system.migrate(local, to="w1")
        await local.ask(Member.incr)
        with pytest.raises(ValueError, match="boom at 6"):
            await local.ask(Member.boom)
        assert await local.ask(Member.get) == 5
        roots = await system.root.ask(Supervisor.which_children)
        assert [i.restarts for i in roots if i.ref == local] == [1]


async def test_a_group_restart_with_no_host_left_brings_the_remote_child_here_and_it_can_move() -> (
    None
):
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        entered, release = trio.Event(), trio.Event()
        latch = await system.spawn(Latch, entered, release)
        await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec, 4), name="b", host="w1", shutdown=60),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        await _events(rec, 2)
        w1 = await b.ask(Member.where)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_ask_ignoring_host_down, b, latch)
                with trio.fail_after(10):
                    await entered.wait()
                with pytest.raises(ValueError, match="boom at"):
                    await a.ask(Member.boom)
                os.kill(w1, signal.SIGKILL)  # while the supervisor waits for b's turn
        finally:
            release.set()
        events = await _events(rec, 5)
        assert events[2:] == [
            ("stop", "a", os.getpid(), 0),
            ("start", "a", os.getpid()),
            ("start", "b", os.getpid()),  # no other host: here, an ordinary local atom
        ]
        assert await b.ask(Member.incr) == 5
        await system.start_host("w2")
        with trio.fail_after(20):
            await system.migrate(b, to="w2")
        assert await b.ask(Member.where) not in (w1, os.getpid())
        assert await b.ask(Member.get) == 5


async def _ask_ignoring_host_down(ref: Ref[Member], latch: Ref[Latch]) -> None:
    with contextlib.suppress(HostDown):
        await ref.ask(Member.wait_on, latch)


async def test_a_watcher_on_the_host_of_a_restarted_remote_child_keeps_hearing_of_it() -> None:
    from placement_atoms import Watcher as RemoteWatcher

    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        sup = await system.spawn(
            Supervisor, [ChildSpec(Member, args=("b", rec), name="b", host="w1")]
        )
        b = system.lookup("b")
        watcher = await system.spawn(RemoteWatcher, host="w1")
        await watcher.ask(RemoteWatcher.follow, b)  # on w1, right on b's cell there
        with pytest.raises(ValueError, match="boom at 0"):
            await b.ask(Member.boom)
        with trio.fail_after(20):
            downs = await watcher.ask(RemoteWatcher.downs_after, 1)
        assert downs == [(b.id, "RemoteError", False)]  # through the origin now
        assert await b.ask(Member.incr) == 1
        await sup.ask(Supervisor.terminate_child, "b")
        with trio.fail_after(20):
            downs = await watcher.ask(RemoteWatcher.downs_after, 2)
        assert downs[1] == (b.id, "NoneType", True)


async def test_a_child_that_migrated_back_here_is_not_started_twice_by_a_group_restart() -> None:
    async with cluster("w1") as system:
        rec = await system.spawn(Recorder)
        sup = await system.spawn(
            Supervisor,
            [
                ChildSpec(Member, args=("a", rec), name="a"),
                ChildSpec(Member, args=("b", rec), name="b", host="w1"),
            ],
            strategy=Strategy.ONE_FOR_ALL,
        )
        a, b = system.lookup("a"), system.lookup("b")
        await system.migrate(b, to="local")
        await b.ask(Member.incr, 3)
        with pytest.raises(ValueError, match="boom at 0"):
            await a.ask(Member.boom)
        await sup.ask(Supervisor.which_children)  # answered once the restart is over
        events = await _events(rec, 4)
        assert [e[:2] for e in events] == [
            ("start", "a"),
            ("start", "b"),
            ("stop", "a"),
            ("start", "a"),
        ]
        assert await b.ask(Member.where) == os.getpid()
        assert await b.ask(Member.get) == 3  # the one instance, here, untouched
