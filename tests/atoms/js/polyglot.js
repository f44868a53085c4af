// The JavaScript twin of tests/atoms/sandbox_atoms.py's Polyglot: the same
// handlers with the same observable behaviour, written as a JavaScript
// developer would (tests/sandbox/test_sandbox_polyglot.py runs one scenario
// against both).
import { Atom, RemoteError, Rejection, kw } from "radon-actors";

export class Refused extends Rejection {}

export class Polyglot extends Atom {
  constructor(start = 0) {
    super();
    this.start = start;
    this.value = start;
    this.seen = [];
  }

  incr(by = 1) {
    this.value += by;
    return this.value;
  }

  get() {
    return this.value;
  }

  me() {
    return this.ref;
  }

  echo(value) {
    return value;
  }

  remember(value) {
    this.seen.push(value);
    return this.seen.length;
  }

  history() {
    return this.seen;
  }

  fail(message) {
    throw new Error(message);
  }

  take(n) {
    if (n > this.value) throw new Refused(`cannot take ${n} of ${this.value}`);
    this.value -= n;
    return this.value;
  }

  async forward(target, by) {
    const first = await target.ask("incr", by);
    const second = await target.ask("incr", by);
    return first + second;
  }

  notify(target, by) {
    target.tell("incr", by);
  }

  async deposit(who, n) {
    // An on-demand atom of the host's program, by key, as far as the grant allows.
    return await this.onDemand("sandbox_atoms:Wallet", who).ask("add", n);
  }

  async fill(target, n) {
    for (let i = 0; i < n; i++) await target.send("remember", i); // waits when full
    return n;
  }

  flood(target, n) {
    for (let i = 0; i < n; i++) target.tell("remember", i); // throws when full
    return n;
  }

  async rescue(target) {
    try {
      await target.ask("fail", "inner");
      return "not raised";
    } catch (err) {
      return `caught ${err.message}`;
    }
  }

  async child(start) {
    const child = await this.spawn(Polyglot, start);
    await child.ask("incr", 1);
    return child;
  }

  later(delay, value) {
    this.sendAfter(delay, "remember", value);
  }

  // JavaScript only: the rest of the API.
  async keywords(target, by) {
    return await target.ask("incr", kw({ by }));
  }

  async patient(target, seconds) {
    try {
      return await target.askWithin(seconds, "hold", 10);
    } catch (err) {
      return [err instanceof RemoteError, err.is("AskTimeout")];
    }
  }

  async named(name, start) {
    const child = await this.spawnWith({ name }, Polyglot, start);
    return [child.name, await child.ask("get")];
  }

  shout(word) {
    this.log.warning("polyglot.said", { word, length: word.length });
    return word.toUpperCase();
  }

  hold(value) {
    // Stashed until `release`; the asker waits meanwhile.
    if (this.value < 100) {
      this.stash();
      return null;
    }
    return value;
  }

  release() {
    this.value = 100;
    this.unstashAll();
  }

  halt() {
    this.stop();
    return "stopping";
  }

  today() {
    return new Date(0); // crosses as its toJSON(): an ISO string
  }

  hidden() {
    return new (class Hidden {})(); // a class the module does not export: no portable form
  }

  kinds() {
    return {
      map: new Map([[1, "one"], ["two", 2]]),
      set: new Set(["a"]),
      bytes: new Uint8Array([0, 255]),
      big: 2n ** 64n,
      nan: NaN,
      unset: undefined,
    };
  }

  // JavaScript only: what a handler must not do.
  async stall() {
    await new Promise(() => {}); // a promise nobody settles
  }

  async both(target) {
    return await Promise.all([target.ask("incr", 1), target.ask("incr", 1)]);
  }

  wait() {
    return new Promise((resolve) => setTimeout(resolve, 1000)); // no clocks in the sandbox
  }

  spin() {
    for (;;) {}
  }

  grow() {
    const chunks = [];
    for (;;) chunks.push(new Array(1 << 20).fill(chunks.length));
  }
}
