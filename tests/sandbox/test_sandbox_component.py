"""Running a component's atoms from the component alone (issue #15, item 4):
the component describes itself (its manifest), and a process given only the
``.wasm`` file spawns, checks and runs its atoms without importing any of the
atom's Python."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import trio
from sandbox_atoms import Counter, Relay

from radon_actors import BadArguments, SandboxError, open_system
from radon_actors.sandbox import _engine
from radon_actors.sandbox._manifest import is_stand_in, read_manifest
from radon_actors.sandbox.host import content_hash
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")

_ATOMS = Path(__file__).resolve().parents[1] / "atoms"


async def _wasm() -> Path:
    _h, path = await content_hash(_engine.load("sandbox_atoms"))
    return path


async def test_the_manifest_lists_the_components_atoms_and_their_handlers() -> None:
    manifest = read_manifest(_engine.load("sandbox_atoms"))
    assert manifest.standard == "0.6.0" and manifest.language == "python"
    counter = manifest.atom("sandbox_atoms:Counter")
    assert str(counter.handlers["incr"].signature) == "(self, by=...)"
    assert not counter.handlers["incr"].suspends
    assert manifest.atom("Relay").handlers["forward"].suspends  # awaits an ask
    assert counter.handlers["lookup"].answers == ("builtins:KeyError",)
    with pytest.raises(SandboxError, match="no atom class 'Nope'"):
        manifest.atom("Nope")


async def test_spawn_component_runs_an_atom_from_its_component() -> None:
    path = await _wasm()
    async with open_system() as system:
        ref = await system.spawn_component(path, "Counter", 5)
        cell = cell_of(ref)
        assert cell is not None and is_stand_in(cell.cls)
        assert await ref.ask("incr", 2) == 7
        assert await ref.ask(Counter.incr, by=3) == 10  # the program's copy names it too
        with pytest.raises(BadArguments, match=r"signature: incr\(by=\.\.\.\)"):
            await ref.ask("incr", 1, 2)
        with pytest.raises(KeyError):
            await ref.ask("lookup", "nope")  # an answer: no restart
        assert await ref.ask("get") == 10
        # By hash too, and children of a component's atom are its classes.
        h, _ = await content_hash(_engine.load("sandbox_atoms"))
        relay = await system.spawn_component(h, "sandbox_atoms:Relay")
        assert await relay.ask(Relay.make_child, 41) == 42
        with pytest.raises(TypeError, match="runs the atom in its sandbox"):
            await system.spawn_component(path, "Counter", sandbox=False)


async def test_spawn_component_refuses_what_is_not_a_component(tmp_path: Path) -> None:
    async with open_system() as system:
        with pytest.raises(SandboxError, match="cannot read the component"):
            await system.spawn_component(tmp_path / "missing.wasm", "Counter")
        junk = tmp_path / "junk.wasm"
        junk.write_bytes(b"\x00asm not really")
        with pytest.raises(SandboxError, match="not a component this host can run"):
            await system.spawn_component(junk, "Counter")
        with pytest.raises(SandboxError, match="no component with hash"):
            await system.spawn_component("0" * 64, "Counter")
        with pytest.raises(SandboxError, match="no atom class 'Nope'"):
            await system.spawn_component(await _wasm(), "Nope")


async def test_a_process_given_only_the_wasm_file_imports_none_of_the_atoms_python(
    tmp_path: Path,
) -> None:
    # The user's way: `radon build MODULE --out DIR` writes the component, whose
    # file is all the other process gets.
    atoms = _ATOMS
    with trio.fail_after(300):
        built = await trio.run_process(
            [sys.executable, "-m", "radon_actors._cli", "build", "sandbox_atoms", "--path",
             str(atoms), "--out", str(tmp_path / "dist")],
            capture_stdout=True, capture_stderr=True, check=False,
        )  # fmt: skip
    assert built.returncode == 0, built.stderr.decode()
    path = tmp_path / "dist" / "sandbox_atoms.wasm"
    h, _ = await content_hash(_engine.load("sandbox_atoms"))
    assert f"wrote {path} (sha256 {h})" in built.stdout.decode()
    script = tmp_path / "run_component.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, trio
            from radon_actors import ForeignError, open_system

            async def main() -> None:
                async with open_system() as system:
                    ref = await system.spawn_component({str(path)!r}, "Counter", 40)
                    print("incr", await ref.ask("incr", 2))
                    try:
                        await ref.ask("fail", "guest says no")
                    except ForeignError as exc:
                        print("failed", exc.type_name, exc)
                    print("after restart", await ref.ask("get"))
                    print("imported", "sandbox_atoms" in sys.modules)

            trio.run(main)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with trio.fail_after(120):
        done = await trio.run_process(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().splitlines() == [
        "incr 42",
        "failed sandbox_atoms:Boom guest says no",
        "after restart 40",
        "imported False",
    ]
