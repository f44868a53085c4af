"""The package's layers depend one way (docs/architecture.md, "Which module may import which").

Every import in ``radon_actors`` is checked, at module level, inside functions and
under ``TYPE_CHECKING`` alike, against two rules:

1. **Direction.** API (``_atom``, ``_ref``, ``_errors``, ``_state``) <- ``mailbox`` <-
   ``runtime`` <- (``supervisor``, ``sandbox``, ``placement``, ``durable``) <-
   ``cluster`` <- the top (``__init__``, ``_open``, ``_cli``, ``_worker``). A layer imports
   only layers below it; among the extensions only placement and durable may
   import the sandbox (durable: its value format, ``sandbox.values``).
2. **Seams.** Across layers, a module imports a package's public surface (its
   ``__init__``, or a module whose name has no underscore such as
   ``sandbox.host``), never another layer's private modules. The API modules are
   the exception: they are the bottom layer and are imported directly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import radon_actors

PACKAGE = Path(radon_actors.__file__).parent

API = "api"
RANK = {
    API: 0,
    "mailbox": 1,
    "runtime": 2,
    "supervisor": 3,
    "sandbox": 3,
    "placement": 3,
    "durable": 3,
    "cluster": 4,
}
TOP = 5
# Same-rank imports that are allowed: placement ships sandboxed atoms'
# components; durable state is stored in the standard's value format.
SIDEWAYS = {("placement", "sandbox"), ("durable", "sandbox")}
# The bottom layer: the API, and the library's loggers (host-only: the guest
# side of the sandbox imports the three API modules, never ``_logs``).
API_MODULES = {"_atom", "_ref", "_errors", "_state", "_logs"}


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside ``radon_actors``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "top"
    if parts[1] in API_MODULES:
        return API
    if parts[1] in RANK:
        return parts[1]
    return "top"


def rank(layer: str) -> int:
    return RANK.get(layer, TOP)


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module or module.name) for every radon_actors import in ``source``."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "radon_actors" or target.startswith("radon_actors."):
                for alias in node.names:
                    # ``from . import _x`` imports a module; ``from .x import Y`` a name.
                    found.append((node.lineno, f"{target}.{alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("radon_actors"):
                    found.append((node.lineno, alias.name))
    return found


def violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` may not import ``imported`` (a module or module.name), or None."""
    src, dst = layer_of(importer), layer_of(imported)
    if src == dst or src == "top":
        return None
    if dst == API:
        return None
    if rank(dst) >= rank(src) and (src, dst) not in SIDEWAYS:
        return f"{src} may not import {dst} (layers depend one way)"
    # Across layers: only public names of the other layer's package.
    inside = imported.split(".")[2:]  # below radon_actors.<layer>
    if any(part.startswith("_") for part in inside[:-1]) or (
        len(inside) == 1 and inside[0].startswith("_") and inside[0] != "__init__"
    ):
        return f"{imported} is private to {dst}; import its public names instead"
    return None


def all_violations(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("").parts
        is_package = rel[-1] == "__init__"
        module = ".".join(rel[:-1] if is_package else rel)
        for line, imported in imports_of(path.read_text(), module, is_package):
            why = violation(module, imported)
            if why is not None:
                problems.append(f"{path.relative_to(root.parent)}:{line}: {why}")
    return problems


def test_the_package_imports_follow_the_layers() -> None:
    assert all_violations(PACKAGE) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("radon_actors.runtime._system", "radon_actors.placement._node.get_node"),
        ("radon_actors.runtime._cell", "radon_actors.supervisor.Supervisor"),
        ("radon_actors.mailbox._mailbox", "radon_actors.runtime.AtomCell"),
        ("radon_actors.supervisor._supervisor", "radon_actors.placement.RoundRobin"),
        ("radon_actors.sandbox._engine", "radon_actors.placement._node"),
        ("radon_actors._atom", "radon_actors.sandbox._config.SandboxConfig"),
        ("radon_actors.placement._code", "radon_actors.sandbox._engine.LoadedComponent"),
        ("radon_actors.supervisor._parked", "radon_actors.runtime._cell.AtomCell"),
    ],
)
def test_wrong_way_and_private_imports_are_reported(importer: str, imported: str) -> None:
    assert violation(importer, imported) is not None


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("radon_actors.supervisor._supervisor", "radon_actors.runtime.AtomCell"),
        ("radon_actors.placement._code", "radon_actors.sandbox.host.by_hash"),
        ("radon_actors.runtime._cell", "radon_actors.mailbox.Mailbox"),
        ("radon_actors.runtime._cell", "radon_actors._atom.HandlerSpec"),
        ("radon_actors._open", "radon_actors.supervisor.start_root"),
    ],
)
def test_imports_along_the_layers_are_allowed(importer: str, imported: str) -> None:
    assert violation(importer, imported) is None


def test_a_wrong_way_import_in_a_function_or_under_type_checking_fails(tmp_path: Path) -> None:
    package = tmp_path / "radon_actors"
    (package / "runtime").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "runtime" / "__init__.py").write_text("")
    (package / "runtime" / "_cell.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..supervisor._parked import Parked\n"
        "def watch():\n"
        "    from ..placement import make_node\n"
    )
    problems = all_violations(package)
    assert len(problems) == 2
    assert "runtime/_cell.py:3: runtime may not import supervisor" in problems[0]
    assert "runtime/_cell.py:5: runtime may not import placement" in problems[1]


def class_swaps(source: str) -> list[int]:
    """Lines that assign an object's ``__class__`` (``x.__class__ = ...``)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "setattr"
            and len(node.args) > 1
            and getattr(node.args[1], "value", None) == "__class__"
        ):
            lines.append(node.lineno)
        lines.extend(
            t.lineno for t in targets if isinstance(t, ast.Attribute) and t.attr == "__class__"
        )
    return lines


def test_no_object_changes_its_class() -> None:
    # An atom placed away, moved or brought home keeps one cell whose ``away`` is
    # repointed (runtime.Away): the cell never turns into another class.
    swaps = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in class_swaps(path.read_text())
    ]
    assert swaps == []


def test_a_class_swap_is_reported() -> None:
    source = "cell.__class__ = Other\nsetattr(cell, '__class__', Other)\ncell.klass = Other\n"
    assert class_swaps(source) == [1, 2]
