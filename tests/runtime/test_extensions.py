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
from radon_actors.runtime import AtomCell, CellState, Extensions, InstanceRuntime, run_system
from radon_actors.testing import cell_of


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


class _Elsewhere:
    """An Away of the test's own: the atom "runs" in another cell, and the
    repointed cell hands it everything (by handler name)."""

    def __init__(self, there: AtomCell) -> None:
        self.there = there
        self.calls: list[tuple[str, str]] = []
        self.finished_cells: list[AtomCell] = []

    @property
    def via(self) -> str | None:
        return "elsewhere"

    def post(self, cell: AtomCell, h: Any, args: Any, kwargs: Any, reply: Any) -> None:
        self.calls.append(("post", h if isinstance(h, str) else h.__name__))
        self.there.post(h, args, kwargs, reply)

    async def ask(self, cell: AtomCell, h: str, args: Any, kwargs: Any, timeout: Any) -> Any:
        self.calls.append(("ask", h))
        return await self.there.ask(h, args, kwargs, timeout)

    def tell(self, cell: AtomCell, h: str, args: Any, kwargs: Any) -> None:
        self.calls.append(("tell", h))
        self.there.tell(h, args, kwargs)

    async def send(self, cell: AtomCell, h: str, args: Any, kwargs: Any) -> None:
        self.calls.append(("send", h))
        await self.there.send(h, args, kwargs)

    async def start_incarnation(self, cell: AtomCell) -> None:
        raise AssertionError("not restarted in this test")  # pragma: no cover

    async def call_on_stop(self, cell: AtomCell) -> None:
        raise AssertionError("not terminated in this test")  # pragma: no cover

    def request_stop(self, cell: AtomCell, reason: BaseException | None) -> None:
        self.calls.append(("stop", ""))
        cell.state = CellState.STOPPING
        cell.finish(reason)

    def finished(self, cell: AtomCell) -> None:
        self.finished_cells.append(cell)

    def placed_away(self, cell: AtomCell) -> bool:
        return not cell.stopped.is_set()

    def serve_parked(self, cell: AtomCell, parked: Any) -> None:
        raise AssertionError("no supervisor in this test")  # pragma: no cover


async def test_a_repointed_cell_sends_everything_to_its_away() -> None:
    async with run_system() as system:
        here = await system.spawn(Counter, 1)
        there = await system.spawn(Counter, 100)
        cell, there_cell = cell_of(here), cell_of(there)
        assert cell is not None and there_cell is not None
        elsewhere = _Elsewhere(there_cell)
        assert cell.move_away(elsewhere).messages() == []
        assert type(cell) is AtomCell and cell.via == "elsewhere"
        # Every way in reaches the other cell, by handler name; validation stays
        # at the sender, as for an atom that runs here.
        assert await here.ask(Counter.incr) == 101
        here.tell(Counter.incr, 10)
        await here.send(Counter.incr, 100)
        cell.post("incr", (1000,), {}, None)
        assert await here.ask(Counter.incr, 0) == 1211
        with pytest.raises(TypeError):
            here.tell(Counter.incr, 1, 2, 3)
        assert elsewhere.calls == [
            ("ask", "incr"),
            ("tell", "incr"),
            ("send", "incr"),
            ("post", "incr"),
            ("ask", "incr"),
        ]
        # Brought back: a fresh, open mailbox, and the cell's own incarnation again.
        cell.come_back()
        assert cell.away is None and cell.via is None
        assert await here.ask(Counter.incr) == 2
        # A stop while away goes to the Away, which finishes the cell; it is then a
        # plain stopped cell and the Away hears of it last.
        cell.move_away(elsewhere)
        here.tell(Counter.incr)
        cell.request_stop()
        assert cell.stopped.is_set() and cell.away is None
        assert elsewhere.finished_cells == [cell]
        assert elsewhere.calls[-2:] == [("tell", "incr"), ("stop", "")]
