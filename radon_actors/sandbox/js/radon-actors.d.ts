// Type declarations for "radon-actors", the module JavaScript atoms import
// (radon-actors.js beside this file; docs/polyglot.md). For editors and
// `tsc --checkJs`: `radon build --js-types DIR` writes this file to DIR.
//
// Values that cross the boundary (messages, results, state) are `any`: they
// are whatever the other side sent, in the standard's value format.

/** Keyword arguments for a handler written in Python: `ref.ask("f", 1, kw({by: 2}))`. */
export class Kwargs {
  constructor(fields: Record<string, any>);
  [field: string]: any;
}

/** `kw({name: value})`: keyword arguments, as the last argument of an ask or tell. */
export function kw(fields: Record<string, any>): Kwargs;

/** A record of another language's class (a Python dataclass, say): its fields
 * as properties, its type's name as `recordType(record)`. */
declare class RecordValue {
  constructor(type: string, fields: Record<string, any>);
  [field: string]: any;
}
export { RecordValue as Record };

/** The `"module:QualName"` of a record (or of any atom class instance). */
export function recordType(value: object): string | undefined;

/** A business error: thrown by a handler, it answers the asker and the atom
 * carries on (no restart), as radon_actors.Rejection does in Python. */
export class Rejection extends Error {
  constructor(message?: string);
}

/** An exception that crossed the boundary (from the host or another atom). */
export class RemoteError extends Error {
  /** Its type's `"module:QualName"`. */
  readonly type: string;
  /** The names of the types it derives from. */
  readonly bases: string[];
  readonly args: any[];
  /** Whether it was raised as an answer (a Rejection), not a crash. */
  readonly answer: boolean;
  readonly remoteTraceback: string;
  /** Whether the error is of type `name` (a bare class name, or "module:QualName"). */
  is(name: string): boolean;
}

/** A handler: its name, or a method of the atom's class. */
export type Handler = string | ((...args: any[]) => any);

/** A reference to an atom: ask or tell it by handler. Only references the
 * host granted reach anything. */
export class Ref {
  readonly id: string;
  readonly name: string | null;
  /** Ask `handler(...args)` and wait for the result (a radon operation: await it). */
  ask(handler: Handler, ...args: any[]): Promise<any>;
  /** Ask with a timeout in seconds (`AskTimeout` if it passes). */
  askWithin(seconds: number, handler: Handler, ...args: any[]): Promise<any>;
  /** Queue `handler(...args)`, waiting for room if the atom's mailbox is full. */
  send(handler: Handler, ...args: any[]): Promise<void>;
  /** Queue `handler(...args)` without waiting (throws `MailboxFull` if full). */
  tell(handler: Handler, ...args: any[]): void;
  toString(): string;
}

/** How a durable state is declared: `static states = {cart: state(() => ({items: []}))}`. */
export interface StateOptions<T> {
  /** The stored form's version (a positive integer; 1 by default). */
  version?: number;
  /** Brings a body stored at an older version up to this one. */
  upgrade?: (oldVersion: number, body: any) => T;
}

export interface StateSpec<T> {
  readonly factory: () => T;
  readonly version: number;
}

/** Declare a durable state: `static states = {name: state(() => initial, {version, upgrade})}`. */
export function state<T>(factory: () => T, options?: StateOptions<T>): StateSpec<T>;

/** A durable state as a handler sees it: `this.cart.value`, `await this.cart.save()`. */
export class State<T = any> {
  readonly name: string;
  value: T;
  /** The stored revision this value was read at (null: never saved). */
  readonly etag: string | null;
  readonly exists: boolean;
  /** Write `value` (a radon operation); `StateConflict` if another incarnation wrote first. */
  save(): Promise<void>;
  /** Delete the stored state; `value` goes back to the factory's. */
  clear(): Promise<void>;
  /** Read the stored state again. */
  reload(): Promise<void>;
}

/** A timer set with `sendAfter` or `sendEvery`. */
export interface Timer {
  cancel(): void;
  readonly active: boolean;
}

/** A structured logger: `this.log.info("event", {field: value})`. */
export interface Logger {
  bind(fields: Record<string, any>): Logger;
  debug(event: string, fields?: Record<string, any>): void;
  info(event: string, fields?: Record<string, any>): void;
  warning(event: string, fields?: Record<string, any>): void;
  warn(event: string, fields?: Record<string, any>): void;
  error(event: string, fields?: Record<string, any>): void;
}

export type Isolation = "class-default" | "native" | "sandboxed";

/** An atom class this module exports, or its name ("module:QualName"). */
export type AtomClass = (new (...args: any[]) => Atom) | string;

/** An atom: export a class that extends `Atom`; its methods are its handlers. */
export class Atom {
  constructor();
  /** This atom's own reference. */
  readonly ref: Ref;
  readonly log: Logger;
  /** The host's monotonic clock, in seconds (JavaScript timers are not available). */
  now(): number;
  /** Spawn a child atom of a class of this component and wait until it started. */
  spawn(cls: AtomClass, ...args: any[]): Promise<Ref>;
  /** Spawn with options. */
  spawnWith(
    options: { name?: string; isolation?: Isolation },
    cls: AtomClass,
    ...args: any[]
  ): Promise<Ref>;
  /** Stop this atom once the current turn ends. */
  stop(): void;
  /** The reference of the on-demand atom of class `className` ("module:QualName")
   * with `key`, without activating it; `SandboxDenied` unless granted. */
  onDemand(className: string, key: string): Ref;
  /** Tell this atom `handler(...args)` once, `delay` seconds from now. */
  sendAfter(delay: number, handler: Handler, ...args: any[]): Timer;
  /** Tell this atom `handler(...args)` every `interval` seconds. */
  sendEvery(interval: number, handler: Handler, ...args: any[]): Timer;
  /** A reminder kept in the state store (on-demand atoms): await it. */
  remind(
    name: string,
    options: { due: number; period?: number | null },
    handler: Handler,
    ...args: any[]
  ): Promise<void>;
  /** Remove this atom's reminder `name`: whether it had one. */
  forgetReminder(name: string): Promise<boolean>;
  /** Set the message being handled aside, unanswered, until `unstashAll`. */
  stash(): void;
  /** Put every stashed message back at the head of the mailbox, in order. */
  unstashAll(): void;
  onStart(): void | Promise<void>;
  onStop(): void | Promise<void>;
}
