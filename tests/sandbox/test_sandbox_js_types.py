"""The type declarations of the JavaScript atoms' module (js/radon-actors.d.ts),
written by ``radon build --js-types DIR``: they declare what the runtime
exports, and ``tsc --checkJs`` accepts atoms that use the API as documented
and refuses ones that misuse it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from radon_actors.sandbox._jsbuild import JS_RUNTIME, JS_TYPES

ROOT = Path(__file__).resolve().parents[2]
TSC = ROOT / "node_modules" / "typescript" / "bin" / "tsc"

BAD = """\
import { Atom } from "radon-actors";

export class Bad extends Atom {
  async go() {
    await this.remind("x", { due: "soon" }, "go");
    this.ref.tell();
    return this.sendAfter("later", "go");
  }
}
"""


def test_every_export_of_the_runtime_is_declared() -> None:
    exported = set(re.findall(r"^export (?:class|function) (\w+)", JS_RUNTIME.read_text(), re.M))
    exported.discard("serve")  # the build's entry module calls it, not atoms
    declared = set(re.findall(r"^export (?:class|function) (\w+)", JS_TYPES.read_text(), re.M))
    declared |= set(re.findall(r"^export \{ \w+ as (\w+) \}", JS_TYPES.read_text(), re.M))
    assert exported <= declared, exported - declared


def _tsc(project: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    config = {
        "compilerOptions": {
            "allowJs": True,
            "checkJs": True,
            "noEmit": True,
            "target": "es2022",
            "module": "es2022",
            "moduleResolution": "bundler",
            "lib": ["es2022"],
            "paths": {"radon-actors": ["./types/radon-actors.d.ts"]},
        },
        "files": files,
    }
    (project / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        ["node", str(TSC), "-p", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_radon_build_js_types_writes_declarations_tsc_checks_atoms_against(
    tmp_path: Path,
) -> None:
    if shutil.which("node") is None or not TSC.is_file():
        pytest.skip("Node.js or typescript (npm ci) is not installed")
    written = subprocess.run(
        [sys.executable, "-m", "radon_actors._cli", "build", "--js-types", str(tmp_path / "types")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "types" / "radon-actors.d.ts").read_bytes() == JS_TYPES.read_bytes()
    assert '"paths": {"radon-actors": [' in written.stdout
    # Atoms written as docs/polyglot.md shows pass...
    shutil.copy(ROOT / "examples" / "polyglot" / "tokenizer.js", tmp_path)
    shutil.copy(ROOT / "tests" / "atoms" / "js" / "account.js", tmp_path)
    good = _tsc(tmp_path, ["tokenizer.js", "account.js"])
    assert good.returncode == 0, good.stdout
    # ...and misuse of the API is an error at its line.
    (tmp_path / "bad.js").write_text(BAD)
    bad = _tsc(tmp_path, ["bad.js"])
    assert bad.returncode != 0
    lines = {int(m) for m in re.findall(r"bad\.js\((\d+),\d+\): error", bad.stdout)}
    assert lines == {5, 6, 7}, bad.stdout
