"""``Atom.spawn(..., sandbox=...)``: a parent chooses where its child runs, natively
and from inside the sandbox (the standard's ``isolation`` of a spawn request)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from sandbox_atoms import Counter, Relay, SandboxedCounter

from radon_actors import Ref, SandboxConfig, SandboxDenied, open_system
from radon_actors.runtime._cell import AtomCell
from radon_actors.sandbox._instance import GuestAtom
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")

PARENTS = [
    pytest.param(False, id="native-parent"),
    pytest.param(True, id="sandboxed-parent"),
    pytest.param(SandboxConfig(threaded=True), id="threaded-parent"),
]


def _cell(ref: Ref[Any]) -> AtomCell:
    cell = cell_of(ref)
    assert cell is not None
    return cell


@pytest.mark.parametrize(
    ("cls", "choice", "sandboxed"),
    [
        pytest.param(Counter, None, False, id="native-class-default"),
        pytest.param(Counter, True, True, id="native-class-sandboxed"),
        pytest.param(Counter, False, False, id="native-class-native"),
        pytest.param(SandboxedCounter, None, True, id="sandboxed-class-default"),
        pytest.param(SandboxedCounter, False, False, id="sandboxed-class-native"),
        pytest.param(SandboxedCounter, True, True, id="sandboxed-class-sandboxed"),
    ],
)
async def test_a_native_parent_chooses_where_its_child_runs(
    cls: type[Counter], choice: bool | None, sandboxed: bool
) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay)
        child = await relay.ask(Relay.make_child_as, cls, 4, choice)
        cell = _cell(child)
        assert isinstance(cell.instance, GuestAtom) is sandboxed
        if sandboxed:
            # sandbox=True means the default limits, as for System.spawn.
            assert cell.instance.config == SandboxConfig()
        assert cell.parent is _cell(relay)  # still the parent's child
        assert await child.ask(Counter.incr, 1) == 5
        await system.stop(relay)
        assert cell.stopped.is_set()  # children stop with their parent


SANDBOXED_PARENTS = [
    pytest.param(SandboxConfig(fuel=333_333_333), id="sandboxed-parent"),
    pytest.param(SandboxConfig(threaded=True), id="threaded-parent"),
]


@pytest.mark.parametrize("parent", SANDBOXED_PARENTS)
@pytest.mark.parametrize(
    ("cls", "choice"),
    [
        pytest.param(Counter, None, id="native-class-default"),
        pytest.param(Counter, True, id="native-class-sandboxed"),
        pytest.param(SandboxedCounter, None, id="sandboxed-class-default"),
        pytest.param(SandboxedCounter, True, id="sandboxed-class-sandboxed"),
    ],
)
async def test_children_of_a_sandboxed_atom_stay_sandboxed(
    parent: SandboxConfig, cls: type[Counter], choice: bool | None
) -> None:
    # Whatever the child's class says, a sandboxed parent's child runs in
    # WebAssembly, with the parent's limits (the host's policy for that tree).
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=parent)
        child = await relay.ask(Relay.make_child_as, cls, 4, choice)
        cell = _cell(child)
        assert isinstance(cell.instance, GuestAtom)
        assert cell.instance.config == parent
        assert cell.parent is _cell(relay)
        assert await child.ask(Counter.incr, 1) == 5


@pytest.mark.parametrize("parent", SANDBOXED_PARENTS)
async def test_a_sandboxed_atom_cannot_spawn_a_native_child(parent: SandboxConfig) -> None:
    # Escape 2 of issue #15: a native child ran code outside the sandbox.
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=parent)
        for cls in (Counter, SandboxedCounter):
            with pytest.raises(SandboxDenied, match="native_children=True"):
                await relay.ask(Relay.make_child_as, cls, 4, False)
        assert _cell(relay).children == {}
        # ... unless the host allows it for that atom.
        trusted = await system.spawn(Relay, sandbox=attrs.evolve(parent, native_children=True))
        child = await trusted.ask(Relay.make_child_as, Counter, 4, False)
        assert not isinstance(_cell(child).instance, GuestAtom)


async def test_native_parent_passes_a_sandbox_config() -> None:
    config = SandboxConfig(fuel=123_456_789, memory=64 << 20)
    async with open_system() as system:
        relay = await system.spawn(Relay)
        child = await relay.ask(Relay.make_child_as, Counter, 1, config)
        instance = _cell(child).instance
        assert isinstance(instance, GuestAtom)
        assert instance.config == config
        assert await child.ask(Counter.incr, 1) == 2


@pytest.mark.parametrize("parent", PARENTS)
async def test_a_bad_sandbox_choice_raises_type_error_in_the_parent(parent: Any) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=parent)
        with pytest.raises(TypeError, match="sandbox"):
            await relay.ask(Relay.make_child_as, Counter, 1, "yes")


async def test_handlers_that_cannot_suspend_run_inline_as_natively(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Inline turns go through GuestAtom.call_now, queued ones through GuestAtom.call.
    calls: list[str] = []
    call_now, call = GuestAtom.call_now, GuestAtom.call

    def counting_now(self: GuestAtom, handler: str, *rest: Any) -> Any:
        calls.append(f"inline {handler}")
        return call_now(self, handler, *rest)

    async def counting(self: GuestAtom, handler: str, *rest: Any) -> Any:
        calls.append(f"queued {handler}")
        return await call(self, handler, *rest)

    monkeypatch.setattr(GuestAtom, "call_now", counting_now)
    monkeypatch.setattr(GuestAtom, "call", counting)
    async with open_system() as system:
        counter = await system.spawn(Counter, 3, sandbox=True)
        relay = await system.spawn(Relay, sandbox=True)
        assert await counter.ask(Counter.get) == 3  # def
        assert await counter.ask(Counter.aget) == 3  # async def without an await
        assert await relay.ask(Relay.forward, counter, 1) == 9  # async def that awaits
        assert calls[:3] == ["inline get", "inline aget", "queued forward"]
        # A threaded atom queues every turn (its guest runs on a worker thread).
        threaded = await system.spawn(Counter, 1, sandbox=SandboxConfig(threaded=True))
        calls.clear()
        assert await threaded.ask(Counter.aget) == 1
        assert calls == ["queued aget"]
