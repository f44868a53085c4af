"""Attacks on the sandbox: each one crashes only the attacking atom.

The attacker's supervisor (the default directive, restart) builds a fresh guest
instance; the host process and a bystander atom carry on unharmed.
"""

from __future__ import annotations

from typing import Any

import pytest
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
