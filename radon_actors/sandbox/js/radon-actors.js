// radon-actors' guest runtime for JavaScript atoms: the JavaScript side of
// radon:atom@0.6.0 (docs/standard.md), as radon_actors/sandbox/_guest.py is
// the Python side. `radon build --js FILE` bundles it, as the module
// "radon-actors", with the atom's file into a component (docs/polyglot.md).
//
// An atom is an exported class that extends `Atom`; its methods are its
// handlers. Values cross the boundary as the standard's value format (JSON
// with tagged values); other atoms are named by the handles the host granted
// (a `Ref` holds its handle, never an address). A handler that awaits a radon
// operation (an ask, a spawn) suspends the turn: the export call returns "s",
// the host performs the operation and calls `resume`, which settles the
// awaited promise. componentize-js runs the engine's event loop until the
// promise an export returns settles, so every turn ends in one export call.

const CTX = Symbol("radon.ctx");
const RECORD_TYPE = Symbol("radon.record");
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const STANDARD = "0.6.0";

// ---------------------------------------------------------------------------
// Public classes
// ---------------------------------------------------------------------------

/** Keyword arguments for a handler written in Python: `ref.ask("f", 1, kw({by: 2}))`. */
export class Kwargs {
  constructor(fields) {
    Object.assign(this, fields);
  }
}

/** `kw({name: value})`: keyword arguments, as the last argument of an ask or tell. */
export function kw(fields) {
  return new Kwargs(fields);
}

/** A record of another language's class (a Python dataclass, say): its fields
 * as properties, its type's name as `recordType(record)`. */
export class Record {
  constructor(type, fields) {
    Object.defineProperty(this, RECORD_TYPE, { value: type });
    Object.assign(this, fields);
  }
}

/** The `"module:QualName"` of a record (or of any atom class instance). */
export function recordType(value) {
  return value[RECORD_TYPE];
}

/** A business error: thrown by a handler, it answers the asker and the atom
 * carries on (no restart), as radon_actors.Rejection does in Python. */
export class Rejection extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** An exception that crossed the boundary (from the host or another atom):
 * `type` is its type's `"module:QualName"`, `bases` the names of the types
 * it derives from, `answer` whether it was raised as an answer. */
export class RemoteError extends Error {
  constructor(body) {
    super(String(body.message));
    this.name = "RemoteError";
    this.type = String(body.type);
    this.bases = Array.isArray(body.bases) ? body.bases.map(String) : [];
    this.args = Array.isArray(body.args) ? body.args : [];
    this.answer = body.answer === true;
    this.remoteTraceback = typeof body.traceback === "string" ? body.traceback : "";
  }

  /** Whether the error is of type `name` (a bare class name, or "module:QualName"). */
  is(name) {
    const bare = this.type.slice(this.type.indexOf(":") + 1);
    return this.type === name || bare === name || this.bases.includes(name);
  }
}

/** A reference to an atom: ask or tell it by handler name (or by a method of
 * its class). Only references the host granted reach anything. */
export class Ref {
  constructor(handle, id, name) {
    this.handle = handle;
    this.id = id;
    this.name = name;
  }

  /** Ask `handler(...args)` and wait for the result (a radon operation). */
  ask(handler, ...args) {
    return askWith(this, null, handler, args);
  }

  /** Ask with a timeout in seconds (`AskTimeout` if it passes). */
  askWithin(seconds, handler, ...args) {
    return askWith(this, Number(seconds), handler, args);
  }

  /** Queue `handler(...args)` at the atom, waiting for room if its mailbox is
   * full (a radon operation only then; `tell` throws instead). */
  async send(handler, ...args) {
    const name = handlerName(handler);
    const message = writeMessage(args);
    const error = rt.host.tell(handleOf(this), name, message);
    if (error === undefined) return;
    const err = readError(error);
    if (!(err instanceof RemoteError && err.is("MailboxFull"))) throw err;
    await hostOp({ tag: "send", val: { target: handleOf(this), handler: name, message } });
  }

  /** Queue `handler(...args)` at the atom without waiting. */
  tell(handler, ...args) {
    const error = rt.host.tell(handleOf(this), handlerName(handler), writeMessage(args));
    if (error !== undefined) throw readError(error);
  }

  toString() {
    return `<Ref ${this.id}${this.name ? ` (${this.name})` : ""}>`;
  }
}

// ---------------------------------------------------------------------------
// Durable state (docs/durability.md; the standard's state operations)
// ---------------------------------------------------------------------------

const STATE_FORMAT = 1;
const STATE_RECORD = "radon_js:State"; // a State in a snapshot

class StateSpec {
  constructor(factory, options) {
    if (typeof factory !== "function") {
      throw new TypeError("state() takes a function that makes the state's first value");
    }
    const opts = options || {};
    this.factory = factory;
    this.version = opts.version ?? 1;
    this.upgrade = opts.upgrade ?? null;
    if (!Number.isInteger(this.version) || this.version < 1) {
      throw new TypeError(`a state's version is a positive integer, not ${this.version}`);
    }
  }
}

/** Declare a durable state in `static states = {name: state(() => initial, {version, upgrade})}`
 * (a plain function works too: `{name: () => initial}`). */
export function state(factory, options) {
  return new StateSpec(factory, options);
}

function statesOf(cls) {
  const declared = cls.states;
  if (declared === undefined || declared === null) return [];
  return Object.entries(declared).map(([name, spec]) => [
    name,
    spec instanceof StateSpec ? spec : new StateSpec(spec),
  ]);
}

function rebuildState(spec, name, doc) {
  if (doc === null || typeof doc !== "object" || doc["radon-state"] !== STATE_FORMAT) {
    throw new TypeError(`the stored state ${JSON.stringify(name)} is not a state document`);
  }
  const version = doc.version;
  if (version > spec.version) {
    throw new TypeError(
      `the state ${JSON.stringify(name)} was stored by version ${version} of its class, and ` +
        `this one is version ${spec.version}: run the newer code`,
    );
  }
  let body = "fields" in doc ? doc.fields : doc.value;
  if (version < spec.version) {
    if (spec.upgrade === null) {
      throw new TypeError(
        `the state ${JSON.stringify(name)} is stored as version ${version} and declares no upgrade`,
      );
    }
    body = spec.upgrade(version, body);
  }
  return body;
}

/** A durable state as a handler sees it: `this.cart.value`, `await this.cart.save()`. */
export class State {
  constructor(name, spec, value, etag, exists) {
    this.name = name;
    this.spec = spec; // its declaration: version, initial value, upgrade
    this.value = value;
    this.etag = etag;
    this.exists = exists;
    this.stale = false;
  }

  /** Write the value to the store; `StateConflict` if another incarnation wrote since. */
  async save() {
    this.check();
    const document = writeValue({
      "radon-state": STATE_FORMAT,
      version: this.spec.version,
      value: this.value,
    });
    this.etag = await this.guard(
      hostOp({ tag: "write-state", val: { name: this.name, document, etag: this.etag ?? undefined } }),
    );
    this.exists = true;
  }

  /** Remove the stored state (the value goes back to the initial one). */
  async clear() {
    this.check();
    this.etag = await this.guard(
      hostOp({ tag: "clear-state", val: { name: this.name, etag: this.etag ?? undefined } }),
    );
    this.exists = false;
    this.value = this.spec.factory();
  }

  /** Read the stored state again, dropping unsaved changes. */
  async reload() {
    const fresh = await loadState(this.name, this.spec);
    this.value = fresh.value;
    this.etag = fresh.etag;
    this.exists = fresh.exists;
  }

  check() {
    if (this.stale) {
      throw new RemoteError({
        type: "radon_actors._errors:StateConflict",
        bases: ["StateConflict", "RadonError"],
        message: `this incarnation lost the state ${JSON.stringify(this.name)} to another one; let it restart`,
      });
    }
  }

  async guard(operation) {
    try {
      return await operation;
    } catch (err) {
      if (err instanceof RemoteError && err.is("StateConflict")) this.stale = true;
      throw err;
    }
  }
}

async function loadState(name, spec) {
  const stored = await hostOp({ tag: "read-state", val: name });
  if (stored === null) return new State(name, spec, spec.factory(), null, false);
  const [doc, etag] = stored;
  if (doc === null) return new State(name, spec, spec.factory(), etag, false);
  return new State(name, spec, rebuildState(spec, name, doc), etag, true);
}

// Before onStart: every declared state, from the store.
async function startAtom(instance) {
  for (const [name, spec] of statesOf(instance.constructor)) {
    instance[name] = await loadState(name, spec);
  }
  return await instance.onStart();
}

function durableTypeOf(cls, name) {
  const own = Object.prototype.hasOwnProperty.call(cls, "durableType") ? cls.durableType : undefined;
  return typeof own === "string" ? own : name.replace(":", ".");
}

/** The base class of atoms written in JavaScript. Extend it and export the
 * class; its methods (not starting with `_`) are its handlers, `onStart` and
 * `onStop` its lifecycle hooks. */
export class Atom {
  constructor() {
    Object.defineProperty(this, CTX, { value: rt.pendingContext, writable: true });
  }

  /** This atom's own reference. */
  get ref() {
    return this[CTX].ref;
  }

  /** A structured logger: `this.log.info("event", {field: value})`. */
  get log() {
    return this[CTX].log;
  }

  /** The host's monotonic clock, in seconds (JavaScript timers are not available). */
  now() {
    return rt.host.now();
  }

  /** Spawn a child atom of a class of this component and wait until it started. */
  spawn(cls, ...args) {
    return spawnWith(cls, args, undefined, "class-default");
  }

  /** Spawn with options: `{name, isolation}` (isolation: "class-default",
   * "native" or "sandboxed"). */
  spawnWith(options, cls, ...args) {
    const opts = options || {};
    return spawnWith(cls, args, opts.name, opts.isolation || "class-default");
  }

  /** Stop this atom once the current turn ends. */
  stop() {
    rt.host.stop();
  }

  /** The reference of the on-demand atom of class `className` ("module:QualName",
   * a class of the host's program) with `key`, without activating it: its
   * first message does. Throws `SandboxDenied` unless the host granted this
   * atom that class (`SandboxConfig(on_demand=[...])`). */
  onDemand(className, key) {
    if (typeof className !== "string" || typeof key !== "string" || key === "") {
      throw new TypeError("onDemand takes a class name and a non-empty key, both strings");
    }
    let text;
    try {
      text = rt.host.onDemand(className, key);
    } catch (err) {
      if (err && typeof err.payload === "string") throw readError(err.payload);
      throw err;
    }
    const ref = readValue(text);
    if (!(ref instanceof Ref)) throw new TypeError("the host answered onDemand with no reference");
    return ref;
  }

  /** Tell this atom `handler(...args)` once, `delay` seconds from now. */
  sendAfter(delay, handler, ...args) {
    return startTimer(delay, false, handler, args);
  }

  /** Tell this atom `handler(...args)` every `interval` seconds. */
  sendEvery(interval, handler, ...args) {
    return startTimer(interval, true, handler, args);
  }

  /** A reminder: tell this on-demand atom `handler(...args)` `options.due`
   * seconds from now (then every `options.period` seconds, if given), even if
   * it was collected meanwhile or the process restarted: reminders are kept in
   * the state store. Replaces this atom's reminder called `name`, if any. A
   * promise: await it. Use `sendAfter` for what need not outlive the
   * activation. */
  remind(name, options, handler, ...args) {
    let request;
    try {
      if (typeof name !== "string" || name === "") {
        throw new TypeError("a reminder's name is a non-empty string");
      }
      const opts = options || {};
      const due = opts.due;
      const period = opts.period;
      if (typeof due !== "number" || !Number.isFinite(due) || due < 0) {
        throw new TypeError("remind takes {due}: seconds from now, a finite number >= 0");
      }
      if (period !== undefined && period !== null && (typeof period !== "number" || !(period > 0) || !Number.isFinite(period))) {
        throw new TypeError("a reminder's period is a finite number of seconds > 0");
      }
      request = {
        name,
        handler: handlerName(handler),
        message: writeMessage(args),
        due,
        period: period === null ? undefined : period,
      };
    } catch (err) {
      return Promise.reject(err);
    }
    return hostOp({ tag: "remind", val: request });
  }

  /** Remove this atom's reminder `name`: a promise of whether it had one. */
  forgetReminder(name) {
    if (typeof name !== "string") return Promise.reject(new TypeError("a reminder's name is a string"));
    return hostOp({ tag: "forget-reminder", val: name });
  }

  /** Set the message being handled aside, unanswered, until `unstashAll`. */
  stash() {
    const error = rt.host.stash();
    if (error !== undefined) throw readError(error);
  }

  /** Put every stashed message back at the head of the mailbox, in order. */
  unstashAll() {
    rt.host.unstashAll();
  }

  onStart() {}

  onStop() {}
}

class Timer {
  constructor(id) {
    this.id = id;
  }

  cancel() {
    rt.host.cancelTimer(this.id);
  }

  get active() {
    return rt.host.timerActive(this.id);
  }
}

class Logger {
  constructor(bound) {
    this.bound = bound;
  }

  bind(fields) {
    return new Logger({ ...this.bound, ...fields });
  }

  emit(level, event, fields) {
    const merged = { ...this.bound, ...(fields || {}) };
    let text;
    try {
      text = writeValue(merged, logFallback);
    } catch (err) {
      text = writeValue(Object.fromEntries(Object.entries(merged).map(([k, v]) => [k, String(v)])));
    }
    rt.host.log(level, String(event), text);
  }

  debug(event, fields) {
    this.emit("debug", event, fields);
  }

  info(event, fields) {
    this.emit("info", event, fields);
  }

  warning(event, fields) {
    this.emit("warning", event, fields);
  }

  warn(event, fields) {
    this.emit("warning", event, fields);
  }

  error(event, fields) {
    this.emit("error", event, fields);
  }
}

// ---------------------------------------------------------------------------
// The runtime's state (one atom per instance)
// ---------------------------------------------------------------------------

// A turn's phases: none running; in the handler's synchronous part; waiting on
// the event loop (promises), where an operation ends the export call with "s".
const IDLE = 0;
const SYNC = 1;
const ASYNC = 2;

const rt = {
  phase: IDLE,
  host: null, // the `radon:atom/host` imports
  module: "", // this component's module name ("tokenizer")
  classes: new Map(), // "module:Name" -> exported class
  instance: null,
  pendingContext: null, // the context the next Atom constructor installs
  request: undefined, // what the last "s" outcome waits for
  waiting: null, // the suspended operation: {token, resolve, reject}
  settle: null, // resolves the current export's promise with an outcome
  ended: null, // the outcome of a turn that ended with an operation outstanding
  tokens: 1n,
  handlers: null, // handler name -> {fn, params, suspends}
  classNames: new Map(), // exported class -> "module:Name"
  restoring: null, // the class a snapshot is being restored for
};

function makeContext(atomId, name) {
  return { ref: new Ref(0, atomId, name ?? null), log: new Logger({}) };
}

// ---------------------------------------------------------------------------
// Values: the standard's value format
// ---------------------------------------------------------------------------

function handleOf(ref) {
  if (!(ref instanceof Ref) || typeof ref.handle !== "number") {
    throw new TypeError(`${ref} is not a reference this atom was given`);
  }
  return ref.handle;
}

function handlerName(handler) {
  if (typeof handler === "string") return handler;
  if (typeof handler === "function" && handler.name) return handler.name;
  throw new TypeError(`a handler is named by a string or a method, not ${typeof handler}`);
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function unbase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function classNameOf(value) {
  const ctor = value.constructor;
  for (const [name, cls] of rt.classes) if (cls === ctor) return name;
  return null;
}

function errorBody(err, answer) {
  if (err instanceof RemoteError) {
    const body = { type: err.type, bases: err.bases, message: err.message };
    if (err.remoteTraceback) body.traceback = err.remoteTraceback;
    if (answer || err.answer) body.answer = true;
    return body;
  }
  const isError = err instanceof Error;
  const name = isError ? err.name || err.constructor.name || "Error" : "Error";
  const bases = [];
  if (isError) {
    // The JavaScript error types the host knows by a Python name.
    if (err instanceof TypeError) bases.push("TypeError");
    else if (err instanceof RangeError) bases.push("ValueError");
    else if (err instanceof SyntaxError) bases.push("ValueError");
    if (err instanceof Rejection) bases.push("Rejection");
  }
  // SpiderMonkey's out-of-memory error is the string "out of memory".
  if (!isError && String(err) === "out of memory") bases.push("MemoryError");
  const body = {
    type: `js:${name}`,
    bases,
    message: isError ? String(err.message) : String(err),
  };
  if (isError && typeof err.stack === "string" && err.stack) body.traceback = err.stack;
  if (answer) body.answer = true;
  return body;
}

// Encoding: JSON.stringify with a replacer that tags what JSON has no type for.
function tag(value, fallback) {
  switch (typeof value) {
    case "number":
      if (Number.isFinite(value)) {
        if (Number.isInteger(value) && Math.abs(value) > MAX_SAFE) {
          return { $int: BigInt(value).toString() };
        }
        return value;
      }
      return { $float: Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf" };
    case "bigint":
      return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : { $int: value.toString() };
    case "undefined":
      return null;
    case "function":
    case "symbol":
      if (fallback) return fallback(value);
      throw new TypeError(`a ${typeof value} has no portable form`);
    case "object":
      break;
    default:
      return value;
  }
  if (value === null || Array.isArray(value)) return value;
  if (value instanceof Ref) return { $ref: [handleOf(value), value.id, value.name] };
  if (value instanceof Kwargs) return { $kw: { ...value } };
  if (value instanceof Map) return { $map: Array.from(value.entries()) };
  if (value instanceof Set) return { $set: Array.from(value) };
  if (value instanceof Uint8Array) return { $bytes: base64(value) };
  if (value instanceof ArrayBuffer) return { $bytes: base64(new Uint8Array(value)) };
  if (value instanceof Error) return { $error: errorBody(value, false) };
  if (value instanceof Record) return { $record: [value[RECORD_TYPE], { ...value }] };
  if (value instanceof State) {
    const { name, value: v, etag, exists, stale } = value;
    const version = value.spec.version;
    return { $record: [STATE_RECORD, { name, version, value: v, etag, exists, stale }] };
  }
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0].startsWith("$")) return { $map: [[keys[0], value[keys[0]]]] };
    return value;
  }
  const name = classNameOf(value);
  if (name !== null) return { $record: [name, { ...value }] };
  if (fallback) return fallback(value);
  throw new TypeError(
    `a ${value.constructor?.name ?? "value"} has no portable form (use plain objects, ` +
      "arrays, Maps, Sets, Uint8Arrays, Refs or instances of this module's exported classes)",
  );
}

// Tagged values the replacer made are plain objects: it is called on them again
// and must leave them alone (their one "$" key would be re-tagged as a $map).
function replacerFor(fallback) {
  const made = new WeakSet();
  return function replacer(key, value) {
    // JSON.stringify calls toJSON first (a Date, say): keep what it made.
    const raw = this[key];
    if (raw !== null && typeof raw === "object") {
      if (made.has(raw)) return raw;
      if (raw !== value && typeof raw.toJSON === "function") return value;
    }
    const tagged = tag(raw, fallback);
    if (tagged !== raw && tagged !== null && typeof tagged === "object") made.add(tagged);
    return tagged;
  };
}

const plainReplacer = replacerFor(null);
const NON_ASCII = /[\u0080-\uffff]/g;
const HAS_NON_ASCII = /[\u0080-\uffff]/;

function ascii(text) {
  if (!HAS_NON_ASCII.test(text)) return text;
  return text.replace(NON_ASCII, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

function writeValue(value, fallback) {
  // The common results first, without a replacer call per node.
  switch (typeof value) {
    case "number":
      // No call for an int32 (the interpreter pays dearly for each call).
      if ((value | 0) === value) return "" + value;
      if (Number.isSafeInteger(value)) return String(value);
      break;
    case "string":
      return ascii(JSON.stringify(value));
    case "boolean":
      return value ? "true" : "false";
    case "undefined":
      return "null";
    default:
      if (value === null) return "null";
  }
  const text = JSON.stringify(value, fallback ? replacerFor(fallback) : plainReplacer);
  return ascii(text === undefined ? "null" : text);
}

function logFallback(value) {
  return String(value);
}

function writeMessage(args) {
  return writeValue(args);
}

// Decoding: JSON.parse with a reviver that rebuilds tagged values. Only the
// host's text is read here (what the host checked, or wrote itself).
function revive(key, value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1 || !keys[0].startsWith("$")) return value;
  const body = value[keys[0]];
  switch (keys[0]) {
    case "$int":
      return BigInt(body);
    case "$float":
      return body === "nan" ? NaN : body === "inf" ? Infinity : -Infinity;
    case "$tuple":
      return body;
    case "$set":
    case "$frozenset":
      return new Set(body);
    case "$bytes":
      return unbase64(body);
    case "$map":
      return new Map(body);
    case "$ref":
      return new Ref(body[0], body[1], body[2]);
    case "$record": {
      if (body[0] === STATE_RECORD) return restoreState(body[1]);
      const cls = rt.classes.get(body[0]);
      if (cls !== undefined) return Object.assign(Object.create(cls.prototype), body[1]);
      return new Record(body[0], body[1]);
    }
    case "$typed":
      return body[1];
    case "$error":
      return new RemoteError(body);
    case "$global":
      return { global: body };
    case "$kw":
      return new Kwargs(body);
    default:
      throw new TypeError(`unknown tag ${keys[0]}`);
  }
}

// A State back from a snapshot: its factory is the class's declaration's.
function restoreState(fields) {
  const cls = rt.restoring;
  const found = cls ? statesOf(cls).find(([name]) => name === fields.name) : undefined;
  const spec = found ? found[1] : new StateSpec(() => null, { version: fields.version });
  const restored = new State(fields.name, spec, fields.value, fields.etag, fields.exists);
  restored.stale = fields.stale === true;
  return restored;
}

function readValue(text) {
  // Only tagged values need the reviver (called for every node otherwise).
  return text.indexOf('"$') < 0 ? JSON.parse(text) : JSON.parse(text, revive);
}

function readError(text) {
  try {
    const value = readValue(text);
    return value instanceof Error ? value : new Error(String(value));
  } catch (err) {
    return new Error(`an error from the host cannot be read: ${err}`);
  }
}

// ---------------------------------------------------------------------------
// Operations: a turn waits for the host
// ---------------------------------------------------------------------------

function hostOp(op) {
  if (rt.phase === IDLE || rt.waiting !== null || rt.ended !== null) {
    return Promise.reject(
      new Error(
        "a radon operation can only be awaited inside a turn, one at a time " +
          "(await each ask before the next; Promise.all over asks is not supported)",
      ),
    );
  }
  return new Promise((resolve, reject) => {
    const token = rt.tokens++;
    rt.waiting = { token, resolve, reject };
    rt.request = { token, op };
    if (rt.phase === ASYNC) {
      // The turn's export call is waiting on the event loop: end it with "s".
      const settle = rt.settle;
      rt.settle = null;
      settle("s");
    } // else the handler is still in its synchronous part: runTurn returns "s".
  });
}

function askWith(ref, timeout, handler, args) {
  let request;
  try {
    request = {
      target: handleOf(ref),
      handler: handlerName(handler),
      message: writeMessage(args),
      timeout: timeout === null ? undefined : timeout,
    };
  } catch (err) {
    return Promise.reject(err);
  }
  return hostOp({ tag: "ask", val: request });
}

function spawnWith(cls, args, name, isolation) {
  let request;
  try {
    const className = typeof cls === "string" ? cls : rt.classNames.get(cls);
    if (className === undefined) {
      throw new TypeError("spawn takes an atom class this module exports");
    }
    request = { class: className, message: writeMessage(args), name, isolation };
  } catch (err) {
    return Promise.reject(err);
  }
  return hostOp({ tag: "spawn", val: request });
}

function startTimer(delay, periodic, handler, args) {
  try {
    return new Timer(
      rt.host.startTimer(Number(delay), periodic, handlerName(handler), writeMessage(args)),
    );
  } catch (err) {
    if (err && typeof err.payload === "string") throw readError(err.payload);
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Turns and outcomes
// ---------------------------------------------------------------------------

// An `$error` value (written by hand: a plain object with one "$" key would be
// written as a $map).
function errorText(err, answer) {
  let body;
  try {
    body = writeValue(errorBody(err, answer));
  } catch (inner) {
    body = writeValue({ type: "js:Error", bases: [], message: String(err) });
  }
  return '{"$error":' + body + "}";
}

function failed(err, answer) {
  return "f" + errorText(err, answer);
}

function done(value) {
  // An int32, writeValue's first case, inlined: each call costs the guest's
  // interpreter thousands of instructions.
  if (typeof value === "number" && (value | 0) === value) return "d" + value;
  try {
    return "d" + writeValue(value);
  } catch (err) {
    return failed(new TypeError(`the result cannot leave the sandbox: ${err.message}`), false);
  }
}

function isAnswer(err) {
  return err instanceof Rejection || (err instanceof RemoteError && err.answer);
}

// Run `fn` as a turn. A handler that returns a plain value ends the turn now
// (no promise, the fast path); one that returns a promise either asked the host
// for an operation in its synchronous part (the outcome is "s" now) or waits on
// the event loop, and the export returns a promise that settles with "s" when
// the turn waits for the host, or with the turn's outcome.
//
// The guest's JavaScript is interpreted, where a call costs thousands of
// instructions and `instanceof` more: `handle` inlines this for its turns
// (keep the two alike), and a plain integer result skips `done`.
function runTurn(fn, instance, args) {
  if (rt.phase !== IDLE || rt.waiting !== null) clearTurn(); // a turn the host gave up
  rt.ended = null;
  rt.phase = SYNC;
  let result;
  try {
    result = fn.apply(instance, args);
  } catch (err) {
    clearTurn();
    return failed(err, isAnswer(err));
  }
  return turnResult(result);
}

// The outcome of a turn whose handler returned `result` (see runTurn).
function turnResult(result) {
  if (typeof result !== "object" || result === null || !(result instanceof Promise)) {
    rt.phase = IDLE;
    if (rt.waiting !== null) {
      clearTurn();
      return failed(
        new Error("the handler started a radon operation without awaiting it: await (or return) it"),
        false,
      );
    }
    return done(result);
  }
  rt.phase = ASYNC;
  result.then(
    (value) => finish(done(value)),
    (err) => finish(failed(err, isAnswer(err))),
  );
  if (rt.waiting !== null) return "s";
  return new Promise((settle) => {
    rt.settle = settle;
  });
}

function clearTurn() {
  rt.phase = IDLE;
  rt.settle = null;
  rt.waiting = null;
  rt.request = undefined;
}

function finish(outcome) {
  const settle = rt.settle;
  if (settle === null) {
    // The turn ended while an operation it started (and did not await) is still
    // with the host: its outcome goes out with that operation's resume.
    rt.ended = outcome;
    return;
  }
  clearTurn();
  settle(outcome);
}

const NO_ARGS = Object.freeze([]);

function readArgs(message, spec) {
  if (message === "[]") return NO_ARGS;
  // readValue, inlined: each call costs the guest's interpreter dearly.
  const args = message.indexOf('"$') < 0 ? JSON.parse(message) : JSON.parse(message, revive);
  if (!Array.isArray(args)) throw new TypeError("a message is an array of arguments");
  const last = args[args.length - 1];
  if (typeof last !== "object" || last === null || !(last instanceof Kwargs)) return args;
  // Keyword arguments go to the parameters of those names.
  args.pop();
  const params = spec ? spec.params : [];
  for (const [name, value] of Object.entries(last)) {
    const at = params.findIndex((p) => p[0] === name && p[1] !== "var-positional");
    if (at < 0) throw new TypeError(`unexpected keyword argument ${JSON.stringify(name)}`);
    while (args.length < at) args.push(undefined);
    if (at < args.length && args[at] !== undefined) {
      throw new TypeError(`got multiple values for argument ${JSON.stringify(name)}`);
    }
    args[at] = value;
  }
  return args;
}

// ---------------------------------------------------------------------------
// Classes, handlers and the manifest
// ---------------------------------------------------------------------------

// The parameter list of a function's source: [name, kind, has a default] each,
// as the manifest describes parameters (JavaScript has no keywords; a named
// parameter also takes a keyword argument from a Python caller).
function paramsOf(source) {
  const open = source.indexOf("(");
  if (open < 0) return [];
  const parts = [];
  let depth = 0;
  let current = "";
  let quote = null;
  for (let i = open + 1; i < source.length; i++) {
    const c = source[i];
    if (quote !== null) {
      current += c;
      if (c === "\\") {
        current += source[++i];
      } else if (c === quote) {
        quote = null;
      }
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      quote = c;
      current += c;
    } else if (c === "(" || c === "[" || c === "{") {
      depth++;
      current += c;
    } else if (c === ")" || c === "]" || c === "}") {
      if (depth === 0) break;
      depth--;
      current += c;
    } else if (c === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += c;
    }
  }
  if (current.trim()) parts.push(current);
  return parts.map((raw, i) => {
    const text = raw.trim();
    if (text.startsWith("...")) {
      const name = text.slice(3).trim();
      return [/^[A-Za-z_$][\w$]*$/.test(name) ? name.replace(/\$/g, "_") : "args", "var-positional", false];
    }
    const eq = topLevelEquals(text);
    const name = (eq < 0 ? text : text.slice(0, eq)).trim();
    const ok = /^[A-Za-z_][\w]*$/.test(name);
    return [ok ? name : `arg${i}`, ok ? "positional-or-keyword" : "positional-only", eq >= 0];
  });
}

function topLevelEquals(text) {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "=" && depth === 0 && text[i + 1] !== ">") return i;
  }
  return -1;
}

// The constructor's parameters: from the nearest class that declares one.
function initParams(cls) {
  for (let k = cls; k && k !== Atom && k !== Object; k = Object.getPrototypeOf(k)) {
    const source = Function.prototype.toString.call(k);
    const at = constructorAt(source);
    if (at >= 0) return paramsOf(source.slice(at));
  }
  return [];
}

// Where the class body's own `constructor(` is, skipping nested bodies and strings.
function constructorAt(source) {
  const body = source.indexOf("{");
  let depth = 0;
  let quote = null;
  for (let i = body; i < source.length; i++) {
    const c = source[i];
    if (quote !== null) {
      if (c === "\\") i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") quote = c;
    else if (c === "{") depth++;
    else if (c === "}") depth--;
    else if (depth === 1 && source.startsWith("constructor", i) && /[\s(]/.test(source[i + 11] ?? "")) {
      const before = source[i - 1];
      if (!before || /[\s;}]/.test(before)) return i;
    }
  }
  return -1;
}

const RESERVED = new Set(["constructor", "onStart", "onStop"]);

// Handler name -> {fn, params, suspends}: every method of the class and its
// bases below Atom, except lifecycle hooks and names starting with "_".
function handlersOf(cls) {
  const table = new Map();
  const chain = [];
  for (let p = cls.prototype; p && p !== Atom.prototype && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    chain.push(p);
  }
  for (const proto of chain) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (table.has(name) || RESERVED.has(name) || name.startsWith("_")) continue;
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (typeof desc.value !== "function") continue;
      const fn = desc.value;
      table.set(name, {
        fn,
        params: paramsOf(Function.prototype.toString.call(fn)),
        suspends: fn.constructor.name === "AsyncFunction",
      });
    }
  }
  return table;
}

function manifest() {
  const atoms = {};
  for (const [name, cls] of rt.classes) {
    if (!(cls.prototype instanceof Atom)) continue;
    const handlers = [];
    for (const [hname, spec] of handlersOf(cls)) {
      if (!/^[A-Za-z_]\w*$/.test(hname)) continue;
      handlers.push({ name: hname, params: spec.params, suspends: spec.suspends, answers: [] });
    }
    const entry = { init: initParams(cls), handlers };
    const states = statesOf(cls);
    if (states.length > 0) {
      entry["durable-type"] = durableTypeOf(cls, name);
      entry.states = states.map(([stateName, spec]) => [stateName, spec.version]);
    }
    atoms[name] = entry;
  }
  return { standard: STANDARD, language: "javascript", atoms };
}

function atomClass(name) {
  const cls = rt.classes.get(name);
  if (cls === undefined || !(cls.prototype instanceof Atom)) {
    throw new TypeError(`${JSON.stringify(name)} is not an atom class of this component`);
  }
  return cls;
}

function install(cls, instance) {
  rt.instance = instance;
  // A null-prototype object, not the Map: a property read, not a call, per turn.
  rt.handlers = Object.assign(Object.create(null), Object.fromEntries(handlersOf(cls)));
  rt.ended = null;
  clearTurn();
}

// ---------------------------------------------------------------------------
// The `guest` interface
// ---------------------------------------------------------------------------

/**
 * The `guest` export of a component whose atoms are `module`'s exported
 * classes. `host` is the `radon:atom/host` import, `name` the module's name
 * (the part before ":" in its classes' names).
 */
export function serve(host, module, name) {
  rt.host = host;
  rt.module = name;
  for (const [exported, value] of Object.entries(module)) {
    if (typeof value === "function" && /^[A-Za-z_]\w*$/.test(exported)) {
      rt.classes.set(`${name}:${exported}`, value);
      rt.classNames.set(value, `${name}:${exported}`);
    }
  }
  return {
    manifest() {
      return writeValue(manifest());
    },

    create(atomId, atomName, className, message) {
      try {
        const cls = atomClass(className);
        const args = readArgs(message, { params: initParams(cls) });
        rt.pendingContext = makeContext(atomId, atomName);
        const instance = new cls(...args);
        rt.pendingContext = null;
        install(cls, instance);
      } catch (err) {
        rt.pendingContext = null;
        return failed(err, false);
      }
      return "dnull";
    },

    start() {
      const instance = rt.instance;
      if (statesOf(instance.constructor).length > 0) {
        return runTurn(startAtom, null, [instance]);
      }
      return runTurn(instance.onStart, instance, NO_ARGS);
    },

    finish() {
      const instance = rt.instance;
      return runTurn(instance.onStop, instance, NO_ARGS);
    },

    handle(handler, message) {
      const spec = rt.handlers[handler];
      if (spec === undefined) {
        return failed(
          new RemoteError({
            type: "radon_actors._errors:HandlerNotFound",
            bases: ["HandlerNotFound", "RadonError", "LookupError"],
            message: `the sandboxed atom has no handler ${JSON.stringify(handler)}`,
          }),
          false,
        );
      }
      let args;
      try {
        args = message === "[]" ? NO_ARGS : readArgs(message, spec); // no call for no arguments
      } catch (err) {
        return failed(new TypeError(`message for ${handler} cannot enter the sandbox: ${err.message}`), false);
      }
      // runTurn, inlined (see there): this is every message's path.
      if (rt.phase !== IDLE || rt.waiting !== null) clearTurn();
      rt.ended = null;
      rt.phase = SYNC;
      let result;
      try {
        result = spec.fn.apply(rt.instance, args);
      } catch (err) {
        clearTurn();
        return failed(err, isAnswer(err));
      }
      if (typeof result === "number" && (result | 0) === result && rt.waiting === null) {
        rt.phase = IDLE;
        return "d" + result;
      }
      return turnResult(result);
    },

    pending() {
      return rt.request;
    },

    resume(token, reply) {
      rt.request = undefined;
      const waiting = rt.waiting;
      if (waiting === null || waiting.token !== token) {
        return failed(new Error(`no suspended turn has token ${token}`), false);
      }
      rt.waiting = null;
      return new Promise((settle) => {
        if (rt.ended !== null) {
          // The turn is over (it did not await this operation): settle the
          // operation's promise for whoever holds it, and report the turn.
          const outcome = rt.ended;
          rt.ended = null;
          rt.phase = IDLE;
          settle(outcome);
        } else {
          rt.settle = settle;
        }
        let value;
        try {
          value = readValue(reply.val);
        } catch (err) {
          waiting.reject(new TypeError(`a reply cannot enter the sandbox: ${err.message}`));
          return;
        }
        if (reply.tag === "error") {
          waiting.reject(value instanceof Error ? value : new Error(String(value)));
        } else {
          waiting.resolve(value);
        }
      });
    },

    snapshot() {
      if (rt.waiting !== null) {
        throw { payload: errorText(new Error("cannot snapshot an atom in the middle of a turn"), false) };
      }
      try {
        return writeValue({ ...rt.instance });
      } catch (err) {
        throw { payload: errorText(new TypeError(`the atom's state cannot be encoded: ${err.message}`), false) };
      }
    },

    restore(atomId, atomName, className, state) {
      try {
        const cls = atomClass(className);
        rt.restoring = cls;
        const fields = readValue(state);
        rt.restoring = null;
        const instance = Object.create(cls.prototype);
        Object.defineProperty(instance, CTX, { value: makeContext(atomId, atomName), writable: true });
        Object.assign(instance, fields);
        install(cls, instance);
      } catch (err) {
        return failed(err, false);
      }
      return "dnull";
    },
  };
}
