"""Supervisors: child specs, one-for-one, restart types (one test per OTP rule)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from supervisor_atoms import Boom, Worker, events_of, spec

from radon_actors import (
    Atom,
    AtomStopped,
    ChildSpec,
    Restart,
    SpawnError,
    Supervisor,
    SupervisorError,
    handler,
    open_system,
)


async def test_children_start_in_declaration_order() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a"), spec("b"), spec("c")])
        assert events_of("start") == ["a", "b", "c"]


async def test_children_stop_in_reverse_order() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a"), spec("b"), spec("c")])
        await system.stop(sup)
        assert events_of("stop") == ["c", "b", "a"]


async def test_child_failing_to_start_fails_supervisor_start_and_stops_started_children() -> None:
    class Broken(Worker):
        def on_start(self) -> None:
            raise RuntimeError("no")

    async with open_system() as system:
        with pytest.raises(SpawnError):
            await system.spawn(
                Supervisor, [spec("a"), ChildSpec(Broken, args=("x",), name="x"), spec("c")]
            )
        assert events_of("start") == ["a"]
        assert events_of("stop") == ["a"]


async def test_one_for_one_restarts_only_the_failed_child_with_fresh_state() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a"), spec("b")])
        a, b = system.lookup("a"), system.lookup("b")
        await a.ask(Worker.incr)
        await b.ask(Worker.incr)
        with pytest.raises(Boom, match="boom"):
            await a.ask(Worker.fail, Boom("boom"))
        assert await a.ask(Worker.get) == 0  # fresh state from the spec's args
        assert await b.ask(Worker.get) == 1  # sibling untouched
        assert events_of("stop") == ["a"]
        assert events_of("start") == ["a", "b", "a"]


async def test_restart_keeps_the_ref_and_the_queued_messages() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a")])
        a = system.lookup("a")
        results: list[object] = []

        async def ask_failing() -> None:
            with pytest.raises(Boom, match="boom"):
                await a.ask(Worker.afail, Boom("boom"))
            results.append("failed")

        async def ask_after_failure() -> None:
            results.append(await a.ask(Worker.incr))

        gate = trio.Event()
        a.tell(Worker.block, gate)  # keeps the atom busy while the rest queue up
        async with trio.open_nursery() as nursery:
            # The failing message is queued first, two more behind it.
            for task in (ask_failing, ask_after_failure, ask_after_failure):
                nursery.start_soon(task)
                await trio.testing.wait_all_tasks_blocked()
            gate.set()
        assert "failed" in results
        results.remove("failed")
        assert sorted(results) == [1, 2]  # both ran on the new incarnation
        assert system.lookup("a") == a


async def test_failing_asker_always_gets_the_exception() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a")])
        a = system.lookup("a")
        for exc in (Boom("sync"), KeyError("k")):
            with pytest.raises(type(exc)):
                await a.ask(Worker.fail, exc)
        with pytest.raises(Boom):
            await a.ask(Worker.afail, Boom("async"))
        assert await a.ask(Worker.incr) == 1


async def test_permanent_child_is_restarted_after_a_normal_stop() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a", Restart.PERMANENT)])
        a = system.lookup("a")
        await a.ask(Worker.incr)
        await a.ask(Worker.quit)
        assert await a.ask(Worker.get) == 0
        assert events_of("start") == ["a", "a"]


async def test_transient_child_is_restarted_after_a_failure() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec("a", Restart.TRANSIENT)])
        a = system.lookup("a")
        with pytest.raises(Boom):
            await a.ask(Worker.fail, Boom())
        assert await a.ask(Worker.incr) == 1
        assert events_of("start") == ["a", "a"]


async def test_transient_child_normal_stop_is_final_and_not_a_failure() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a", Restart.TRANSIENT)], max_restarts=0)
        a = system.lookup("a")
        await a.ask(Worker.quit)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(AtomStopped):
            await a.ask(Worker.get)
        # Not a failure: with max_restarts=0 a failure would have taken the supervisor down.
        (info,) = await sup.ask(Supervisor.which_children)
        assert info.id == "a"
        assert info.ref is None  # spec kept, child not running
        assert await sup.ask(Supervisor.count_children) == {"specs": 1, "active": 0}


async def test_temporary_child_is_never_restarted() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a", Restart.TEMPORARY)])
        a = system.lookup("a")
        with pytest.raises(Boom):
            await a.ask(Worker.fail, Boom())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(AtomStopped):
            await a.ask(Worker.get)
        assert await sup.ask(Supervisor.which_children) == []  # its spec is forgotten


async def test_start_child_adds_a_child_last_in_order() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a")])
        ref = await sup.ask(Supervisor.start_child, spec("b"))
        assert await ref.ask(Worker.incr) == 1
        await system.stop(sup)
        assert events_of("stop") == ["b", "a"]


async def test_start_child_with_a_duplicate_id_is_refused_and_supervisor_survives() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a")])
        with pytest.raises(SupervisorError, match="unique name"):
            await sup.ask(Supervisor.start_child, spec("a"))
        assert events_of("start") == ["a"]  # nothing restarted
        assert [c.id for c in await sup.ask(Supervisor.which_children)] == ["a"]


async def test_terminate_child_then_restart_child_and_delete_child() -> None:
    async with open_system() as system:
        sup = await system.spawn(Supervisor, [spec("a"), spec("b")])
        await sup.ask(Supervisor.terminate_child, "a")
        assert await sup.ask(Supervisor.count_children) == {"specs": 2, "active": 1}
        ref = await sup.ask(Supervisor.restart_child, "a")
        assert await ref.ask(Worker.incr) == 1
        await sup.ask(Supervisor.terminate_child, ref)
        await sup.ask(Supervisor.delete_child, "a")
        assert [c.id for c in await sup.ask(Supervisor.which_children)] == ["b"]
        with pytest.raises(SupervisorError, match="no child"):
            await sup.ask(Supervisor.restart_child, "a")


async def test_duplicate_child_ids_are_rejected() -> None:
    async with open_system() as system:
        with pytest.raises(SpawnError) as info:
            await system.spawn(Supervisor, [ChildSpec(Worker), ChildSpec(Worker)])
        assert "unique" in str(info.value.__cause__)


class StopsThenFails(Worker):
    @handler
    def stop_and_fail(self) -> None:
        self.stop()
        raise Boom("after stop")

    @handler
    async def astop_and_fail(self) -> None:
        self.stop()
        await trio.lowlevel.checkpoint()
        raise Boom("after stop")


@pytest.mark.parametrize("h", [StopsThenFails.stop_and_fail, StopsThenFails.astop_and_fail])
async def test_permanent_child_that_stops_itself_then_fails_is_restarted_once(h: object) -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [ChildSpec(StopsThenFails, args=("s",), name="s")], max_restarts=1
        )
        s = system.lookup("s")
        with pytest.raises(Boom):
            await s.ask(h)  # type: ignore[call-overload]
        await trio.testing.wait_all_tasks_blocked()
        assert events_of("start") == ["s", "s"]  # the failure's restart; the stop is dropped
        assert await s.ask(Worker.incr) == 1


async def _open_with_root(root: ChildSpec) -> None:
    async with open_system(root=root):
        pass  # pragma: no cover


async def test_root_spec_child_failing_to_start_makes_open_system_raise() -> None:
    class Broken(Worker):
        def on_start(self) -> None:
            raise RuntimeError("no")

    with pytest.raises(SpawnError):
        await _open_with_root(Supervisor.spec([spec("a"), ChildSpec(Broken, name="x")]))
    assert events_of("stop") == ["a"]


async def test_root_must_be_a_supervisor_spec() -> None:
    with pytest.raises(TypeError, match="Supervisor"):
        await _open_with_root(spec("a"))


class Owner(Atom):
    """A plain atom that owns a supervisor."""

    def __init__(self) -> None:
        self.sup: Any = None

    async def on_start(self) -> None:
        self.sup = await self.spawn(Supervisor, [spec("a")])

    @handler
    def get_sup(self) -> Any:
        return self.sup


async def test_supervisor_under_a_plain_atom_survives_errors_in_its_own_handlers() -> None:
    async with open_system() as system:
        owner = await system.spawn(Owner)
        sup = await owner.ask(Owner.get_sup)
        with pytest.raises(SupervisorError):
            await sup.ask(Supervisor.restart_child, "nope")
        await trio.testing.wait_all_tasks_blocked()
        assert events_of("start") == ["a"]  # the subtree was not restarted


def test_child_spec_args_take_any_sequence_but_not_a_bare_string() -> None:
    assert ChildSpec(Worker, args=["x", 1]).args == ("x", 1)
    with pytest.raises(TypeError, match=r"args=\('carol',\)"):
        ChildSpec(Worker, args="carol")  # type: ignore[call-overload]
