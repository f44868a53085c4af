"""Packaging atom modules into components: the cache, build errors, ``radon build``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sandbox_atoms import Counter, Relay

import radon_actors
from radon_actors import SandboxBuildError, open_system, prebuild
from radon_actors._cli import main
from radon_actors.sandbox import _build, _engine

pytestmark = pytest.mark.usefixtures("sandbox_component")


async def test_a_second_load_comes_from_the_disk_cache() -> None:
    first = _engine._loaded.pop("sandbox_atoms")
    messages: list[str] = []
    try:
        again = _engine.load("sandbox_atoms", progress=messages.append)
        # Neither built nor compiled: the compiled component was deserialized.
        assert messages == []
        assert again is not first
        assert again.key == first.key
        assert (_build.cache_root() / again.key / "component.cwasm").exists()
        async with open_system() as system:
            ref = await system.spawn(Counter, 1, sandbox=True)
            assert await ref.ask(Counter.incr) == 2
    finally:
        _engine._loaded["sandbox_atoms"] = first


def test_the_cache_key_follows_the_sources() -> None:
    files = _build.collect_sources("sandbox_atoms")
    assert "sandbox_atoms.py" in files
    assert "radon_actors/_atom.py" in files
    assert "radon_actors/sandbox/_guest.py" in files
    assert not any(name.startswith(("trio/", "structlog/")) for name in files)
    key = _build.source_key(files)
    assert key == _build.source_key(dict(files))
    changed = dict(files)
    changed["sandbox_atoms.py"] = files["sandbox_atoms.py"] + b"\n# changed\n"
    assert _build.source_key(changed) != key


def _module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_native_extension_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module(
        tmp_path,
        monkeypatch,
        "uses_native_ext",
        "import componentize_py.componentize_py\nfrom radon_actors import Atom\n",
    )
    with pytest.raises(SandboxBuildError, match=r"componentize_py.*sandbox=False"):
        _build.collect_sources(name)


def test_a_missing_module_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _module(tmp_path, monkeypatch, "uses_missing", "import no_such_module_xyz\n")
    with pytest.raises(SandboxBuildError, match=r"no_such_module_xyz.*sandbox=False"):
        _build.collect_sources(name)


def test_a_host_only_import_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module(
        tmp_path,
        monkeypatch,
        "imports_trio",
        "from radon_actors import Atom\nif True:\n    import trio.lowlevel\n",
    )
    with pytest.raises(SandboxBuildError, match=r"'trio.lowlevel'.*sandbox=False"):
        _build.collect_sources(name)
    # Inside functions, optional, or under the __main__ guard, they are fine.
    fine = _module(
        tmp_path,
        monkeypatch,
        "imports_trio_lazily",
        "from radon_actors import Atom\n\ndef main():\n    import trio\n\n"
        "try:\n    import wasmtime\nexcept ImportError:\n    wasmtime = None\n\n"
        "if __name__ == '__main__':\n    import structlog\n",
    )
    assert f"{fine}.py" in _build.collect_sources(fine)


def test_main_and_radon_actors_modules_are_refused() -> None:
    with pytest.raises(SandboxBuildError, match="module of their own") as info:
        _build.collect_sources("__main__")
    assert "examples/" not in str(info.value)  # pip users have no examples directory
    with pytest.raises(SandboxBuildError, match="your own module"):
        _build.collect_sources("radon_actors._atom")


def test_cli_build(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "sandbox_atoms"]) == 0
    out = capsys.readouterr().out
    assert "sandbox_atoms: ready" in out
    assert main(["build", "no_such_module_xyz"]) == 1
    assert "no_such_module_xyz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([])


def test_cli_cache_lists_and_clears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RADON_SANDBOX_CACHE", str(tmp_path))
    entry = tmp_path / "0123abcd"
    entry.mkdir()
    (entry / "component.wasm").write_bytes(b"\0" * 2048)
    (entry / "module.txt").write_text("some_module\n")
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert ": 1 component\n" in out
    assert "some_module" in out
    assert entry.exists()
    assert main(["cache", "--clear"]) == 0
    assert "deleted 1 component\n" in capsys.readouterr().out
    assert not entry.exists()
    assert main(["cache"]) == 0
    assert ": 0 components\n" in capsys.readouterr().out


def test_radon_version_through_the_console_script() -> None:
    import subprocess
    import sys

    import radon_actors

    radon = Path(sys.executable).parent / "radon"
    out = subprocess.run([str(radon), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"radon-actors {radon_actors.__version__}"


async def test_spawn_reports_a_module_the_guest_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = _module(
        tmp_path,
        monkeypatch,
        "native_ext_atoms",
        "import componentize_py.componentize_py\n"
        "from radon_actors import Atom, handler\n\n"
        "class Pinger(Atom):\n"
        "    @handler\n"
        "    def ping(self) -> int:\n"
        "        return 1\n",
    )
    module = __import__(name)
    async with open_system() as system:
        with pytest.raises(SandboxBuildError, match="sandbox=False"):
            await system.spawn(module.Pinger, sandbox=True)
        # Natively the same class runs.
        ref = await system.spawn(module.Pinger)
        assert await ref.ask("ping") == 1


def test_every_module_the_guest_runtime_imports_is_bundled() -> None:
    # The guest has no file system: a radon_actors module that _guest.py imports
    # at module level, directly or through another, must be in _build._GUEST_FILES
    # (imports inside functions are the host-only names ``radon_actors`` loads lazily).
    root = Path(radon_actors.__file__).parent

    def module_file(path: Path) -> str:
        if (root / path).with_suffix(".py").is_file():
            return path.with_suffix(".py").as_posix()
        return (path / "__init__.py").as_posix()

    todo, seen = ["sandbox/_guest.py"], set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        package = Path(rel).parent
        for node in ast.parse((root / rel).read_text()).body:
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = package
            for _ in range(node.level - 1):
                base = base.parent
            if node.module:
                todo.append(module_file(base / node.module.replace(".", "/")))
            for alias in node.names:
                target = base / (node.module or "").replace(".", "/") / alias.name
                if (root / target).with_suffix(".py").is_file() or (root / target).is_dir():
                    todo.append(module_file(target))
            todo.append(module_file(base))
    assert "sandbox/_value.py" in seen
    assert seen <= set(_build._GUEST_FILES), sorted(seen - set(_build._GUEST_FILES))


def test_a_missing_import_is_explained_without_the_build_tools_native_stack() -> None:
    output = (
        "Traceback (most recent call last):\n"
        "ModuleNotFoundError: No module named '_ctypes'\n"
        "  23: pymain_run_file\n"
        "             at /tmp/python-build/Python-3.11.7/Modules/main.c:379:15\n"
        "  30: _start\n"
    )
    message = _build._explain("natmod", output)
    assert "imports '_ctypes'" in message and "sandbox=False" in message
    assert "main.c" not in message and "_start" not in message
    # An unexplained failure keeps the tool's last lines: they are all there is.
    assert "boom" in _build._explain("natmod", "something else went wrong: boom")


async def test_prebuild_reports_and_refuses_what_it_cannot_build(
    sandbox_component: object,
) -> None:
    seen: list[str] = []
    await prebuild(Counter, Relay, "sandbox_atoms", progress=seen.append)
    # One module, loaded already: reported once, nothing built.
    assert seen == ["sandbox_atoms: component ready (already loaded)"]
    await prebuild(Counter)  # no progress callback: quiet
    with pytest.raises(TypeError, match="Atom subclasses or module names"):
        await prebuild(42)  # type: ignore[arg-type]
    with pytest.raises(SandboxBuildError, match="__main__"):
        await prebuild("__main__")
