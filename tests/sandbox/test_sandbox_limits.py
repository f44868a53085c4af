"""Attacks on the sandbox: each one crashes only the attacking atom.

The attacker's supervisor (the default directive, restart) builds a fresh guest
instance; the host process and a bystander atom carry on unharmed.
"""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from sandbox_atoms import Counter, Hostile

from radon_actors import SandboxConfig, SandboxCrashed, open_system
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")

LIMITS = SandboxConfig(fuel=300_000_000, memory=96 * 1024 * 1024)


def _restarts(ref: Any) -> int:
    cell = cell_of(ref)
    assert cell is not None
    return cell.restarts


async def _attack(handler: Any, *args: Any, expected: Any) -> BaseException:
    async with open_system() as system:
        bystander = await system.spawn(Counter, 1, sandbox=True)
        attacker = await system.spawn(Hostile, sandbox=LIMITS)
        assert await attacker.ask(Hostile.ok) == 1
        assert await attacker.ask(Hostile.ok) == 2
        with pytest.raises(expected) as info:
            await attacker.ask(handler, *args)
        # Restarted: a fresh instance (its turn count starts over), still sandboxed.
        assert await attacker.ask(Hostile.ok) == 1
        assert _restarts(attacker) == 1
        assert await bystander.ask(Counter.incr) == 2
        assert _restarts(bystander) == 0
        return info.value


async def test_an_infinite_loop_runs_out_of_fuel() -> None:
    exc = await _attack(Hostile.spin, expected=SandboxCrashed)
    assert "fuel" in str(exc)


async def test_unbounded_allocation_hits_the_memory_cap() -> None:
    exc = await _attack(Hostile.hog, expected=(SandboxCrashed, MemoryError))
    if isinstance(exc, SandboxCrashed):
        assert "memory" in str(exc)


async def test_deep_recursion_is_stopped() -> None:
    await _attack(Hostile.recurse, expected=(RecursionError, SandboxCrashed))


async def test_opening_a_file_fails(tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host data")
    await _attack(Hostile.read_file, str(secret), expected=OSError)
    await _attack(Hostile.read_file, "/etc/passwd", expected=OSError)


async def test_opening_a_socket_fails() -> None:
    # WASI without network permissions refuses the connection.
    exc = await _attack(Hostile.connect, "127.0.0.1", 9, expected=PermissionError)
    assert "Permission denied" in str(exc)


async def test_the_environment_is_empty() -> None:
    async with open_system() as system:
        attacker = await system.spawn(Hostile, sandbox=LIMITS)
        assert await attacker.ask(Hostile.environ) == {}


async def test_a_crashed_atom_under_stop_directive_stops() -> None:
    from radon_actors.runtime import Directive

    async with open_system() as system:
        attacker = await system.spawn(Hostile, sandbox=LIMITS)
        cell = cell_of(attacker)
        assert cell is not None
        cell.decider = lambda _cell, _exc: Directive.STOP
        with pytest.raises(SandboxCrashed):
            await attacker.ask(Hostile.spin)
        await cell.stopped.wait()
        assert cell.instance is None


async def test_a_timer_flood_is_refused_and_the_host_loop_keeps_its_pace() -> None:
    """Escape 6 of issue #15: 2,000 periodic 1 ms timers starved the host loop.
    Periods under the quota are refused outright, and live timers are capped."""
    quota = SandboxConfig(max_timers=50, min_timer_interval=0.05)
    async with open_system() as system:
        attacker = await system.spawn(Hostile, sandbox=quota)
        granted, refusal = await attacker.ask(Hostile.flood_timers, 2_000, 0.001)
        assert granted == 0 and "min_timer_interval=0.05" in refusal
        granted, refusal = await attacker.ask(Hostile.flood_timers, 2_000, 0.05)
        assert granted == 50 and "max_timers=50" in refusal
        cell = cell_of(attacker)
        assert cell is not None and len(cell.instance.timers) == 50
        assert _restarts(attacker) == 0  # refused, not crashed: the guest caught it
        # The default quota is in force without a config too.
        default = await system.spawn(Hostile, sandbox=True)
        granted, refusal = await default.ask(Hostile.flood_timers, 2_000, 0.001)
        assert granted == 0 and "min_timer_interval" in refusal


async def test_children_beyond_the_quota_are_refused() -> None:
    """Escape 7 of issue #15 (in part): 5,000 children in 2.6 s; now a quota."""
    async with open_system() as system:
        config = SandboxConfig(max_children=20, memory=48 << 20)
        attacker = await system.spawn(Hostile, sandbox=config)
        granted, refusal = await attacker.ask(Hostile.spawn_many, 5_000)
        assert granted == 20 and "max_children=20" in refusal
        cell = cell_of(attacker)
        assert cell is not None and len(cell.children) == 20


async def test_a_sandboxed_tree_is_bounded_in_total_memory_and_size() -> None:
    """Escape 7 of issue #15: six sandboxed children of 200 MiB each added 1.25
    GiB to the host; each instance was capped, the tree was not."""
    config = SandboxConfig(memory=48 << 20, tree_memory=240 << 20, max_children=100)
    async with open_system() as system:
        root = await system.spawn(Hostile, sandbox=config)
        # The root's 48 MiB, a child's 48 MiB, then its children: three more fit.
        granted, refusal = await root.ask(Hostile.spawn_below, 10)
        assert granted == 3 and "tree_memory" in refusal and "past its total" in refusal
        granted, refusal = await root.ask(Hostile.spawn_many, 10)
        assert granted == 0 and "tree_memory" in refusal
        # Stopped children give their share back.
        root_cell = cell_of(root)
        assert root_cell is not None
        for child in list(root_cell.children.values()):
            await system.stop(child.ref)
        granted, _ = await root.ask(Hostile.spawn_many, 1)
        assert granted == 1
        # A tree of its own for each atom trusted code spawns.
        other = await system.spawn(Hostile, sandbox=config)
        assert (await other.ask(Hostile.spawn_many, 10))[0] == 4
    small = SandboxConfig(memory=48 << 20, max_descendants=3)
    async with open_system() as system:
        root = await system.spawn(Hostile, sandbox=small)
        granted, refusal = await root.ask(Hostile.spawn_below, 10)
        assert granted == 2 and "max_descendants=3" in refusal


async def test_messages_per_turn_are_bounded() -> None:
    async with open_system() as system:
        attacker = await system.spawn(Hostile, sandbox=SandboxConfig(max_sends=50))
        sent, refusal = await attacker.ask(Hostile.flood_tells, 1_000)
        assert sent == 50 and "max_sends=50" in refusal
        # The next turn has its own quota.
        assert (await attacker.ask(Hostile.flood_tells, 10))[0] == 10


async def test_the_bytes_a_turn_hands_the_host_are_bounded() -> None:
    """max_sends bounds how many messages a turn sends, not how large: 10,000
    tells of 16 MiB each (max_value) would have had the host hold 160 GB in a
    mailbox. The bytes of a turn's messages and state writes are bounded too."""
    async with open_system() as system:
        config = SandboxConfig(max_turn_bytes=8 * 1024 * 1024)
        attacker = await system.spawn(Hostile, sandbox=config, mailbox_size=100_000)
        sent, refusal = await attacker.ask(Hostile.flood_big_tells, 1_000, 1024 * 1024)
        assert sent == 7 and "max_turn_bytes=8,388,608" in refusal
        # A turn's own quota: the next one sends again (and small messages are cheap).
        assert await attacker.ask(Hostile.flood_big_tells, 5_000, 100) == (5_000, "")


async def test_log_events_per_turn_are_bounded() -> None:
    async with open_system() as system:
        attacker = await system.spawn(Hostile, sandbox=SandboxConfig(max_logs=20))
        with structlog.testing.capture_logs() as logs:
            assert await attacker.ask(Hostile.flood_logs, 10_000) == 10_000
            assert await attacker.ask(Hostile.flood_logs, 5) == 5  # a new turn
        events = [e["event"] for e in logs]
        assert events.count("hostile.flood") == 25
        assert events.count("sandbox.log_quota") == 1


def test_quota_settings_are_checked() -> None:
    for bad in (
        {"max_timers": 0},
        {"min_timer_interval": 0},
        {"max_children": -1},
        {"tree_memory": 0},
        {"max_descendants": 0},
        {"max_sends": 0},
        {"max_logs": 0},
        {"max_value": 0},
    ):
        with pytest.raises(ValueError, match="SandboxConfig"):
            SandboxConfig(**bad)  # type: ignore[arg-type]
