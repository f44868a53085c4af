"""The guest runtime: runs inside the WebAssembly component, never on the host.

It implements the ``guest`` interface of ``wit/atom.wit`` for Python atoms and
gives the atom a context (see ``Atom._radon_ctx``) whose calls become host
imports. Values cross in the standard's value format (``_value``, shared with
the host; docs/standard.md, "Values"); other atoms are named by the handles the
host granted (a :class:`Ref` in the guest holds its handle, never an address).

``async`` handlers are driven by hand: ``coro.send`` runs one until it awaits a
host operation (an ``_HostOp``); the call returns the ``"s"`` outcome, the host
fetches the operation with ``pending``, and ``resume`` continues the coroutine
with the reply. Outcomes are strings: a tag character, then the payload.

Only the standard library, the guest-safe part of ``radon_actors`` and the
bindings componentize-py generates (``wit_world``) are available here. Inside
its own instance the atom may use any Python it likes (a snapshot keeps state
with no portable form as the guest's own pickle, opaque to the host).
"""

# mypy: ignore-errors
# (the ``wit_world`` bindings exist only inside a build)

from __future__ import annotations

import base64
import contextlib
import inspect
import io
import itertools
import pickle
import sys
import traceback
import types
from collections.abc import Coroutine, Generator
from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports import types as wt

from .. import _atom, _ref, _state
from .._errors import HandlerNotFound, MailboxFull, WouldBlock
from . import _value
from ._errors import MessageNotPortable, SandboxError

_CoroutineType = types.CoroutineType
_MAX = _value.MAX_SAFE_INT
_ascii = _value._ascii
_dumps = _value._dumps
_Kwargs = _value.Kwargs


class _HostOp:
    """An awaitable that suspends the guest turn until the host answers ``op``."""

    __slots__ = ("op",)

    def __init__(self, op: Any) -> None:
        self.op = op

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self)


class _Endpoint:
    """A Ref's endpoint inside the guest: the handle the host granted for it."""

    __slots__ = ("handle",)

    def __init__(self, handle: int) -> None:
        self.handle = handle

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        message = _writer.message(args, kwargs)
        request = wt.AskRequest(self.handle, _atom.handler_name(h), message, timeout)
        return await _HostOp(wt.Operation_Ask(request))

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # Every ask from a guest is a host operation that suspends the turn.
        raise WouldBlock("a sandboxed atom's asks go through its host: `await ref.ask(...)`")

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        error = host.tell(self.handle, _atom.handler_name(h), _writer.message(args, kwargs))
        if error is not None:
            raise _error_reply(error)

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # A tell first (no suspension); only a full mailbox makes the turn wait
        # for room, through the host's `send` operation.
        name = _atom.handler_name(h)
        message = _writer.message(args, kwargs)
        error = host.tell(self.handle, name, message)
        if error is None:
            return
        exc = _error_reply(error)
        if not isinstance(exc, MailboxFull):
            raise exc
        await _HostOp(wt.Operation_Send(wt.SendRequest(self.handle, name, message)))


class _Ungranted:
    """The endpoint of a Ref the host never granted (one rebuilt from an id):
    it reaches nothing."""

    __slots__ = ("_id",)

    def __init__(self, atom_id: str) -> None:
        self._id = atom_id

    def _refuse(self) -> MessageNotPortable:
        return MessageNotPortable(
            f"this atom was never given a reference to atom {self._id}: a sandboxed atom "
            "reaches only the Refs it receives (constructor arguments, messages, replies, "
            "its children, itself)"
        )

    async def ask(self, h: Any, args: Any, kwargs: Any, timeout: Any) -> Any:
        raise self._refuse()

    def tell(self, h: Any, args: Any, kwargs: Any) -> None:
        raise self._refuse()

    def ask_nowait(self, h: Any, args: Any, kwargs: Any) -> Any:
        raise self._refuse()

    async def send(self, h: Any, args: Any, kwargs: Any) -> None:
        raise self._refuse()


def _resolve(atom_id: str, name: str | None, via: str | None = None) -> Any:
    return _Ungranted(atom_id)


_ref._resolver = _resolve


# ----------------------------------------------------------------------
# Values: the guest's reader and writers
# ----------------------------------------------------------------------
def _handle_of(ref: _ref.Ref[Any]) -> list[Any]:
    endpoint = ref._ep
    if type(endpoint) is not _Endpoint:
        raise (
            endpoint._refuse()
            if type(endpoint) is _Ungranted
            else MessageNotPortable(f"{ref!r} is not a reference this atom was given")
        )
    return [endpoint.handle, ref.id, ref.name]


def _granted(body: Any) -> _ref.Ref[Any]:
    if (
        type(body) is not list
        or len(body) != 3
        or type(body[0]) is not int
        or type(body[1]) is not str
        or not (body[2] is None or type(body[2]) is str)
    ):
        raise _value.ValueRejected("a $ref is [handle, atom id, name]")
    return _ref.Ref(body[1], body[2], _Endpoint(body[0]))


def _lookup(name: str) -> Any:
    """What ``"module:QualName"`` names among the modules this guest has loaded."""
    module_name, _, qualname = name.partition(":")
    obj: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    return obj


def _resolve_class(name: str) -> type | None:
    """Any class this guest has loaded (building one runs only guest code)."""
    known = _value.known_class(name)
    if known is not None:
        return known
    obj = _lookup(name)
    return obj if isinstance(obj, type) else None


def _unpickle(text: str, refs: list[Any]) -> Any:
    unpickler = pickle.Unpickler(io.BytesIO(base64.b64decode(text)))
    unpickler.persistent_load = refs.__getitem__
    return unpickler.load()


def _class(name: str) -> Any:
    """A class or function by name, among the guest's own modules."""
    obj = _lookup(name)
    if obj is None:
        raise _value.ValueRejected(f"no class or function {name!r} in this component")
    return obj


_reader = _value.Reader(_value.Limits(), _granted, _resolve_class, klass=_class)
_state_reader = _value.Reader(_value.Limits(), _granted, _resolve_class, _unpickle, _class)
_writer = _value.Writer(_handle_of)
_scan = _reader._scan
_log_writer = _value.Writer(_handle_of, repr)


def _opaque(value: Any) -> Any:
    """State with no portable form: the guest's own pickle, its Refs kept aside
    (as ordinary references, which the host maps between instances)."""
    refs: list[Any] = []
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, 5)

    def persistent_id(obj: Any) -> Any:
        if isinstance(obj, _ref.Ref):
            refs.append(obj)
            return len(refs) - 1
        return None

    pickler.persistent_id = persistent_id
    pickler.dump(value)
    return _value.Opaque(base64.b64encode(buffer.getvalue()).decode("ascii"), refs)


_state_writer = _value.Writer(_handle_of, _opaque, classes=False)


def _error_reply(text: str) -> BaseException:
    try:
        exc = _reader.value(text)
    except Exception as err:
        return MessageNotPortable(f"an error from the host cannot be read: {err!r}")
    if not isinstance(exc, BaseException):
        return SandboxError(f"the host reported a failure that is not an exception: {exc!r}")
    return exc


class _Timer:
    __slots__ = ("_id",)

    def __init__(self, timer_id: int) -> None:
        self._id = timer_id

    def cancel(self) -> None:
        host.cancel_timer(self._id)

    @property
    def active(self) -> bool:
        return host.timer_active(self._id)


class _Logger:
    """A structlog-like logger whose events go to the host's structlog."""

    __slots__ = ("_bound",)

    def __init__(self, bound: dict[str, Any]) -> None:
        self._bound = bound

    def bind(self, **fields: Any) -> _Logger:
        return _Logger({**self._bound, **fields})

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        merged = {str(k): v for k, v in {**self._bound, **fields}.items()}
        try:
            payload = _log_writer.value(merged)
        except Exception:
            payload = _log_writer.value({k: repr(v) for k, v in merged.items()})
        host.log(level, str(event), payload)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    warn = warning

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, {**fields, "exc": traceback.format_exc()})

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)


class _Context:
    """The guest's ``Atom._radon_ctx``: each call is a host import or operation."""

    __slots__ = ("_ref", "log")

    def __init__(self, atom_id: str, name: str | None) -> None:
        self._ref = _ref.Ref(atom_id, name, _Endpoint(0))  # handle 0: the atom itself
        self.log = _Logger({})

    @property
    def ref(self) -> _ref.Ref[Any]:
        return self._ref

    async def spawn(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        sandbox: Any = None,
    ) -> Any:
        if sandbox is None:
            isolation = wt.Isolation.CLASS_DEFAULT
        elif sandbox is True:
            isolation = wt.Isolation.SANDBOXED
        elif sandbox is False:
            isolation = wt.Isolation.NATIVE
        else:
            raise TypeError(
                f"inside the sandbox, spawn(sandbox=...) takes None, True or False, not "
                f"{sandbox!r}: a sandboxed child gets the host's limits"
            )
        if not (isinstance(cls, type) and issubclass(cls, _atom.Atom)):
            raise TypeError(f"spawn takes an Atom subclass, not {cls!r}")
        message = _writer.message(args, kwargs)
        request = wt.SpawnRequest(_value.record_name(cls), message, name, isolation)
        return await _HostOp(wt.Operation_Spawn(request))

    def stop(self) -> None:
        host.stop()

    def get(self, cls: Any, key: str) -> _ref.Ref[Any]:
        # Atom.on_demand: a Ref the host grants if it granted this class.
        if not isinstance(key, str) or not key:
            raise TypeError(f"an on-demand atom's key is a non-empty str, not {key!r}")
        try:
            text = host.on_demand(_value.record_name(cls), key)
        except Err as err:
            raise _error_reply(err.value) from None
        ref = _reader.value(text)
        if not isinstance(ref, _ref.Ref):
            raise TypeError("the host answered on-demand with something not a reference")
        return ref

    def _timer(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], periodic: bool
    ) -> _Timer:
        message = _writer.message(args, kwargs)
        try:
            timer_id = host.start_timer(float(delay), periodic, _atom.handler_name(h), message)
        except Err as err:
            raise _error_reply(err.value) from None
        return _Timer(timer_id)

    def send_after(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Timer:
        return self._timer(delay, h, args, kwargs, False)

    def send_every(
        self, interval: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Timer:
        return self._timer(interval, h, args, kwargs, True)

    def stash(self) -> None:
        error = host.stash()
        if error is not None:
            raise _error_reply(error)

    def unstash_all(self) -> None:
        host.unstash_all()

    # Durable state and reminders: operations on the atom itself (its type and
    # key are the host's; it names only its own declared states).
    async def read_state(self, name: str) -> Any:
        return await _HostOp(wt.Operation_ReadState(name))

    async def write_state(self, name: str, doc: Any, etag: str | None) -> Any:
        request = wt.StateWrite(name, _writer.value(doc), etag)
        return await _HostOp(wt.Operation_WriteState(request))

    async def clear_state(self, name: str, etag: str | None) -> Any:
        return await _HostOp(wt.Operation_ClearState(wt.StateClear(name, etag)))

    async def remind(
        self, name: str, h: Any, args: tuple[Any, ...], due: float, period: float | None
    ) -> None:
        message = _writer.message(args, {})
        period = None if period is None else float(period)
        request = wt.RemindRequest(name, _atom.handler_name(h), message, float(due), period)
        await _HostOp(wt.Operation_Remind(request))

    async def forget_reminder(self, name: str) -> bool:
        return bool(await _HostOp(wt.Operation_ForgetReminder(name)))


def _dropped_fields(name: str, fields: list[str]) -> None:
    fields_text = _log_writer.value({"state": name, "fields": fields})
    host.log("warning", "durable.fields_dropped", fields_text)


_state.dropped_fields = _dropped_fields


class _State:
    instance: Any = None
    request: Any = None  # what the last "s" outcome waits for
    table: dict[Any, Any] = {}  # noqa: RUF012
    pending: dict[int, tuple[Coroutine[Any, Any, Any], tuple[type, ...]]] = {}  # noqa: RUF012
    tokens = itertools.count(1)


_NO_ANSWERS: tuple[type, ...] = ()


def _failed(exc: BaseException, answers: tuple[type, ...] = _NO_ANSWERS) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip()
    answer = isinstance(exc, answers)
    try:
        return "f" + _dumps({"$error": _writer.error(exc, text, answer)})
    except Exception:  # pragma: no cover - error() leaves out what does not encode
        return "f" + _dumps(
            {"$error": {"type": "builtins:Exception", "message": repr(exc), "traceback": text}}
        )


def _done(value: Any) -> str:
    try:
        return "d" + _writer.value(value)
    except Exception as exc:
        return _failed(MessageNotPortable(f"the result cannot leave the sandbox: {exc}"))


def _drive(
    coro: Coroutine[Any, Any, Any],
    answers: tuple[type, ...],
    value: Any = None,
    error: Any = None,
) -> str:
    try:
        request = coro.throw(error) if error is not None else coro.send(value)
    except StopIteration as stop:
        return _done(stop.value)
    except Exception as exc:
        return _failed(exc, answers)
    if not isinstance(request, _HostOp):
        coro.close()
        return _failed(
            RuntimeError(
                f"a sandboxed handler awaited {request!r}; inside the sandbox a handler can "
                "only await radon operations (ask, send, spawn, a state's save, clear and reload, "
                "remind, forget_reminder)"
            )
        )
    token = next(_State.tokens)
    _State.pending[token] = (coro, answers)
    _State.request = wt.Request(token, request.op)
    return "s"


def _call(fn: Any) -> Any:
    try:
        result = fn()
    except Exception as exc:
        return _failed(exc)
    if isinstance(result, _CoroutineType):
        return _drive(result, _NO_ANSWERS)
    return _done(result)


async def _start(instance: Any) -> Any:
    """Load the atom's durable states from the host's store, then run ``on_start``."""
    await _state.load_states(instance)
    result = instance.on_start()
    if isinstance(result, _CoroutineType):
        await result


def _install(cls: Any, atom_id: str, name: str | None) -> Any:
    instance = cls.__new__(cls)
    instance._radon_ctx = _Context(atom_id, name)
    _State.instance = instance
    _State.table = _atom.handler_table(cls)
    _State.pending = {}
    _State.request = None
    return instance


def _atom_class(name: str) -> Any:
    module_name = name.partition(":")[0]
    if module_name not in sys.modules:
        with contextlib.suppress(ImportError):
            __import__(module_name)
    cls = _resolve_class(name)
    if not (isinstance(cls, type) and issubclass(cls, _atom.Atom)):
        raise TypeError(f"{name!r} is not an Atom subclass in this component")
    return cls


_KINDS = {
    inspect.Parameter.POSITIONAL_ONLY: "positional-only",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional-or-keyword",
    inspect.Parameter.VAR_POSITIONAL: "var-positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword-only",
    inspect.Parameter.VAR_KEYWORD: "var-keyword",
}


def _params(fn: Any) -> list[list[Any]]:
    """``fn``'s parameters after ``self``: [name, kind, has a default]."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())[1:]
    except (TypeError, ValueError):
        return [["args", "var-positional", False], ["kwargs", "var-keyword", False]]
    return [[p.name, _KINDS[p.kind], p.default is not p.empty] for p in parameters]


def _manifest() -> dict[str, Any]:
    atoms: dict[str, Any] = {}
    seen: set[type] = set()
    stack = list(_atom.Atom.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        stack.extend(cls.__subclasses__())
        name = _value.record_name(cls)
        if name.startswith("radon_actors") or "<" in name:
            continue  # the library's own classes, and classes made in calls
        handlers = []
        for key, spec in _atom.handler_table(cls).items():
            if type(key) is not str:
                continue
            answers = [_value.record_name(a) for a in spec.answers if a is not _atom.Rejection]
            handlers.append(
                {
                    "name": key,
                    "params": _params(spec.fn),
                    "suspends": not spec.never_suspends,
                    "answers": answers,
                }
            )
        entry = {"init": _params(cls.__init__), "handlers": handlers}
        if cls._radon_states:
            entry["durable-type"] = _state.atom_type(cls)
            entry["states"] = [[spec.name, spec.version] for spec in cls._radon_states]
        atoms[name] = entry
    return {"standard": "0.6.0", "language": "python", "atoms": atoms}


class Guest(exports.Guest):
    """The ``guest`` interface for Python atoms."""

    def manifest(self) -> str:
        return _dumps(_writer.tree(_manifest()))

    def create(self, atom_id: str, name: str | None, class_: str, message: str) -> Any:
        try:
            cls = _atom_class(class_)
            args, kwargs = _reader.message(message)
            instance = _install(cls, atom_id, name)
            cls.__init__(instance, *args, **kwargs)
        except Exception as exc:
            return _failed(exc)
        return "dnull"

    def start(self) -> Any:
        instance = _State.instance
        if type(instance)._radon_states:
            return _drive(_start(instance), _NO_ANSWERS)
        return _call(instance.on_start)

    def finish(self) -> Any:
        return _call(_State.instance.on_stop)

    def handle(self, handler: str, message: str) -> Any:
        # The hot path of every turn, written flat: each Python-level call costs
        # thousands of WebAssembly instructions in the guest's interpreter.
        spec = _State.table.get(handler)
        if spec is None:
            return _failed(HandlerNotFound(f"the sandboxed atom has no handler {handler!r}"))
        try:
            args = _scan(message, 0)[0]  # the host's text: no limits to check
        except Exception as exc:
            return _failed(
                MessageNotPortable(f"message for {handler!r} cannot enter the sandbox: {exc}")
            )
        try:
            if args and type(args[-1]) is _Kwargs:
                result = spec.fn(_State.instance, *args[:-1], **args[-1])
            else:
                result = spec.fn(_State.instance, *args)
        except Exception as exc:
            return _failed(exc, spec.answers)
        if result is None:
            return "dnull"  # what most tell handlers return
        kind = type(result)
        if kind is int and -_MAX <= result <= _MAX:
            return "d" + str(result)
        if kind is str:
            return "d" + _ascii(result)
        if isinstance(result, _CoroutineType):
            return _drive(result, spec.answers)
        return _done(result)

    def pending(self) -> Any:
        return _State.request

    def resume(self, token: int, reply: Any) -> Any:
        _State.request = None
        entry = _State.pending.pop(token, None)
        if entry is None:
            return _failed(SandboxError(f"no suspended turn has token {token}"))
        coro, answers = entry
        try:
            payload = _scan(reply.value, 0)[0]  # the host's text: no limits to check
        except Exception as exc:
            error = MessageNotPortable(f"a reply cannot enter the sandbox: {exc}")
            return _drive(coro, answers, error=error)
        if isinstance(reply, wt.Reply_Error):
            if not isinstance(payload, BaseException):
                payload = SandboxError(f"the host failed the operation with {payload!r}")
            return _drive(coro, answers, error=payload)
        return _drive(coro, answers, payload)

    def snapshot(self) -> str:
        if _State.pending:
            raise Err(
                _dumps(
                    {
                        "$error": _writer.error(
                            SandboxError("cannot snapshot an atom in the middle of a turn")
                        )
                    }
                )
            )
        instance = _State.instance
        try:
            if type(instance).__getstate__ is not object.__getstate__:
                state = instance.__getstate__()
            else:
                state = dict(vars(instance))
                state.pop("_radon_ctx", None)
            return _dumps(_state_writer.tree(state))
        except Exception as exc:
            error = MessageNotPortable(f"the atom's state cannot be encoded: {exc!r}")
            raise Err(_dumps({"$error": _writer.error(error)})) from None

    def restore(self, atom_id: str, name: str | None, class_: str, state: str) -> Any:
        try:
            cls = _atom_class(class_)
            decoded = _state_reader.value(state)
            instance = _install(cls, atom_id, name)
            if hasattr(instance, "__setstate__"):
                instance.__setstate__(decoded)
            else:
                instance.__dict__.update(decoded)
        except Exception as exc:
            return _failed(exc)
        return "dnull"
