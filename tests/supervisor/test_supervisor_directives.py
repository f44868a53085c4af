"""Directives chosen per exception type; crash reports; top-level atoms' defaults."""

from __future__ import annotations

import pytest
import structlog.testing
import trio
import trio.testing
from supervisor_atoms import Boom, Fatal, Worker, events_of

from radon_actors import (
    Atom,
    AtomStopped,
    ChildSpec,
    Directive,
    Escalated,
    Supervisor,
    handler,
    open_system,
)


class SubBoom(Boom):
    pass


def spec_with_directives(label: str, **directives: Directive) -> ChildSpec:
    table = {
        {"Boom": Boom, "Fatal": Fatal, "SubBoom": SubBoom, "Exception": Exception}[k]: v
        for k, v in directives.items()
    }
    return ChildSpec(Worker, args=(label,), name=label, directives=table)


async def test_directive_resume_keeps_state_and_drops_only_the_failing_message() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor, [spec_with_directives("a", Boom=Directive.RESUME)], max_restarts=0
        )
        a = system.lookup("a")
        await a.ask(Worker.incr)
        with pytest.raises(Boom):
            await a.ask(Worker.fail, Boom())
        assert await a.ask(Worker.incr) == 2  # state kept
        assert events_of("start") == ["a"]  # no restart, none counted (max_restarts=0)


async def test_directive_restart_is_the_default_and_builds_fresh_state() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec_with_directives("a", Fatal=Directive.STOP)])
        a = system.lookup("a")
        await a.ask(Worker.incr)
        with pytest.raises(Boom):
            await a.ask(Worker.fail, Boom())
        assert await a.ask(Worker.get) == 0


async def test_directive_stop_stops_even_a_permanent_child_and_fails_queued_asks() -> None:
    async with open_system() as system:
        sup = await system.spawn(
            Supervisor, [spec_with_directives("a", Fatal=Directive.STOP), spec_with_directives("b")]
        )
        a = system.lookup("a")
        outcomes: list[str] = []

        async def ask(h: object, *args: object) -> None:
            try:
                await a.ask(h, *args)  # type: ignore[call-overload]
            except Fatal:
                outcomes.append("fatal")
            except AtomStopped:
                outcomes.append("stopped")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, Worker.afail, Fatal())
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, Worker.incr)
        assert sorted(outcomes) == ["fatal", "stopped"]  # nobody hangs
        infos = await sup.ask(Supervisor.which_children)
        assert [(i.id, i.ref is None) for i in infos] == [("a", True), ("b", False)]


async def test_directive_most_specific_exception_type_wins() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor,
            [spec_with_directives("a", Exception=Directive.STOP, SubBoom=Directive.RESUME)],
        )
        a = system.lookup("a")
        await a.ask(Worker.incr)
        with pytest.raises(SubBoom):
            await a.ask(Worker.fail, SubBoom())
        assert await a.ask(Worker.get) == 1  # resumed (SubBoom), not stopped (Exception)
        with pytest.raises(Boom):
            await a.ask(Worker.fail, Boom())
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(AtomStopped):
            await a.ask(Worker.get)


async def test_directive_of_the_child_spec_overrides_the_supervisors() -> None:
    async with open_system() as system:
        await system.spawn(
            Supervisor,
            [spec_with_directives("a", Boom=Directive.RESUME), spec_with_directives("b")],
            directives={Boom: Directive.STOP},
        )
        with pytest.raises(Boom):
            await system.lookup("a").ask(Worker.fail, Boom())
        with pytest.raises(Boom):
            await system.lookup("b").ask(Worker.fail, Boom())
        await trio.testing.wait_all_tasks_blocked()
        assert await system.lookup("a").ask(Worker.incr) == 1  # resumed
        with pytest.raises(LookupError):
            system.lookup("b")  # stopped by the supervisor-wide directive


async def test_directive_escalate_fails_the_supervisor_and_its_parent_restarts_it() -> None:
    mid = Supervisor.spec(
        [spec_with_directives("a", Fatal=Directive.ESCALATE), spec_with_directives("b")], name="mid"
    )
    async with open_system(root=Supervisor.spec([mid])) as system:
        await system.lookup("b").ask(Worker.incr)
        with pytest.raises(Fatal):
            await system.lookup("a").ask(Worker.fail, Fatal())
        await trio.testing.wait_all_tasks_blocked()
        assert events_of("stop") == ["b", "a"]  # mid stopped all its children
        assert events_of("start") == ["a", "b", "a", "b"]  # root restarted mid
        assert await system.lookup("b").ask(Worker.get) == 0
        (info,) = await system.root.ask(Supervisor.which_children)
        assert info.restarts == 1


async def _escalate_to_root() -> None:
    async with open_system(
        root=Supervisor.spec([spec_with_directives("a", Fatal=Directive.ESCALATE)])
    ) as system:
        with pytest.raises(Fatal):
            await system.lookup("a").ask(Worker.fail, Fatal())
        await trio.sleep_forever()  # cancelled: the system crashes


async def test_directive_escalate_at_the_root_crashes_the_system_with_escalated() -> None:
    with pytest.raises(Escalated) as info:
        await _escalate_to_root()
    assert isinstance(info.value.__cause__, Fatal)


async def test_crash_report_has_atom_id_name_restart_count_and_reason() -> None:
    async with open_system() as system:
        await system.spawn(Supervisor, [spec_with_directives("a")])
        a = system.lookup("a")
        with structlog.testing.capture_logs() as logs:
            for _ in range(2):
                with pytest.raises(Boom):
                    await a.ask(Worker.fail, Boom("bad input"))
                await trio.testing.wait_all_tasks_blocked()
        crashes = [e for e in logs if e["event"] == "atom.crashed"]
        assert [c["restarts"] for c in crashes] == [0, 1]
        for c in crashes:
            assert c["atom_id"] == a.id
            assert c["atom_name"] == "a"
            assert c["reason"] == "Boom('bad input')"
            assert c["directive"] == "restart"
            assert c["log_level"] == "error"


async def test_top_level_atom_default_is_restart_without_limit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Worker, "top")
        for _ in range(20):  # far beyond any intensity within 5 s
            await ref.ask(Worker.incr)
            with pytest.raises(Boom):
                await ref.ask(Worker.fail, Boom())
        assert await ref.ask(Worker.incr) == 1
        assert events_of("start") == ["top"] * 21


async def test_top_level_atom_stopping_itself_is_final() -> None:
    async with open_system() as system:
        ref = await system.spawn(Worker, "top")
        await ref.ask(Worker.quit)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(AtomStopped):
            await ref.ask(Worker.get)
        assert await system.root.ask(Supervisor.which_children) == []


class Parent(Atom):
    """A plain (non-supervisor) atom with a child of its own."""

    def __init__(self) -> None:
        self.child: object = None

    async def on_start(self) -> None:
        self.child = await self.spawn(Worker, "child")

    @handler
    def get_child(self) -> object:
        return self.child


async def test_child_of_a_plain_atom_restarts_in_place_by_default() -> None:
    async with open_system() as system:
        parent = await system.spawn(Parent)
        child = await parent.ask(Parent.get_child)
        await child.ask(Worker.incr)  # type: ignore[attr-defined]
        with pytest.raises(Boom):
            await child.ask(Worker.fail, Boom())  # type: ignore[attr-defined]
        assert await child.ask(Worker.incr) == 1  # type: ignore[attr-defined]
