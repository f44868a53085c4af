"""The runtime on its own, and extensions plugged in through its seams.

``radon_actors.open_system`` composes the runtime with supervision, the sandbox
and placement (docs/architecture.md, "The seams"); these tests run the runtime
with none of them, or with an extension of their own, through
``runtime.run_system``.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from radon_actors import Atom, handler
from radon_actors._atom import HandlerSpec, handler_table
from radon_actors.runtime import AtomCell, Extensions, InstanceRuntime, run_system


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    def incr(self, by: int = 1) -> int:
        self.n += by
        return self.n

    @handler
    def boom(self) -> None:
        raise ValueError("boom")


async def test_a_bare_runtime_runs_atoms_without_any_extension() -> None:
    async with run_system() as system:
        ref = await system.spawn(Counter, 10)
        assert await ref.ask(Counter.incr) == 11
        assert system.hosts == ["local"]
        # No supervisor: the built-in decider restarts the atom in place.
        with pytest.raises(ValueError, match="boom"):
            await ref.ask(Counter.boom)
        assert await ref.ask(Counter.incr) == 11


async def test_a_missing_extension_is_a_clear_error() -> None:
    async with run_system() as system:
        with pytest.raises(RuntimeError, match="without the isolation extension"):
            await system.spawn(Counter, sandbox=True)
        with pytest.raises(RuntimeError, match="without the placement extension"):
            await system.start_host("w1")
    with pytest.raises(RuntimeError, match="without supervision"):
        async with run_system(root=object()):
            pass  # pragma: no cover


class _Recorded:
    """An InstanceRuntime of another kind: native instances, counted."""

    def __init__(self, cls: type[Atom]) -> None:
        self.table: dict[Any, HandlerSpec] = handler_table(cls)
        self.started: list[str] = []

    async def start(self, cell: AtomCell) -> Any:
        self.started.append(cell.id)
        instance = cell.cls.__new__(cell.cls)
        instance._radon_ctx = cell
        cell.cls.__init__(instance, *cell.args, **cell.kwargs)
        return instance


class _Isolation:
    def __init__(self) -> None:
        self.runtimes: list[_Recorded] = []

    async def runtime_for(self, cls: type[Any], options: Any) -> InstanceRuntime | None:
        if options is False:
            return None
        runtime = _Recorded(cls)
        self.runtimes.append(runtime)
        return runtime


async def test_another_kind_of_instance_plugs_in_through_the_isolation_seam() -> None:
    isolation = _Isolation()
    async with run_system(extensions=Extensions(isolation=lambda: isolation)) as system:
        plain = await system.spawn(Counter)
        other = await system.spawn(Counter, 5, sandbox=True)
        assert await plain.ask(Counter.incr) == 1
        assert await other.ask(Counter.incr, 2) == 7
        [runtime] = isolation.runtimes
        assert runtime.started == [other.id]
        with pytest.raises(ValueError, match="boom"):
            await other.ask(Counter.boom)
        # The restart made its fresh incarnation through the same runtime.
        assert await other.ask(Counter.incr) == 6
        assert runtime.started == [other.id, other.id]


def test_importing_the_runtime_loads_no_layer_above_it() -> None:
    code = (
        "import sys, radon_actors.runtime\n"
        "above = sorted(m for m in sys.modules if m.startswith(('radon_actors.supervisor', "
        "'radon_actors.placement', 'radon_actors.sandbox._engine', 'radon_actors.sandbox.host')))\n"
        "print(above)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
