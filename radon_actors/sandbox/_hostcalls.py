"""What the guest calls on the host: the atom's "system calls".

Two kinds, both defined by ``wit/atom.wit``:

* **Host imports** (:data:`HOST_FUNCS`, linked into every instance by
  ``LoadedComponent``): tell, stop, log, now, timers, stash, on-demand
  references. They run while the
  guest's call is on the stack, so they must not block and must not raise
  (wasmtime would turn the exception into a trap and poison the instance):
  errors go back to the guest encoded, as the WIT results say.
* **Operations** (:func:`perform`): ask and spawn, which wait on other atoms,
  and the atom's durable state and reminders, which wait on the store.
  The guest suspends its turn and returns the request; ``GuestAtom`` performs
  it here, on trio, and resumes the guest with the reply.

A host import finds its guest by the store's context pointer it receives
(:func:`register`), with no per-call bookkeeping. When the guest runs on a
worker thread (``SandboxConfig.threaded``), the imports that touch trio hop
back to the trio thread through ``GuestAtom.on_trio``.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio
from wasmtime import component as wc

from .. import _ref
from .._atom import Atom, import_atom_class
from ..runtime import lookup, resolve
from ._errors import MessageNotPortable, SandboxDenied, SandboxError
from ._value import ValueRejected, record_name

if TYPE_CHECKING:
    from ._instance import GuestAtom

__all__ = ["HOST_FUNCS", "perform", "register"]

# The standard's `isolation` enum (spawn-request) as System.spawn's sandbox=.
_ISOLATION: dict[str, bool | None] = {"class-default": None, "native": False, "sandboxed": True}
_LOG_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})

# Live guests by their store's context pointer. Process-wide because wasmtime
# calls the host imports with nothing else to tell the guest by, from any trio
# run or worker thread; weak, so it holds exactly the live instances.
_guests: weakref.WeakValueDictionary[int, GuestAtom] = weakref.WeakValueDictionary()


def register(context: int, guest: GuestAtom) -> None:
    """Make ``guest`` the one the host imports called from store ``context`` serve."""
    _guests[context] = guest


def _guest(store: Any) -> GuestAtom:
    """The guest whose call made a host import (``store`` is its StoreContext)."""
    guest = _guests.get(ctypes.cast(store._context(), ctypes.c_void_p).value or 0)
    if guest is None:  # pragma: no cover - only live guests run
        raise SandboxError("a host import was called by an unknown store")
    return guest


def _error_text(guest: GuestAtom, exc: BaseException) -> str:
    """``exc`` for the guest, as an ``$error`` value."""
    try:
        return guest.side.writer.value(exc)
    except Exception:  # pragma: no cover - error() leaves out what does not encode
        return guest.side.writer.value(SandboxError(f"{type(exc).__name__}: {exc}"))


def _read_message(guest: GuestAtom, message: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    _count_bytes(guest, len(message))
    try:
        return guest.side.reader.message(message)
    except ValueRejected as exc:
        raise MessageNotPortable(
            f"{guest.cell.label()} sent a message the host refuses: {exc}"
        ) from None


def _encode_reply(guest: GuestAtom, value: Any) -> str:
    try:
        return guest.side.writer.value(value)
    except Exception as exc:
        raise MessageNotPortable(f"the reply cannot enter the sandbox: {exc}") from exc


def _endpoint(guest: GuestAtom, handle: int) -> _ref.Endpoint:
    """Where a message from the guest to ``handle`` goes: the runtime's resolver
    (the one unpickled Refs use), so that placement can route it too."""
    try:
        ref = guest.side.target(handle)
    except ValueRejected as exc:
        raise MessageNotPortable(str(exc)) from None
    return resolve(ref.id, ref.name)


async def _child_class(guest: GuestAtom, name: str) -> type[Atom]:
    """The class a spawn request names: an atom class of the parent's own
    component, by its manifest (a stand-in; nothing is imported for a guest)."""
    from ._manifest import read_manifest, stand_in  # _engine imports this module

    loaded = guest.loaded
    manifest = loaded.manifest
    if manifest is None:
        manifest = await trio.to_thread.run_sync(read_manifest, loaded)
    if name not in manifest.atoms:
        raise SandboxDenied(
            f"a sandboxed atom can spawn atom classes of its own component only, not {name[:200]!r}"
        )
    return stand_in(loaded, name)


def _native_class(stand_in: type[Atom]) -> type[Atom]:
    """The host's own class for a component's atom class, for a native child a
    trusted atom may spawn: only one this process loaded already (nothing is
    imported for a guest)."""
    name = stand_in._radon_component[1]  # type: ignore[attr-defined]
    module_name, _, qualname = name.partition(":")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = vars(obj).get(part) if obj is not None and hasattr(obj, "__dict__") else None
    if not (isinstance(obj, type) and issubclass(obj, Atom) and record_name(obj) == name):
        raise SandboxDenied(
            f"no native class {name} is loaded on this host: a native child needs the "
            "host's own copy of the class (the program that defines it)"
        )
    return obj


# ----------------------------------------------------------------------
# Operations (a suspended turn's request), performed on trio
# ----------------------------------------------------------------------
async def perform(guest: GuestAtom, op: Any) -> wc.Variant:
    """Perform the operation a suspended turn of ``guest`` waits for; the reply
    to resume it with (its value, or the error it raised, encoded)."""
    try:
        return wc.Variant("value", _encode_reply(guest, await _perform(guest, op)))
    except Exception as exc:
        return wc.Variant("error", _error_text(guest, exc))


async def _perform(guest: GuestAtom, op: Any) -> Any:
    req = op.payload
    if op.tag == "ask":
        _count_send(guest)
        args, kwargs = _read_message(guest, req.message)
        endpoint = _endpoint(guest, req.target)
        return await endpoint.ask(_handler(req.handler), args, kwargs, req.timeout)
    if op.tag == "send":
        _count_send(guest)
        args, kwargs = _read_message(guest, req.message)
        await _endpoint(guest, req.target).send(_handler(req.handler), args, kwargs)
        return None
    if op.tag == "spawn":
        if req.isolation not in _ISOLATION:  # pragma: no cover
            raise SandboxError(f"unknown isolation {req.isolation!r} in a spawn request")
        config = guest.config
        if req.isolation == "native" and not config.native_children:
            raise SandboxDenied(
                "a sandboxed atom cannot spawn a native child (sandbox=False): the child "
                "would run code outside the sandbox; the host allows it with "
                "SandboxConfig(native_children=True)"
            )
        _count_send(guest)
        cell = guest.cell
        if len(cell.children) >= config.max_children:
            raise SandboxDenied(
                f"this sandboxed atom already has {len(cell.children)} live children, its "
                f"quota (SandboxConfig.max_children={config.max_children})"
            )
        cls = await _child_class(guest, getattr(req, "class"))
        args, kwargs = _read_message(guest, req.message)
        if req.isolation == "native":
            return await cell.spawn(_native_class(cls), args, kwargs, req.name, False)
        # Children stay sandboxed, with the parent's limits: the host's, never
        # the component's word (a manifest cannot raise them); and in the
        # parent's tree, whose total they count against while they live.
        from ._spawn import prepare

        runtime = await prepare(cls, config)
        tree = runtime.tree = guest.tree
        tree.reserve(config.memory)
        try:
            child = await cell.spawn(cls, args, kwargs, req.name, runtime)
        except BaseException:
            tree.release(config.memory)
            raise
        child_cell = lookup(child.id)
        if child_cell is None or child_cell.stopped.is_set():
            tree.release(config.memory)
        else:
            child_cell.add_stop_callback(lambda _c, _r: tree.release(config.memory))
        return child
    if op.tag in _STATE_OPS:
        _count_send(guest)
        return await _state_op(guest, op.tag, req)
    raise SandboxError(f"unknown guest operation {op.tag!r}")  # pragma: no cover


_STATE_OPS = frozenset({"read-state", "write-state", "clear-state", "remind", "forget-reminder"})
# A guest's reminder, as the store keeps it: an atom's reminders are one stored
# document, rewritten at each change, so each stays small.
MAX_REMINDER_NAME = 1_000  # characters
MAX_REMINDER_MESSAGE = 64 * 1024  # characters of its message, in the value format


def _declared(guest: GuestAtom, name: Any) -> str:
    """A state name from the guest: one its class declares (the host's class, or
    the manifest's word for a component's), never another."""
    declared = {spec.name for spec in guest.cell.cls._radon_states}
    if name not in declared:
        raise SandboxDenied(
            f"{guest.cell.label()} has no durable state {str(name)[:80]!r}; a sandboxed atom "
            f"reads and writes only the states its class declares ({sorted(declared)})"
        )
    return str(name)


async def _state_op(guest: GuestAtom, tag: str, req: Any) -> Any:
    """A durable state or reminder operation on the guest's own atom, through
    the cell (the system's durability extension: the atom's type and key are
    the host's, never the guest's)."""
    cell = guest.cell
    if tag == "read-state":
        return await cell.read_state(_declared(guest, req))
    if tag == "write-state":
        name = _declared(guest, req.name)
        _count_bytes(guest, len(req.document))
        try:  # within the atom's limits, and its handles as the Refs they stand for
            doc = guest.side.reader.value(req.document)
        except ValueRejected as exc:
            raise MessageNotPortable(
                f"the state {name!r} cannot leave the sandbox: {exc}"
            ) from None
        return await cell.write_state(name, doc, req.etag)
    if tag == "clear-state":
        return await cell.clear_state(_declared(guest, req.name), req.etag)
    if tag == "remind":
        config = guest.config
        if not 0 < len(req.name) <= MAX_REMINDER_NAME or len(req.message) > MAX_REMINDER_MESSAGE:
            raise SandboxDenied(
                f"a sandboxed atom's reminder has a name of 1 to {MAX_REMINDER_NAME:,} characters "
                f"and a message of at most {MAX_REMINDER_MESSAGE:,} (it is stored with the "
                "atom's other reminders)"
            )
        if req.period is not None and not req.period >= config.min_timer_interval:
            raise SandboxDenied(
                f"a reminder every {req.period!r} s fires faster than this sandboxed atom may "
                f"(SandboxConfig.min_timer_interval={config.min_timer_interval} s)"
            )
        args, kwargs = _read_message(guest, req.message)
        if kwargs:
            raise MessageNotPortable("a reminder's message takes positional arguments only")
        name = str(req.name)
        stored = await cell.system.durability().remind(
            cell, name, _handler(req.handler), args, req.due, req.period, config.max_reminders
        )
        if not stored:
            raise SandboxDenied(
                f"this sandboxed atom already keeps {config.max_reminders} reminders, its quota "
                f"(SandboxConfig.max_reminders); forget some first"
            )
        return None
    return await cell.forget_reminder(str(req))


# ----------------------------------------------------------------------
# Host imports. Each receives the store first and must not raise.
# ----------------------------------------------------------------------
def _reported(store: Any, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(guest, *args)`` on trio for the calling guest; an exception goes back
    to the guest encoded (a WIT ``result``'s error, or ``option<payload>``)."""
    guest = _guest(store)
    try:
        return guest.on_trio(fn, guest, *args)
    except Exception as exc:
        return _error_text(guest, exc)


def _count_bytes(guest: GuestAtom, n: int) -> None:
    total = guest.turn_bytes = guest.turn_bytes + n
    if total > guest.config.max_turn_bytes:
        raise SandboxDenied(
            f"this turn would hand the host {total:,} characters of messages and state, past "
            f"the quota of a sandboxed atom's turn (SandboxConfig.max_turn_bytes="
            f"{guest.config.max_turn_bytes:,})"
        )


def _count_send(guest: GuestAtom) -> None:
    sends = guest.sends = guest.sends + 1
    if sends > guest.config.max_sends:
        raise SandboxDenied(
            f"this turn already sent {sends - 1} messages, the quota of a sandboxed atom's "
            f"turn (SandboxConfig.max_sends={guest.config.max_sends})"
        )


_MAX_HANDLER_NAME = 256


def _handler(name: str) -> str:
    """A handler name from the guest, refused if it is longer than any name is."""
    if len(name) > _MAX_HANDLER_NAME:
        raise MessageNotPortable(
            f"a handler name of {len(name):,} characters (at most {_MAX_HANDLER_NAME})"
        )
    return name


def _tell(guest: GuestAtom, target: int, handler: str, message: str) -> None:
    _count_send(guest)
    handler = _handler(handler)
    args, kwargs = _read_message(guest, message)
    _endpoint(guest, target).tell(handler, args, kwargs)


def _h_tell(store: Any, target: int, handler: str, message: str) -> str | None:
    return _reported(store, _tell, target, handler, message)  # type: ignore[no-any-return]


def _h_stop(store: Any) -> None:
    guest = _guest(store)
    guest.on_trio(guest.cell.stop)


def _h_log(store: Any, level: str, event: str, fields: str) -> None:
    guest = _guest(store)
    logs = guest.logs = guest.logs + 1
    if logs > guest.config.max_logs:
        if logs == guest.config.max_logs + 1:  # said once per turn
            with contextlib.suppress(Exception):
                guest.cell.log.warning(
                    "sandbox.log_quota",
                    max_logs=guest.config.max_logs,
                    hint="further log events of this turn are dropped",
                )
        return
    event = event[:200]
    try:
        decoded = guest.side.reader.value(fields)
        values = dict(decoded) if isinstance(decoded, dict) else {"fields": decoded}
    except Exception:
        values = {"fields": "<unreadable>"}
    values.pop("event", None)
    method = getattr(guest.cell.log, level if level in _LOG_LEVELS else "info")
    with contextlib.suppress(Exception):
        method(event, sandboxed=True, **{str(k): v for k, v in values.items()})


def _h_now(store: Any) -> float:
    return _guest(store).on_trio(trio.current_time)


def _start_timer(guest: GuestAtom, delay: float, periodic: bool, handler: str, message: str) -> int:
    config = guest.config
    if periodic and not delay >= config.min_timer_interval:
        raise SandboxDenied(
            f"a periodic timer every {delay!r} s fires faster than this sandboxed atom may "
            f"(SandboxConfig.min_timer_interval={config.min_timer_interval} s)"
        )
    live = guest.live_timers()
    if live >= config.max_timers:
        raise SandboxDenied(
            f"this sandboxed atom already holds {live} live timers, its quota "
            f"(SandboxConfig.max_timers={config.max_timers}); cancel some first"
        )
    handler = _handler(handler)
    args, kwargs = _read_message(guest, message)
    cell = guest.cell
    if periodic:
        handle = cell.send_every(delay, handler, args, kwargs)
    else:
        handle = cell.send_after(delay, handler, args, kwargs)
    return guest.add_timer(handle)


def _h_start_timer(store: Any, delay: float, periodic: bool, handler: str, message: str) -> Any:
    # result<u64, payload> lifts untagged: a str is the error.
    return _reported(store, _start_timer, delay, periodic, handler, message)


def _h_cancel_timer(store: Any, timer: int) -> None:
    guest = _guest(store)
    handle = guest.timers.pop(timer, None)
    if handle is not None:
        guest.on_trio(handle.cancel)


def _h_timer_active(store: Any, timer: int) -> bool:
    guest = _guest(store)
    handle = guest.timers.get(timer)
    if handle is None:
        return False
    active = handle.active
    if not active:
        guest.timers.pop(timer, None)
    return active


def _stash(guest: GuestAtom) -> None:
    guest.cell.stash()


def _h_stash(store: Any) -> str | None:
    return _reported(store, _stash)  # type: ignore[no-any-return]


def _h_unstash_all(store: Any) -> None:
    guest = _guest(store)
    guest.on_trio(guest.cell.unstash_all)


_MAX_CLASS_NAME = 512
_MAX_KEY = 4096


# Granted on-demand classes by name, imported once. The names come from the
# host's own SandboxConfig (trusted code), never from a guest: a guest only
# picks among them.
_granted_classes: dict[str, type[Atom]] = {}


def _granted_class(name: str) -> type[Atom]:
    cls = _granted_classes.get(name)
    if cls is not None:
        return cls
    try:
        cls = import_atom_class(name)
    except ImportError as exc:
        raise SandboxDenied(f"the granted on-demand class {name} {exc}") from None
    _granted_classes[name] = cls
    return cls


def _on_demand(guest: GuestAtom, class_name: str, key: str) -> str:
    """A granted on-demand class's atom with ``key``, as a value holding its Ref
    (which grants the guest a handle for it)."""
    if len(class_name) > _MAX_CLASS_NAME:
        raise SandboxDenied(f"a class name of {len(class_name):,} characters")
    if not key or len(key) > _MAX_KEY:
        raise SandboxDenied(
            f"an on-demand atom's key is 1 to {_MAX_KEY} characters, not {len(key):,}"
        )
    config = guest.config
    if class_name not in config.on_demand:
        raise SandboxDenied(
            f"this sandboxed atom may not reach on-demand atoms of {class_name[:200]!r}: "
            "the host grants them class by class (SandboxConfig(on_demand=[...]))"
        )
    cls = _granted_class(class_name)
    _count_send(guest)
    ref = guest.cell.get(cls, key)
    if ref.id not in guest.side.handles:
        if guest.on_demand >= config.max_on_demand:
            raise SandboxDenied(
                f"this sandboxed atom already references {guest.on_demand} on-demand atoms, "
                f"its quota (SandboxConfig.max_on_demand={config.max_on_demand})"
            )
        guest.on_demand += 1
    return _encode_reply(guest, ref)


def _h_on_demand(store: Any, class_name: str, key: str) -> wc.Variant:
    # result<payload, payload>: both cases are strings, so the result is tagged.
    guest = _guest(store)
    try:
        return wc.Variant("ok", guest.on_trio(_on_demand, guest, class_name, key))
    except Exception as exc:
        return wc.Variant("err", _error_text(guest, exc))


HOST_FUNCS: dict[str, Callable[..., Any]] = {
    "tell": _h_tell,
    "stop": _h_stop,
    "log": _h_log,
    "now": _h_now,
    "start-timer": _h_start_timer,
    "cancel-timer": _h_cancel_timer,
    "timer-active": _h_timer_active,
    "stash": _h_stash,
    "unstash-all": _h_unstash_all,
    "on-demand": _h_on_demand,
}
"""The ``host`` interface of ``wit/atom.wit``, by WIT name."""
