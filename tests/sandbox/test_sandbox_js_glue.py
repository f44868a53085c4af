"""The glue pass over componentize-js's generated bindings (js/glue.mjs):
what it rewrites, what it leaves alone, and that a rewritten export behaves as
the generated one did (run in Node with stand-ins for the component), then its
effect on a real JavaScript atom's turn, counted in WebAssembly instructions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from radon_actors import open_system
from radon_actors.runtime import _directory
from radon_actors.sandbox import _instance
from radon_actors.sandbox._jsbuild import _GLUE

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")

# The shapes componentize-js 0.23 generates (from its bindings for radon:atom),
# cut down: a string export, a try-form export, one that returns a value.
BINDINGS = r"""
let TEXT_ENCODER_UTF8 = new TextEncoder();
let TEXT_DECODER_UTF8 = new TextDecoder();
const _debugLog = (...args) => {
  if (!globalThis?.process?.env?.JCO_DEBUG) { return; }
  console.debug(...args);
};

function _utf8AllocateAndEncode(s, realloc, memory) {
  if (typeof s !== 'string') {
    throw new TypeError('expected a string, received [' + typeof s + ']');
  }
  if (s.length === 0) { return { ptr: 1, len: 0 }; }
  // Compute the exact allocation size up front. Some older preview1
  // adapters only support an initial allocation, not a subsequent shrink.
  let len = 0;
  let codepoints = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    codepoints++;
    if (ch < 0x80) { len += 1; }
    else if (ch < 0x800) { len += 2; }
    else if (ch >= 0xd800 && ch <= 0xdbff &&
    i + 1 < s.length &&
    (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      len += 4;
      i++;
    } else { len += 3; }
  }
  const ptr = realloc(0, 0, 1, len);
  const { read, written } = TEXT_ENCODER_UTF8.encodeInto(
  s,
  new Uint8Array(memory.buffer, ptr, len),
  );
  if (read !== s.length || written !== len) {
    throw new Error('failed to encode whole string');
  }
  const res = { ptr, len, codepoints };
  return res;
}

async function export_guest_0_6_0$handle(arg0, arg4) {
  var result0 = arg0;
  _debugLog(' [Instruction::CallInterface] (sync, @ enter)');
  let ret;

  ret = await guestHandle(result0);

  var encodeRes = _utf8AllocateAndEncode(ret, $realloc, $memory);
  out[arg4] = [encodeRes.ptr, encodeRes.len];
  _debugLog('[Instruction::Return]', {
    funcName: 'handle',
    paramCount: 0,
    async: false,
    postReturn: false
  });
  return;
}

async function export_guest_0_6_0$snapshot(arg0) {
  let ret;
  try {
    const hostRet0 = await guestSnapshot();
    ret = { tag: 'ok', val: hostRet0 };
  } catch (e) {
    ret = { tag: 'err', val: e };
  }
  out[arg0] = ret;
  return;
}

async function export_guest_0_6_0$count(arg0) {
  let ret;
  ret = await guestCount(arg0);
  return ret + 1;
}
"""

# Runs the rewritten bindings with stand-ins for the component's memory and
# the guest's functions, and prints what each call did.
HARNESS = r"""
import { optimizeGlue } from %(glue)s;
import { readFileSync } from "node:fs";
const lines = [];
const text = optimizeGlue(readFileSync(%(bindings)s, "utf8"), (l) => lines.push(l));
const memory = { buffer: new ArrayBuffer(1024) };
let next = 8;
const scope = {
  $memory: memory,
  $realloc: (_a, _b, _c, len) => { const p = next; next += len; return p; },
  out: {},
  guestHandle: (m) => {
    if (m === "throw") throw new Error("boom");
    if (m === "later") return Promise.resolve("é-later");
    return "ok:" + m;
  },
  guestSnapshot: async () => "state",
  guestCount: async (n) => n,
};
const names = Object.keys(scope);
const exports = new Function(...names, text + `
  return {
    handle: export_guest_0_6_0$handle,
    snapshot: export_guest_0_6_0$snapshot,
    count: export_guest_0_6_0$count,
    resolved: typeof __radonResolved === "undefined" ? null : __radonResolved,
  };`
)(...names.map((n) => scope[n]));
const read = ([ptr, len]) =>
  new TextDecoder().decode(new Uint8Array(memory.buffer, ptr, len));
const report = { lines, text };
const p = exports.handle("plain", "a");
report.plainSync = scope.out.a !== undefined ? read(scope.out.a) : null;
report.plainShared = p === exports.resolved;
await p;
const q = exports.handle("later", "b");
report.laterSync = scope.out.b !== undefined;
await q;
report.later = read(scope.out.b);
try {
  await exports.handle("throw", "c");
  report.thrown = null;
} catch (e) {
  report.thrown = e.message;
}
report.snapshot = (await exports.snapshot("d"), scope.out.d);
report.count = await exports.count(41);
console.log(JSON.stringify(report));
"""


def _node(script: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _run(tmp_path: Path, bindings: str) -> dict[str, object]:
    source = tmp_path / "bindings.js"
    source.write_text(bindings)
    script = HARNESS % {
        "glue": json.dumps(_GLUE.as_uri()),
        "bindings": json.dumps(str(source)),
    }
    result: dict[str, object] = json.loads(_node(script).stdout)
    return result


def test_a_plain_value_is_answered_without_a_promise_turn(tmp_path: Path) -> None:
    report = _run(tmp_path, BINDINGS)
    text = str(report["text"])
    # The string export is synchronous now; written before the first await.
    assert "async function export_guest_0_6_0$handle" not in text
    assert report["plainSync"] == "ok:plain"
    assert report["plainShared"] is True
    # A promise is still awaited, and the result written after it settles.
    assert report["laterSync"] is False
    assert report["later"] == "é-later"
    # A throw is the rejection it was.
    assert report["thrown"] == "boom"
    # The debug-log calls and the per-unit encoder are gone.
    assert "_debugLog(' [Instruction" not in text and "codepoints" not in text
    assert report["lines"] == [
        "radon-actors glue: 1 of 3 exports answer a plain value without a promise turn, "
        "2 debug-log calls dropped, native string encoder"
    ]


def test_shapes_it_does_not_know_are_left_as_generated(tmp_path: Path) -> None:
    report = _run(tmp_path, BINDINGS)
    text = str(report["text"])
    # The try-form export and the one returning a value keep their awaits...
    assert "async function export_guest_0_6_0$snapshot" in text
    assert "async function export_guest_0_6_0$count" in text
    # ...and still work.
    assert report["snapshot"] == {"tag": "ok", "val": "state"}
    assert report["count"] == 42


def test_an_unknown_encoder_is_kept(tmp_path: Path) -> None:
    changed = BINDINGS.replace("let codepoints = 0;", "let codepoints = 0; // changed")
    report = _run(tmp_path, changed)
    assert "// changed" in str(report["text"])
    assert str(report["lines"]).endswith("generated string encoder']")
    assert report["plainSync"] == "ok:plain"


def test_bindings_it_would_break_are_returned_untouched(tmp_path: Path) -> None:
    # An unbalanced brace after the export: the rewrite's output would not parse.
    broken = BINDINGS + "\nfunction tail() {\n"
    script = (
        f"import {{ optimizeGlue }} from {json.dumps(_GLUE.as_uri())};\n"
        f"const text = {json.dumps(broken)};\n"
        "const lines = [];\n"
        "const out = optimizeGlue(text, (l) => lines.push(l));\n"
        "console.log(JSON.stringify({ same: out === text, lines }));\n"
    )
    report = json.loads(_node(script).stdout)
    assert report["same"] is True
    assert report["lines"][0].startswith("radon-actors glue: not applied: the rewritten bindings")


async def test_a_plain_js_turn_costs_what_the_fast_glue_costs(js_component: Path) -> None:
    # Deterministic (instructions, not time): componentize-js's own glue made
    # this turn about 153,000 instructions, the pass about 90,000
    # (docs/benchmarks.md); a build that lost the pass fails here.
    async with open_system() as system:
        atom = await system.spawn_component(js_component, "Polyglot")
        assert await atom.ask("incr", 1) == 1
        cell = _directory.lookup(atom.id)
        assert cell is not None
        guest = cell.instance
        assert isinstance(guest, _instance.GuestAtom)
        store = guest._store
        store.set_fuel(10**12)
        guest._invoke_sync("handle", "incr", guest.side.writer.message((1,), {}))
        used = 10**12 - store.get_fuel()
        assert used < 110_000, used


def test_the_hook_rewrites_only_the_componentize_it_was_given() -> None:
    # build.mjs names componentize-js's componentize.js; the hook inserts the
    # pass where it writes the bindings, and leaves a source without that
    # statement (another version of the tool) as it is, saying so.
    script = (
        f"import {{ initialize, load }} from {json.dumps(_GLUE.as_uri())};\n"
        "initialize({ componentize: 'file:///c.js', glue: 'file:///glue.mjs' });\n"
        "const src = { 'file:///c.js': 'x;\\n  await writeFile(initializerPath, jsBindings);\\n',\n"
        "  'file:///other.js': 'await writeFile(initializerPath, jsBindings);' };\n"
        "const next = async (url) => ({ format: 'module', source: src[url] });\n"
        "const a = String((await load('file:///c.js', {}, next)).source);\n"
        "const b = String((await load('file:///other.js', {}, next)).source);\n"
        "initialize({ componentize: 'file:///new.js', glue: 'file:///glue.mjs' });\n"
        "src['file:///new.js'] = 'await writeFile(path, bindings);';\n"
        "const c = String((await load('file:///new.js', {}, next)).source);\n"
        "console.log(JSON.stringify({ a, b, c }));\n"
    )
    done = _node(script)
    out = json.loads(done.stdout)
    assert out["a"].startswith(
        'import { optimizeGlue as __radonOptimizeGlue } from "file:///glue.mjs";'
    )
    assert "jsBindings = __radonOptimizeGlue(jsBindings" in out["a"]
    assert out["b"] == "await writeFile(initializerPath, jsBindings);"
    assert out["c"] == "await writeFile(path, bindings);"
    assert "radon-actors glue: not applied" in done.stderr
