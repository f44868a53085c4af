// Cheaper export glue for JavaScript atoms: a pass over the bindings that
// componentize-js generates, applied while `radon build --js` runs it
// (build.mjs loads this file as a Node module-loading hook).
//
// Why. componentize-js 0.23 wraps every export of the world in an `async
// function` that awaits the guest's function even when it returned a plain
// value, builds two debug-log records per call for a logger that a component
// never turns on (it reads `process.env.JCO_DEBUG`, and a component has no
// `process`), and sizes every string it hands out one UTF-16 unit at a time.
// StarlingMonkey interprets that JavaScript, so this was most of a call: a
// `handle` whose handler returns a constant cost about 121,000 WebAssembly
// instructions before any atom code ran (docs/benchmarks.md).
//
// What. Three rewrites of the generated text, each applied only where the text
// has the shape this pass knows, so that a componentize-js that generates
// something else gets its own glue back, slower but right:
// - the `_debugLog(...)` calls go;
// - an export that awaits one guest call (`ret = await guest(...);`) finishes
//   synchronously when the guest returns anything but a thenable, and returns
//   one shared resolved promise (the engine's embedding requires a promise:
//   a plain return traps); a thenable is awaited as before, and anything
//   thrown still becomes the rejection it was;
// - `_utf8AllocateAndEncode` encodes with the engine's native `TextEncoder`
//   in one call instead of measuring the string in a JavaScript loop.
// The result must parse, or the original is used.

/** Where build.mjs asked the hook to apply, and this file's URL (set by `initialize`). */
let target = null;
let glueUrl = null;

const REPORT = "radon-actors glue:";

/** Node's hook: told which componentize.js to rewrite. */
export function initialize(data) {
  target = data.componentize;
  glueUrl = data.glue;
}

// componentize.js writes the generated bindings to the file the engine runs
// at build time (wizer's initialisation) with this statement.
const ANCHOR = "await writeFile(initializerPath, jsBindings);";

/** Node's hook: componentize.js runs the bindings through `optimizeGlue`
 * before writing them; every other module loads untouched. */
export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (url !== target) {
    return loaded;
  }
  const source = String(loaded.source);
  if (!source.includes(ANCHOR)) {
    process.stderr.write(
      `${REPORT} not applied: this componentize-js does not write its bindings as 0.23 did\n`,
    );
    return loaded;
  }
  const patched =
    `import { optimizeGlue as __radonOptimizeGlue } from ${JSON.stringify(glueUrl)};\n` +
    source.replace(
      ANCHOR,
      `jsBindings = __radonOptimizeGlue(jsBindings, (line) => console.error(line));\n  ${ANCHOR}`,
    );
  return { ...loaded, source: patched };
}

const DEBUG_CALL = /^[ \t]*_debugLog\((?:[^;'"`]|'[^'\n]*'|"[^"\n]*")*?\);[ \t]*\n/gm;

const ENCODER_0_23 = `function _utf8AllocateAndEncode(s, realloc, memory) {
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
`;

// The same result (lone surrogates become U+FFFD, three bytes, in both), the
// exact size still allocated once; `codepoints` is read nowhere in 0.23's glue.
const ENCODER = `function _utf8AllocateAndEncode(s, realloc, memory) {
  if (typeof s !== 'string') {
    throw new TypeError('expected a string, received [' + typeof s + ']');
  }
  if (s.length === 0) { return { ptr: 1, len: 0 }; }
  const bytes = TEXT_ENCODER_UTF8.encode(s);
  const len = bytes.length;
  const ptr = realloc(0, 0, 1, len);
  new Uint8Array(memory.buffer, ptr, len).set(bytes);
  return { ptr, len };
}
`;

const RESOLVED = "__radonResolved";
const EXPORT = /^async function (export_[\w$]+)\(([^)]*)\) \{\n/gm;
const AWAIT_CALL = /\n([ \t]*)ret = await ([^\n;]+);\n/g;

/** One export made synchronous, or null when its text is not the known shape. */
function syncExport(name, params, body) {
  const calls = [...body.matchAll(AWAIT_CALL)];
  if (calls.length !== 1 || body.split("await ").length !== 2) {
    return null;
  }
  const [match, indent, call] = calls[0];
  const head = body.slice(0, calls[0].index);
  const tail = body.slice(calls[0].index + match.length);
  // Only bare returns: an export that returns a value through its promise
  // would need that value, not the shared resolved promise.
  if (/\breturn\b(?!;)/.test(tail) || /\breturn\b/.test(head) || /\bthis\b|\barguments\b/.test(body)) {
    return null;
  }
  const now = tail.replace(/\breturn;/g, `return ${RESOLVED};`);
  return (
    `function ${name}(${params}) {\n` +
    `  try {\n${head}\n${indent}ret = ${call};\n` +
    `${indent}if (ret !== null && typeof ret === 'object' && typeof ret.then === 'function') {\n` +
    `${indent}  return (async () => { ret = await ret;\n${tail}\n${indent}  })();\n` +
    `${indent}}\n${now}\n  return ${RESOLVED};\n` +
    `  } catch (e) {\n    return Promise.reject(e);\n  }\n}\n`
  );
}

/**
 * The bindings text with the rewrites above applied where their shapes match;
 * `report` gets one line saying what was done.
 *
 * @param {string} text componentize-js's generated bindings
 * @param {(line: string) => void} [report]
 * @returns {string}
 */
export function optimizeGlue(text, report = () => {}) {
  let out = text;
  let logs = 0;
  out = out.replace(DEBUG_CALL, () => {
    logs += 1;
    return "";
  });
  let encoder = false;
  if (out.includes(ENCODER_0_23)) {
    out = out.replace(ENCODER_0_23, ENCODER);
    encoder = true;
  }
  const exports = [...out.matchAll(EXPORT)];
  let synced = 0;
  let rewritten = "";
  let at = 0;
  for (const found of exports) {
    const start = found.index;
    const end = out.indexOf("\n}\n", start);
    if (end < 0) {
      continue;
    }
    const body = out.slice(start + found[0].length, end + 1);
    const sync = syncExport(found[1], found[2], body);
    if (sync === null) {
      continue;
    }
    rewritten += out.slice(at, start) + sync;
    at = end + 3;
    synced += 1;
  }
  out = rewritten + out.slice(at);
  if (synced > 0) {
    out = `const ${RESOLVED} = Promise.resolve();\n${out}`;
  }
  try {
    // Parse only (the body never runs here): a rewrite that broke the
    // syntax must not reach the component.
    new Function(out);
  } catch (err) {
    report(`${REPORT} not applied: the rewritten bindings do not parse (${err.message})`);
    return text;
  }
  report(
    `${REPORT} ${synced} of ${exports.length} exports answer a plain value without a promise turn, ` +
      `${logs} debug-log calls dropped, ${encoder ? "native" : "generated"} string encoder`,
  );
  return out;
}
