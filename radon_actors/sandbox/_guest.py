"""The guest runtime: runs inside the WebAssembly component, never on the host.

It implements the ``guest`` interface of ``wit/atom.wit`` for Python atoms and
gives the atom a context (see ``Atom._radon_ctx``) whose calls become host
imports. Values cross as pickles, or marshal streams for plain scalars, carried
in latin-1 strings (``_codec``, shared with the host; docs/standard.md, "Python
codec").

``async`` handlers are driven by hand: ``coro.send`` runs one until it awaits a
host operation (an ``_HostOp``); the call returns the ``"s"`` outcome, the host
fetches the operation with ``pending``, and ``resume`` continues the coroutine
with the reply. Outcomes are strings: a tag character, then the payload.

Only the standard library, the guest-safe part of ``radon_actors`` and the
bindings componentize-py generates (``wit_world``) are available here.
"""

# mypy: ignore-errors
# (the ``wit_world`` bindings exist only inside a build)

from __future__ import annotations

import itertools
import marshal
import pickle
import traceback
import types
from collections.abc import Coroutine, Generator
from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports import types as wt

from .. import _atom, _ref
from .._errors import HandlerNotFound
from ._codec import MARSHAL_SCALARS, SCALARS, dec, enc, enc_scalar_message, enc_scalar_value
from ._errors import MessageNotPortable, SandboxError

# What ``Guest.handle`` uses to read and write plain messages inline (the
# codec's own steps, without a Python-level call per turn).
_loads = pickle.loads
_mloads = marshal.loads
_mdumps = marshal.dumps
_CoroutineType = types.CoroutineType


class _HostOp:
    """An awaitable that suspends the guest turn until the host answers ``op``."""

    __slots__ = ("op",)

    def __init__(self, op: Any) -> None:
        self.op = op

    def __await__(self) -> Generator[Any, Any, Any]:
        return (yield self)


class _Endpoint:
    """A Ref's endpoint inside the guest: every message goes to the host, which
    knows the atom's name; the guest needs only its id."""

    __slots__ = ("_id",)

    def __init__(self, atom_id: str) -> None:
        self._id = atom_id

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        message = enc_scalar_message(args, kwargs)
        request = wt.AskRequest(self._id, _atom.handler_name(h), message, timeout)
        return await _HostOp(wt.Operation_Ask(request))

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        error = host.tell(self._id, _atom.handler_name(h), enc_scalar_message(args, kwargs))
        if error is not None:
            raise dec(error)

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.tell(h, args, kwargs)


def _resolve(atom_id: str, name: str | None, via: str | None = None) -> _Endpoint:
    return _Endpoint(atom_id)


_ref._resolver = _resolve


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
        merged = {**self._bound, **fields}
        try:
            payload = enc(merged)
        except Exception:
            payload = enc({k: repr(v) for k, v in merged.items()})
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
        self._ref = _ref.Ref(atom_id, name, _Endpoint(atom_id))
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
                f"{sandbox!r}: a sandboxed child gets the host's default limits"
            )
        try:
            encoded_cls = enc(cls)
        except Exception as exc:
            raise MessageNotPortable(f"cannot spawn {cls!r} from the sandbox: {exc!r}") from None
        request = wt.SpawnRequest(encoded_cls, enc_scalar_message(args, kwargs), name, isolation)
        return await _HostOp(wt.Operation_Spawn(request))

    def stop(self) -> None:
        host.stop()

    def _timer(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], periodic: bool
    ) -> _Timer:
        try:
            timer_id = host.start_timer(
                float(delay), periodic, _atom.handler_name(h), enc_scalar_message(args, kwargs)
            )
        except Err as err:
            raise dec(err.value) from None
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
            raise dec(error)

    def unstash_all(self) -> None:
        host.unstash_all()


class _State:
    instance: Any = None
    request: Any = None  # what the last "s" outcome waits for
    table: dict[Any, Any] = {}  # noqa: RUF012
    pending: dict[int, Coroutine[Any, Any, Any]] = {}  # noqa: RUF012
    tokens = itertools.count(1)


def _failed(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip()
    try:
        exc.add_note(f"traceback inside the sandbox:\n{text}")
        return "f" + enc(exc)
    except Exception:
        return "f" + enc(
            SandboxError(
                f"{type(exc).__name__}: {exc} (the exception could not be "
                f"encoded; traceback inside the sandbox:\n{text})"
            )
        )


def _done(value: Any) -> str:
    try:
        return "d" + enc_scalar_value(value)
    except Exception as exc:
        return _failed(
            MessageNotPortable(f"the result {value!r} cannot leave the sandbox: {exc!r}")
        )


def _drive(coro: Coroutine[Any, Any, Any], value: Any = None, error: Any = None) -> str:
    try:
        request = coro.throw(error) if error is not None else coro.send(value)
    except StopIteration as stop:
        return _done(stop.value)
    except Exception as exc:
        return _failed(exc)
    if not isinstance(request, _HostOp):
        coro.close()
        return _failed(
            RuntimeError(
                f"a sandboxed handler awaited {request!r}; inside the sandbox a handler can "
                "only await radon operations (ask, spawn)"
            )
        )
    token = next(_State.tokens)
    _State.pending[token] = coro
    _State.request = wt.Request(token, request.op)
    return "s"


def _run(result: Any) -> Any:
    if isinstance(result, _CoroutineType):
        return _drive(result)
    return _done(result)


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:
        return _failed(exc)
    return _run(result)


def _install(cls: Any, atom_id: str, name: str | None) -> Any:
    instance = cls.__new__(cls)
    instance._radon_ctx = _Context(atom_id, name)
    _State.instance = instance
    _State.table = _atom.handler_table(cls)
    _State.pending = {}
    _State.request = None
    return instance


def _decode_class(encoded: str) -> Any:
    cls = dec(encoded)
    if not (isinstance(cls, type) and issubclass(cls, _atom.Atom)):
        raise TypeError(f"{cls!r} is not an Atom subclass")
    return cls


class Guest(exports.Guest):
    """The ``guest`` interface for Python atoms."""

    def create(self, atom_id: str, name: str | None, class_: str, message: str) -> Any:
        try:
            cls = _decode_class(class_)
            args, kwargs = dec(message)
            instance = _install(cls, atom_id, name)
            cls.__init__(instance, *args, **kwargs)
        except Exception as exc:
            return _failed(exc)
        return _done(None)

    def start(self) -> Any:
        return _call(_State.instance.on_start)

    def finish(self) -> Any:
        return _call(_State.instance.on_stop)

    def handle(self, handler: str, message: str) -> Any:
        # The hot path of every turn, written flat: each Python-level call costs
        # thousands of WebAssembly instructions in the guest's interpreter.
        spec = _State.table.get(handler)
        if spec is None:
            return _failed(HandlerNotFound(f"the sandboxed atom has no handler {handler!r}"))
        try:
            data = message.encode("latin-1")
            args, kwargs = _loads(data) if data[0] == 0x80 else _mloads(data)
        except Exception as exc:
            return _failed(
                MessageNotPortable(f"message for {handler!r} cannot enter the sandbox: {exc!r}")
            )
        try:
            result = spec.fn(_State.instance, *args, **kwargs)
        except Exception as exc:
            return _failed(exc)
        if isinstance(result, _CoroutineType):
            return _drive(result)
        if result is None:
            return "dN"  # marshal's None (every version): what most tell handlers return
        if type(result) in SCALARS:
            return "d" + _mdumps(result, MARSHAL_SCALARS).decode("latin-1")
        return _done(result)

    def pending(self) -> Any:
        return _State.request

    def resume(self, token: int, reply: Any) -> Any:
        _State.request = None
        coro = _State.pending.pop(token, None)
        if coro is None:
            return _failed(SandboxError(f"no suspended turn has token {token}"))
        try:
            payload = dec(reply.value)
        except Exception as exc:
            return _drive(coro, error=MessageNotPortable(f"a reply cannot enter: {exc!r}"))
        if isinstance(reply, wt.Reply_Error):
            return _drive(coro, error=payload)
        return _drive(coro, payload)

    def snapshot(self) -> str:
        if _State.pending:
            raise Err(enc(SandboxError("cannot snapshot an atom in the middle of a turn")))
        instance = _State.instance
        try:
            if type(instance).__getstate__ is not object.__getstate__:
                state = instance.__getstate__()
            else:
                state = dict(vars(instance))
                state.pop("_radon_ctx", None)
            return enc(state)
        except Exception as exc:
            error = MessageNotPortable(f"the atom's state cannot be encoded: {exc!r}")
            raise Err(enc(error)) from None

    def restore(self, atom_id: str, name: str | None, class_: str, state: str) -> Any:
        try:
            cls = _decode_class(class_)
            decoded = dec(state)
            instance = _install(cls, atom_id, name)
            if hasattr(instance, "__setstate__"):
                instance.__setstate__(decoded)
            else:
                instance.__dict__.update(decoded)
        except Exception as exc:
            return _failed(exc)
        return _done(None)
