"""Sandboxed atoms: the same classes give the same results natively and in WebAssembly."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import structlog
import trio
import trio.testing
from sandbox_atoms import (
    Boom,
    Counter,
    Faulty,
    Gatekeeper,
    Overdrawn,
    Point,
    Relay,
    SandboxedCounter,
    Starter,
)

from radon_actors import (
    AtomStopped,
    BadArguments,
    DeadlockError,
    MessageNotPortable,
    Ref,
    SandboxConfig,
    SpawnError,
    open_system,
)
from radon_actors.sandbox._instance import GuestAtom
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")


@dataclass(frozen=True)
class HostOnly:
    """A class the guest cannot import (this test module is not in the bundle)."""

    n: int


MODES = [
    pytest.param(False, id="native"),
    pytest.param(True, id="sandboxed"),
    # Guest calls on worker threads; host imports hop back to trio.
    pytest.param(SandboxConfig(threaded=True), id="threaded"),
]


def _instance(ref: Ref[Any]) -> Any:
    cell = cell_of(ref)
    assert cell is not None
    return cell.instance


@pytest.mark.parametrize("sandbox", MODES)
async def test_sync_handlers_same_results(sandbox: Any) -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, 5, sandbox=sandbox)
        assert isinstance(_instance(ref), GuestAtom) is bool(sandbox)
        assert await ref.ask(Counter.incr, 3) == 8
        assert await ref.ask("incr") == 9
        assert await ref.ask(Counter.incr, by=10) == 19
        assert await ref.ask(Counter.move, Point(1, 2), 5) == Point(6, 2)
        value = {"a": [1, 2.5, None], "b": (b"\x00\xff", "é✓"), "c": {3, 4}}
        assert await ref.ask(Counter.echo, value) == value
        ref.tell(Counter.incr, 1)
        assert await ref.ask(Counter.get) == 20
        assert await ref.ask(Counter.hue, 0.0, 1.0, 0.0) == pytest.approx(1 / 3)
        assert await ref.ask(Counter.shout, "hi") == "HI"


@pytest.mark.parametrize("sandbox", MODES)
async def test_exceptions_reach_the_asker(sandbox: Any) -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, 1, sandbox=sandbox)
        await ref.ask(Counter.incr, 1)
        with pytest.raises(Boom, match="bad thing") as info:
            await ref.ask(Counter.fail, "bad thing")
        notes = "\n".join(getattr(info.value, "__notes__", []))
        assert "raised in handler Counter.fail" in notes
        if sandbox:
            assert "traceback inside the sandbox" in notes
            assert "sandbox_atoms.py" in notes
        # The default directive restarts the atom: state is rebuilt from the spawn args.
        assert await ref.ask(Counter.get) == 1


@pytest.mark.parametrize("sandbox", MODES)
async def test_a_rejection_answers_and_the_guest_keeps_its_state(sandbox: Any) -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, 1, sandbox=sandbox)
        await ref.ask(Counter.incr, 9)
        with pytest.raises(Overdrawn, match="cannot take 50 of 10"):
            await ref.ask(Counter.take, 50)
        with pytest.raises(KeyError):
            await ref.ask(Counter.lookup, "nope")  # declared: @handler(raises=KeyError)
        # No restart: the state the handlers built is still there.
        assert await ref.ask(Counter.take, 4) == 6
        assert await ref.ask(Counter.lookup, "value") == 6


@pytest.mark.parametrize("sandbox", MODES)
async def test_bad_arguments_fail_at_the_sender(sandbox: Any) -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, sandbox=sandbox)
        with pytest.raises(BadArguments, match=r"signature: incr\(by: int = 1\)"):
            await ref.ask(Counter.incr, 1, 2)
        assert await ref.ask(Counter.get) == 0


async def test_unportable_message_fails_at_the_sender() -> None:
    async with open_system() as system:
        ref = await system.spawn(Counter, sandbox=True)
        with pytest.raises(MessageNotPortable, match="cannot cross the sandbox boundary"):
            await ref.ask(Counter.echo, lambda: 1)
        with pytest.raises(MessageNotPortable):
            ref.tell(Counter.echo, lambda: 1)
        # A record, but the guest could not rebuild it: its class is not in there.
        with pytest.raises(MessageNotPortable, match="test_sandbox"):
            await ref.ask(Counter.echo, [HostOnly(1)])
        # Objects of other classes have no portable form (docs/standard.md, Values).
        with pytest.raises(MessageNotPortable, match=r"fractions\.Fraction value cannot cross"):
            await ref.ask(Counter.echo, Fraction(1, 3))
        # Records of the atom's module and Refs are fine.
        assert await ref.ask(Counter.echo, [Point(1, 2), ref]) == [Point(1, 2), ref]
        assert await ref.ask(Counter.get) == 0
        # Natively the same messages are fine.
        native = await system.spawn(Counter)
        assert callable(await native.ask(Counter.echo, lambda: 1))
        assert await native.ask(Counter.echo, HostOnly(2)) == HostOnly(2)


@pytest.mark.parametrize("relay_sandbox", MODES)
@pytest.mark.parametrize("target_sandbox", MODES)
async def test_async_handlers_suspend_for_asks(relay_sandbox: Any, target_sandbox: Any) -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter, 10, sandbox=target_sandbox)
        relay = await system.spawn(Relay, sandbox=relay_sandbox)
        assert await relay.ask(Relay.forward, counter, 2) == 12 + 14
        assert await relay.ask(Relay.history) == [14]
        assert await relay.ask(Relay.forward_failure, counter) == "caught inner"
        # The failure restarted the counter: back to its spawn state.
        assert await counter.ask(Counter.get) == 10


@pytest.mark.parametrize("sandbox", MODES)
async def test_refs_cross_both_ways(sandbox: Any) -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter, sandbox=sandbox)
        relay = await system.spawn(Relay, sandbox=sandbox)
        me = await counter.ask(Counter.me)
        assert me == counter
        assert await me.ask(Counter.incr, 1) == 1
        echoed = await counter.ask(Counter.echo, [relay, counter])
        assert echoed == [relay, counter]
        await relay.ask(Relay.notify, counter, 5)
        assert await counter.ask(Counter.get) == 6


@pytest.mark.parametrize("sandbox", MODES)
async def test_spawn_from_a_handler(sandbox: Any) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=sandbox)
        assert await relay.ask(Relay.make_child, 41) == 42
        assert await relay.ask(Relay.spawn_sandboxed_child, 9) == 10


@pytest.mark.parametrize("sandbox", MODES)
async def test_asking_itself_is_a_deadlock_error(sandbox: Any) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=sandbox)
        with pytest.raises(DeadlockError):
            await relay.ask(Relay.ask_self)


async def test_class_level_default_and_override() -> None:
    async with open_system() as system:
        default = await system.spawn(SandboxedCounter, 1)
        assert isinstance(_instance(default), GuestAtom)
        native = await system.spawn(SandboxedCounter, 1, sandbox=False)
        assert not isinstance(_instance(native), GuestAtom)
        assert await default.ask(SandboxedCounter.incr) == await native.ask(SandboxedCounter.incr)


@pytest.mark.parametrize("sandbox", MODES)
async def test_on_start_and_on_stop_run(sandbox: Any) -> None:
    async with open_system() as system:
        counter = await system.spawn(Counter)
        starter = await system.spawn(Starter, counter, sandbox=sandbox)
        assert await counter.ask(Counter.get) == 100
        assert await starter.ask(Starter.ping) == "pong"
        await system.stop(starter)
        assert await counter.ask(Counter.get) == 1100


@pytest.fixture
def manual_clock() -> trio.testing.MockClock:
    """A clock that moves only when the test jumps it (pytest-trio runs on it).

    Not autojump: in threaded mode the atom's task waits on a worker thread,
    which autojump would take for idleness and fire timers early."""
    return trio.testing.MockClock()


@pytest.mark.parametrize("sandbox", MODES)
async def test_timers_from_the_guest(sandbox: Any, manual_clock: trio.testing.MockClock) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=sandbox)
        assert await relay.ask(Relay.timed, 5.0) is True
        await trio.testing.wait_all_tasks_blocked()  # the timer's task is sleeping
        manual_clock.jump(4)
        await trio.testing.wait_all_tasks_blocked()
        assert await relay.ask(Relay.history) == []
        manual_clock.jump(2)
        await trio.testing.wait_all_tasks_blocked()
        assert await relay.ask(Relay.history) == [99]


@pytest.mark.parametrize("sandbox", MODES)
async def test_log_from_the_guest(sandbox: Any) -> None:
    async with open_system() as system:
        relay = await system.spawn(Relay, sandbox=sandbox)
        with structlog.testing.capture_logs() as logs:
            assert await relay.ask(Relay.log_something, "hello") == "hello"
        said = [e for e in logs if e["event"] == "relay.said"]
        assert len(said) == 1
        assert said[0]["word"] == "hello"
        assert said[0].get("sandboxed", False) is bool(sandbox)


async def test_config_validation() -> None:
    with pytest.raises(ValueError, match="fuel"):
        SandboxConfig(fuel=0)
    async with open_system() as system:
        with pytest.raises(TypeError, match="sandbox="):
            await system.spawn(Counter, sandbox="yes")


@pytest.mark.parametrize("sandbox", MODES)
async def test_stash_and_unstash(sandbox: Any) -> None:
    async with open_system() as system:
        gate = await system.spawn(Gatekeeper, sandbox=sandbox)
        results: list[int] = []
        async with trio.open_nursery() as nursery:

            async def work(x: int) -> None:
                results.append(await gate.ask(Gatekeeper.work, x))

            for x in (1, 2, 3):
                nursery.start_soon(work, x)
                await trio.testing.wait_all_tasks_blocked()
            assert results == []
            await gate.ask(Gatekeeper.opening)
        assert sorted(results) == [10, 20, 30]
        assert await gate.ask(Gatekeeper.history) == [1, 2, 3]


@pytest.mark.parametrize("sandbox", MODES)
async def test_cancelled_timer_and_self_stop(
    sandbox: Any, manual_clock: trio.testing.MockClock
) -> None:
    async with open_system() as system:
        gate = await system.spawn(Gatekeeper, sandbox=sandbox)
        assert await gate.ask(Gatekeeper.timer_then_cancel, 1.0) == (True, False)
        await trio.testing.wait_all_tasks_blocked()
        manual_clock.jump(2)
        await trio.testing.wait_all_tasks_blocked()
        assert await gate.ask(Gatekeeper.history) == []
        assert await gate.ask(Gatekeeper.quit) == "bye"
        with pytest.raises(AtomStopped):
            await gate.ask(Gatekeeper.history)


@pytest.mark.parametrize("sandbox", MODES)
async def test_a_failing_constructor_is_a_spawn_error(sandbox: Any) -> None:
    async with open_system() as system:
        with pytest.raises(SpawnError) as info:
            await system.spawn(Faulty, True, sandbox=sandbox)
        assert isinstance(info.value.__cause__, Boom)
        ok = await system.spawn(Faulty, False, sandbox=sandbox)
        assert await ok.ask(Faulty.ping) == "pong"


async def test_a_result_that_cannot_leave_the_guest() -> None:
    async with open_system() as system:
        native = await system.spawn(Gatekeeper)
        assert callable(await native.ask(Gatekeeper.make_lambda))
        boxed = await system.spawn(Gatekeeper, sandbox=True)
        with pytest.raises(MessageNotPortable, match="cannot leave the sandbox"):
            await boxed.ask(Gatekeeper.make_lambda)


def test_the_guest_side_imports_without_host_packages() -> None:
    # What the guest imports must not need trio, structlog, attrs or wasmtime.
    code = (
        "import sys\n"
        "for name in ('trio', 'structlog', 'wasmtime', 'attrs', 'outcome'):\n"
        "    sys.modules[name] = None\n"
        "import radon_actors\n"
        "from radon_actors import Atom, Ref, handler, SandboxCrashed, MessageNotPortable\n"
        "import radon_actors.sandbox, radon_actors.sandbox._value, radon_actors.sandbox._errors\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("sandbox", MODES)
async def test_directives_match_a_guests_exception_by_name(sandbox: Any) -> None:
    # A guest's unregistered exception crosses as a ForeignError; a directive
    # keyed by its type's name matches it there and natively alike, ahead of a
    # directive for its base type.
    from radon_actors import ChildSpec, Directive, ForeignError, Supervisor

    async with open_system() as system:
        spec = ChildSpec(
            Counter,
            args=(1,),
            name="c",
            sandbox=sandbox,
            directives={"Unregistered": Directive.RESUME, ValueError: Directive.STOP},
        )
        await system.spawn(Supervisor, [spec])
        counter = system.lookup("c")
        assert await counter.ask(Counter.incr, 4) == 5
        with pytest.raises(ValueError, match="keep going") as info:
            await counter.ask(Counter.fail_plain, "keep going")
        assert isinstance(info.value, ForeignError) is bool(sandbox)
        if sandbox:
            assert info.value.type_name == "sandbox_atoms:Unregistered"
        assert await counter.ask(Counter.get) == 5  # resumed: state kept
