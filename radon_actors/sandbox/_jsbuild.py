"""Building a JavaScript atom's WebAssembly component (``radon build --js``).

A JavaScript atom is a class that extends ``Atom`` from the module
``"radon-actors"``, exported by an ES module. The build stages that module (and
the other JavaScript files of its directory, which it may import by relative
path), the guest runtime (``js/radon-actors.js``, staged under the bare name the
atom imports) and an entry module that exports the ``guest`` interface, and runs
the field's own tool, ``@bytecodealliance/componentize-js``, under Node against
``wit/atom.wit``. No ahead-of-time compilation (its ``weval`` binary would be
downloaded at first use).

The tool runs through ``js/build.mjs``, which hooks Node's module loading to
pass the JavaScript glue componentize-js generates for each export through
``js/glue.mjs`` before the engine is initialised with it: an export whose
guest function returns a plain value finishes without a promise turn, with no
debug-log records, and strings are encoded natively. That glue was most of
a plain turn (about 153,000 of its WebAssembly instructions; about 90,000
after). The pass rewrites only the shapes it knows and keeps the tool's own
glue otherwise, and the build says which (a ``glue:`` progress line).

The result goes into the same cache as Python components, by its content hash
(``sha256-<hash>``, what ``System.spawn_component`` takes), and under a key of
its sources and tool versions, so building unchanged sources again is free.

Two features of the engine are left out on purpose: ``http`` (``fetch``: no
network in the sandbox) and ``clocks``, whose timers would let a turn wait on
the host's wall clock outside any fuel budget (atoms use ``sendAfter`` and
``now()``, which go through the host).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from ._build import WIT_DIR, WORLD, Progress, _quiet, _run_with_progress, cache_root
from ._cache import _store, entry
from ._errors import SandboxBuildError

__all__ = ["JS_RUNTIME", "JS_TYPES", "JsBuild", "build_js", "componentize_js", "module_name_of"]

JS_RUNTIME = Path(__file__).parent / "js" / "radon-actors.js"
"""The guest runtime for JavaScript atoms (imported by them as ``"radon-actors"``)."""

JS_TYPES = Path(__file__).parent / "js" / "radon-actors.d.ts"
"""Its type declarations, for editors and ``tsc --checkJs`` (``radon build --js-types``)."""

# componentize-js's command line, run with the glue pass (js/glue.mjs).
_DRIVER = Path(__file__).parent / "js" / "build.mjs"
_GLUE = Path(__file__).parent / "js" / "glue.mjs"
_GLUE_REPORT = "radon-actors glue:"

_RUNTIME_NAME = "radon-actors"  # the bare specifier; resolved as a file of the stage
_ENTRY = "radon_guest_entry.js"
_COMPONENTIZE = Path("node_modules") / "@bytecodealliance" / "componentize-js"
_DISABLED = ("http", "fetch-event", "clocks")
# What a build copies from the atom's directory, and at most how much of it.
_SOURCES = (".js", ".mjs")
_MAX_FILES = 500
_MAX_BYTES = 16 << 20
_SKIP_DIRS = frozenset({"node_modules", "__pycache__"})
# Bump when the build's own behaviour changes in a way the files do not show.
_BUILD_VERSION = "2"


def module_name_of(path: Path) -> str:
    """The module name a JavaScript file's atom classes carry (``"module:Class"``):
    its stem, made an identifier."""
    name = re.sub(r"\W", "_", path.stem)
    if not name or name[0].isdigit():
        name = f"js_{name}"
    return name


def componentize_js(start: Path | None = None) -> Path:
    """The ``componentize-js`` package to build with: ``RADON_COMPONENTIZE_JS``
    (its directory), else ``node_modules`` in ``start`` or a directory above it,
    or in the working directory or one above it. Raises
    :class:`SandboxBuildError` saying how to install it."""
    env = os.environ.get("RADON_COMPONENTIZE_JS")
    if env:
        found = Path(env)
        if (found / "src" / "cli.js").is_file():
            return found
        raise SandboxBuildError(
            f"RADON_COMPONENTIZE_JS={env} is not the componentize-js package (no src/cli.js in it)"
        )
    roots = [Path.cwd().resolve()]
    if start is not None:
        roots.insert(0, start.resolve())
    for root in roots:
        for directory in (root, *root.parents):
            candidate = directory / _COMPONENTIZE
            if (candidate / "src" / "cli.js").is_file():
                return candidate
    raise SandboxBuildError(
        "building a JavaScript atom needs @bytecodealliance/componentize-js: run "
        "`npm install @bytecodealliance/componentize-js@0.23.0` in your project (or "
        "`npm ci` in a radon-actors checkout), or set RADON_COMPONENTIZE_JS to its directory"
    )


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise SandboxBuildError(
            "building a JavaScript atom needs Node.js (18 or later) on PATH: componentize-js "
            "runs under it"
        )
    return found


def _tool_version(package: Path) -> str:
    try:
        meta = json.loads((package / "package.json").read_text())
    except (OSError, ValueError):
        return "componentize-js=unknown"
    return f"componentize-js={meta.get('version', 'unknown')}"


def collect_js(path: Path) -> dict[str, bytes]:
    """The JavaScript files of ``path``'s directory (the atom's module and the
    modules it may import by relative path), by path relative to it."""
    root = path.parent
    files: dict[str, bytes] = {}
    total = 0
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if not name.endswith(_SOURCES):
                continue
            file = Path(directory) / name
            rel = file.relative_to(root).as_posix()
            if rel in (_ENTRY, _RUNTIME_NAME):
                raise SandboxBuildError(f"{file}: the name {rel!r} is the build's own; rename it")
            data = file.read_bytes()
            total += len(data)
            files[rel] = data
            if len(files) > _MAX_FILES or total > _MAX_BYTES:
                raise SandboxBuildError(
                    f"{root} holds more than {_MAX_FILES} JavaScript files or {_MAX_BYTES >> 20} "
                    "MiB of them: put the atom's module in a directory of its own"
                )
    return files


class JsBuild:
    """A built JavaScript atom: its component's content hash and cached ``.wasm``,
    whether this call built it, and its module name."""

    __slots__ = ("built", "hash", "module", "wasm")

    def __init__(self, h: str, wasm: Path, built: bool, module: str) -> None:
        self.hash = h
        self.wasm = wasm
        self.built = built
        self.module = module


def build_js(path: str | os.PathLike[str], *, progress: Progress = _quiet) -> JsBuild:
    """Build (or find in the cache) the component of the JavaScript atom module
    ``path``. Blocking: tens of seconds on a cold cache.

    Raises :class:`SandboxBuildError` for a missing file, missing tools, or a
    module that does not build (the tool's message included).
    """
    source = Path(path)
    if not source.is_file() or source.suffix not in _SOURCES:
        raise SandboxBuildError(f"{source} is not a JavaScript module (a .js or .mjs file)")
    module = module_name_of(source)
    files = collect_js(source)
    package = componentize_js(source.parent)
    runtime = JS_RUNTIME.read_bytes()
    key = hashlib.sha256()
    key.update(f"js-build={_BUILD_VERSION};{_tool_version(package)};{module}\0".encode())
    key.update(runtime + b"\0")
    key.update(_DRIVER.read_bytes() + b"\0" + _GLUE.read_bytes() + b"\0")
    for wit in sorted(WIT_DIR.glob("*.wit")):
        key.update(wit.name.encode() + b"\0" + wit.read_bytes() + b"\0")
    entry_rel = source.name
    key.update(entry_rel.encode() + b"\0")
    for rel in sorted(files):
        key.update(rel.encode() + b"\0" + files[rel] + b"\0")
    index = cache_root() / f"js-{key.hexdigest()[:32]}"
    known = index / "hash.txt"
    if known.is_file():
        h = known.read_text().strip()
        wasm = entry(h) / "component.wasm"
        if wasm.is_file():
            return JsBuild(h, wasm, False, module)
    progress(f"building the WebAssembly component of {source.name} (about 20 s, cached after)")
    with tempfile.TemporaryDirectory(prefix="radon-jsbuild-") as tmp:
        stage = Path(tmp) / "src"
        for rel, data in files.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (stage / _RUNTIME_NAME).write_bytes(runtime)
        (stage / _ENTRY).write_text(
            "// Generated by radon-actors: the entry point of a JavaScript atom component.\n"
            'import * as host from "radon:atom/host@0.6.0";\n'
            'import { serve } from "radon-actors";\n'
            f"import * as atoms from {json.dumps('./' + entry_rel)};\n"
            f"export const guest = serve(host, atoms, {json.dumps(module)});\n"
        )
        out = Path(tmp) / "component.wasm"
        cmd = [
            _node(),
            str(_DRIVER),
            str(package),
            "--wit",
            str(WIT_DIR / "atom.wit"),
            "--world-name",
            WORLD,
            "--disable",
            *_DISABLED,
            "-o",
            str(out),
            _ENTRY,
        ]
        returncode, output = _run_with_progress(cmd, stage, dict(os.environ), progress)
        if returncode != 0 or not out.exists():
            tail = "\n".join(output.strip().splitlines()[-20:])
            raise SandboxBuildError(f"building the component of {source} failed:\n{tail}")
        data = out.read_bytes()
    for line in output.splitlines():
        if line.startswith(_GLUE_REPORT):
            progress(line.removeprefix("radon-actors ").strip())
    h = hashlib.sha256(data).hexdigest()
    _store(entry(h), data, f"js:{module}", [])
    index.mkdir(parents=True, exist_ok=True)
    (index / "module.txt").write_text(f"js:{source.name} (component sha256-{h})\n")
    partial = index / f"hash.txt.{os.getpid()}.tmp"
    partial.write_text(f"{h}\n")
    partial.replace(known)
    wasm = entry(h) / "component.wasm"
    progress(f"built {source.name} ({len(data) // 1024} KiB, sha256 {h})")
    return JsBuild(h, wasm, True, module)
