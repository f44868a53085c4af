"""The host side of the sandbox: wasmtime engine, compiled components, guest atoms.

* One :class:`wasmtime.Engine` per process, with fuel metering on (a compiled
  component only loads into an engine with the same configuration).
* :func:`load` turns a module name into a :class:`LoadedComponent`: built by
  ``_build`` (or found in its cache), compiled once and serialized beside the
  component, so later processes load it in milliseconds.
* :class:`GuestAtom` is one instance of a component (its own store, memory cap
  and fuel), and is what an :class:`~radon_actors.runtime.AtomCell` holds as its
  ``instance`` for a sandboxed atom. Its ``call`` runs a handler in the guest and
  drives suspensions: the guest returns an ``ask``/``spawn`` request, the host
  performs it on trio and resumes the guest with the reply.
* The host imports (the atom's "syscalls") find the calling guest by the
  store's context pointer they receive; when the guest runs on a worker thread,
  the ones that touch trio hop back with ``trio.from_thread``.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import marshal
import os
import pickle
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import trio
import wasmtime
from wasmtime import _bindings, _ffi
from wasmtime import component as wc
from wasmtime._error import WasmtimeError as _WasmtimeError
from wasmtime.component._enter import maybe_raise_last_exn as _maybe_raise_last_exn

from .. import _ref
from ..runtime import resolve
from . import _build
from ._config import SandboxConfig
from ._errors import MessageNotPortable, SandboxCrashed, SandboxError

if TYPE_CHECKING:
    from ..runtime import AtomCell, TimerHandle

__all__ = [
    "GuestAtom",
    "LoadedComponent",
    "dec",
    "enc",
    "enc_message",
    "enc_value",
    "engine",
    "load",
    "loaded",
]

_log = structlog.get_logger("radon_actors.sandbox")
T = TypeVar("T")

_PACKAGE = "radon:atom"
_VERSION = "0.3.0"
HOST_INTERFACE = f"{_PACKAGE}/host@{_VERSION}"
GUEST_INTERFACE = f"{_PACKAGE}/guest@{_VERSION}"
_EXPORTS = ("create", "start", "handle", "pending", "resume", "finish", "snapshot", "restore")
_PROTOCOL = 5
# The standard's `isolation` enum (spawn-request) as System.spawn's sandbox=.
_ISOLATION: dict[str, bool | None] = {"class-default": None, "native": False, "sandboxed": True}
_LOG_LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})


# Marshal format versions, pinned (the guest's CPython, 3.14, is newer than the
# host's): 4 for containers (back-references keep shared objects shared), 2 for
# scalars (no reference table to build: cheaper to write; any reader reads it).
_MARSHAL = 4
_MARSHAL_SCALARS = 2
_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
_is_scalar = _SCALARS.__contains__
_mdumps = marshal.dumps
_mloads = marshal.loads
_ploads = pickle.loads


def enc(obj: Any) -> str:
    """Encode anything for the guest as a pickle (carried as latin-1 text):
    classes, exceptions, snapshots; values go through :func:`enc_value`."""
    return pickle.dumps(obj, _PROTOCOL).decode("latin-1")


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain data that marshal encodes exactly: scalars, and
    small tuples, lists, dicts, sets and frozensets of plain data (exact types:
    marshal writes other buffer objects as bytes)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind not in _CONTAINERS or depth > 4 or len(value) > 32:
        return False
    if kind is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return all(_plain(item, depth + 1) for item in value)


def enc_value(obj: Any) -> str:
    """Encode a value (a result or a reply): marshal for plain data, else pickle."""
    if type(obj) in _SCALARS:
        return _mdumps(obj, _MARSHAL_SCALARS).decode("latin-1")
    if _plain(obj):
        return _mdumps(obj, _MARSHAL).decode("latin-1")
    return pickle.dumps(obj, _PROTOCOL).decode("latin-1")


def enc_message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Encode a message ``(args, kwargs)``: marshal when it is plain data."""
    if not kwargs and all(map(_is_scalar, map(type, args))):
        return _mdumps((args, kwargs), _MARSHAL_SCALARS).decode("latin-1")
    message = (args, kwargs)
    if _plain(args) and _plain(kwargs):
        return _mdumps(message, _MARSHAL).decode("latin-1")
    return pickle.dumps(message, _PROTOCOL).decode("latin-1")


def dec(text: str) -> Any:
    """Decode a payload from the guest: a pickle starts with its PROTO opcode
    (0x80); marshal streams never do (docs/standard.md, *Codec*)."""
    data = text.encode("latin-1")
    if data[:1] == b"\x80":
        return _ploads(data)
    return _mloads(data)


def enc_exc(exc: BaseException) -> str:
    try:
        return enc(exc)
    except Exception:
        return enc(SandboxError(f"{type(exc).__name__}: {exc}"))


# ----------------------------------------------------------------------
# Engine and components
# ----------------------------------------------------------------------
_engine: wasmtime.Engine | None = None


def engine() -> wasmtime.Engine:
    """The process's engine (fuel metering on)."""
    global _engine
    if _engine is None:
        config = wasmtime.Config()
        config.consume_fuel = True
        _engine = wasmtime.Engine(config)
    return _engine


class LoadedComponent:
    """A compiled component, its linker (host imports defined) and export indices."""

    __slots__ = ("component", "exports", "key", "linker", "module", "modules")

    def __init__(
        self,
        module: str,
        key: str,
        component: wc.Component,
        modules: frozenset[str] = frozenset(),
    ) -> None:
        self.module = module
        self.key = key
        self.component = component
        # Modules the guest can import besides its standard library.
        self.modules = modules
        linker = wc.Linker(engine())
        linker.add_wasip2()
        host = linker.root().add_instance(HOST_INTERFACE)
        for name, fn in _HOST_FUNCS.items():
            host.add_func(name, fn)
        self.linker = linker
        iface = component.get_export_index(GUEST_INTERFACE)
        if iface is None:
            raise SandboxError(f"component of {module} does not export {GUEST_INTERFACE}")
        self.exports: dict[str, wc.ExportIndex] = {}
        for name in _EXPORTS:
            idx = component.get_export_index(name, iface)
            if idx is None:
                raise SandboxError(f"component of {module} lacks the export {name!r}")
            self.exports[name] = idx


_loaded: dict[str, LoadedComponent] = {}
_locks: dict[str, threading.Lock] = {}


def adopt_loaded(loaded: LoadedComponent) -> None:
    """Use ``loaded`` for its module unless this process loaded one already (a
    component received from another host serves the atoms spawned here too)."""
    _loaded.setdefault(loaded.module, loaded)


def loaded(module: str) -> LoadedComponent | None:
    """The component of ``module`` if this process has loaded it already."""
    return _loaded.get(module)


def load(module: str, *, progress: Callable[[str], None] | None = None) -> LoadedComponent:
    """Build (if needed), compile (if needed) and load the component of ``module``.

    Blocking (seconds on a cold cache): call it from a worker thread in async code.
    """
    found = _loaded.get(module)
    if found is not None:
        return found
    lock = _locks.setdefault(module, threading.Lock())
    with lock:
        found = _loaded.get(module)
        if found is not None:
            return found
        say = progress or (lambda message: _log.info("sandbox.build", message=message))
        result = _build.build_component(module, progress=say)
        component = compile_component(result.wasm, result.directory / "component.cwasm", say)
        found = _loaded[module] = LoadedComponent(module, result.key, component, result.modules)
        return found


def compile_component(wasm: Path, compiled: Path, progress: Callable[[str], None]) -> wc.Component:
    """Compile ``wasm`` for this machine, or deserialize ``compiled`` if it fits."""
    if compiled.exists():
        try:
            return wc.Component.deserialize_file(engine(), str(compiled))
        except wasmtime.WasmtimeError:
            compiled.unlink(missing_ok=True)  # another wasmtime version or config
    progress(f"compiling {wasm.name} for this machine (a few seconds, cached after)")
    component = wc.Component(engine(), wasm.read_bytes())
    partial = compiled.with_name(f"{compiled.name}.{os.getpid()}.tmp")
    partial.write_bytes(component.serialize())
    partial.replace(compiled)
    return component


# ----------------------------------------------------------------------
# Calling exports
# ----------------------------------------------------------------------
class _StrIn(ctypes.Structure):
    """A ``wasmtime_component_val_t`` holding a string, as the host writes it: the
    data pointer borrows a Python ``bytes`` buffer (wasmtime copies arguments).
    It is written as a plain address (see ``_BYTES_DATA``): assigning a ``bytes``
    to a ``c_char_p`` field would also file a reference under a ``sprintf``-made
    key on every call; the caller keeps the ``bytes`` alive instead."""

    _fields_ = [("kind", ctypes.c_uint8), ("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]


# Offset of a CPython ``bytes`` object's data from its address (``id``): the
# object header, then the characters (checked by ``_layout_ok``).
_BYTES_DATA = bytes.__basicsize__ - 1


class _StrOut(ctypes.Structure):
    """A ``wasmtime_component_val_t`` holding a string, as wasmtime writes it."""

    _fields_ = [("kind", ctypes.c_uint8), ("size", ctypes.c_size_t), ("data", ctypes.c_void_p)]


class _VariantOut(ctypes.Structure):
    """A ``wasmtime_component_val_t`` holding a variant: tag, then a boxed payload."""

    _fields_ = [
        ("kind", ctypes.c_uint8),
        ("tag_size", ctypes.c_size_t),
        ("tag_data", ctypes.c_void_p),
        ("payload", ctypes.c_void_p),
    ]


def _layout_ok() -> bool:
    """Whether the overlays above match this wasmtime's C structures."""
    val: Any = _ffi.wasmtime_component_val_t
    vec: Any = _ffi.wasm_byte_vec_t
    ours: Any = _StrIn
    return (
        val.of.offset == ours.size.offset
        and vec.size.offset == 0
        and vec.data.offset == ours.data.offset - ours.size.offset
        and ctypes.sizeof(val) >= ctypes.sizeof(_VariantOut)
        and _ffi.WASMTIME_COMPONENT_STRING.value == 12
        and _ffi.WASMTIME_COMPONENT_VARIANT.value == 16
        and _ffi.WASMTIME_COMPONENT_BOOL.value == 0
        and all(
            ctypes.string_at(id(probe) + _BYTES_DATA, len(probe)) == probe
            for probe in (b"radon", bytes(range(7)))
        )
    )


# wasmtime_component_func_call with plain-address arguments (no per-call ctypes
# type conversions); a CDLL-style foreign call, so the GIL is released meanwhile.
_dll: Any = vars(_bindings)["dll"]
_raw_call = ctypes.CFUNCTYPE(
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
    ctypes.c_size_t,
)(ctypes.cast(_dll.wasmtime_component_func_call, ctypes.c_void_p).value or 0)
_val_delete = _dll.wasmtime_component_val_delete
_val_delete_at = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(
    ctypes.cast(_dll.wasmtime_component_val_delete, ctypes.c_void_p).value or 0
)
_raw_set_fuel = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)(
    ctypes.cast(_dll.wasmtime_context_set_fuel, ctypes.c_void_p).value or 0
)
_STRING = 12
_VARIANT = 16
_string_at = ctypes.string_at
# A UTF-8 string result straight into a ``str``: one foreign call (holding the
# GIL, as a Python API call must) instead of ``string_at`` plus ``bytes.decode``.
_utf8_at = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_char_p)(
    ("PyUnicode_DecodeUTF8", ctypes.pythonapi)
)


class _Export:
    """A guest export called through wasmtime's C API with its types looked up once.

    ``wasmtime.component.Func.__call__`` asks the engine for the function's type
    (and a variant's lifting for its cases) on every call, allocates its argument
    and result buffers, and copies every string twice. This keeps one argument
    array and one result slot per export (calls on one instance never overlap),
    writes string arguments as pointers into Python's own ``bytes`` (wasmtime
    copies arguments), and reads a string result, or a variant whose payload is a
    string, in place. Other values go through wasmtime-py's own conversions.
    Mirrors ``Func.__call__`` of wasmtime-py 50 (its private ``_ffi`` module);
    :func:`_export` falls back to the plain call if the layout ever differs.
    """

    __slots__ = (
        "_args",
        "_args_addr",
        "_context",
        "_func",
        "_func_addr",
        "_n",
        "_params",
        "_result",
        "_result_addr",
        "_result_ty",
        "_slots",
        "_string_cases",
        "_text",
        "_variant",
    )

    def __init__(self, func: wc.Func, store: wasmtime.Store) -> None:
        fty = func.type(store)
        self._func = func  # keeps the wasmtime_component_func_t alive
        self._func_addr = ctypes.addressof(func._func)
        # The store's context pointer is fixed for the store's life.
        self._context = ctypes.cast(store._context(), ctypes.c_void_p).value
        self._params = [ty for _name, ty in fty.params]
        self._n = len(self._params)
        self._args = (_ffi.wasmtime_component_val_t * max(1, self._n))()
        self._args_addr = ctypes.addressof(self._args)
        self._slots = [
            _StrIn.from_buffer(self._args, i * ctypes.sizeof(_ffi.wasmtime_component_val_t))
            if isinstance(ty, wc.String)
            else None
            for i, ty in enumerate(self._params)
        ]
        self._result_ty = fty.result
        self._result = _ffi.wasmtime_component_val_t()  # kind 0: a bool, safe to overwrite
        self._result_addr = ctypes.addressof(self._result)
        self._variant = _VariantOut.from_buffer(self._result)
        self._text = _StrOut.from_buffer(self._result)
        self._string_cases: frozenset[bytes] = frozenset()
        if isinstance(self._result_ty, wc.VariantType):
            self._string_cases = frozenset(
                name.encode() for name, ty in self._result_ty.cases if isinstance(ty, wc.String)
            )

    def __call__(self, store: wasmtime.Store, *params: Any) -> Any:
        args = self._args
        keep: list[bytes] = []  # the buffers the string arguments point into
        generic: list[int] = []
        try:
            for i, (ty, slot, val) in enumerate(
                zip(self._params, self._slots, params, strict=True)
            ):
                if slot is not None and type(val) is str:
                    data = val.encode()
                    keep.append(data)
                    slot.kind = _STRING
                    slot.size = len(data)
                    slot.data = id(data) + _BYTES_DATA
                else:
                    ty.convert_to_c(store, val, ctypes.pointer(args[i]))
                    generic.append(i)
            result_ty = self._result_ty
            error = _raw_call(
                self._func_addr,
                self._context,
                self._args_addr,
                self._n,
                self._result_addr if result_ty is not None else None,
                1 if result_ty is not None else 0,
            )
            if error:
                raise_error(error)
            if result_ty is None:
                return None
            return self._lift(result_ty)
        finally:
            for i in generic:
                _ffi.wasmtime_component_val_delete(ctypes.byref(args[i]))
                args[i].kind = 0
            del keep

    def strings(self, store: wasmtime.Store, *params: str) -> Any:
        """``__call__`` for an export whose parameters are all strings and whose
        result is a string (``handle``): the same steps, minus the type dispatch,
        in as few Python-level steps as possible (this is every turn's path)."""
        keep = [val.encode() for val in params]  # the buffers the arguments point into
        for slot, data in zip(self._slots, keep, strict=True):
            # wasmtime takes the arguments read-only: the kind stays a string.
            slot.kind = _STRING  # type: ignore[union-attr]
            slot.size = len(data)  # type: ignore[union-attr]
            slot.data = id(data) + _BYTES_DATA  # type: ignore[union-attr]
        error = _raw_call(
            self._func_addr, self._context, self._args_addr, self._n, self._result_addr, 1
        )
        if error:
            raise_error(error)
        text = self._text
        if text.kind != _STRING:  # pragma: no cover - wasmtime checked the result type
            return self._lift(self._result_ty)
        try:
            return _utf8_at(text.data, text.size, None)
        finally:
            _val_delete_at(self._result_addr)
            text.kind = 0

    def _lift(self, result_ty: Any) -> Any:
        result = self._result
        out = self._variant
        kind = out.kind
        try:
            if kind == _STRING:
                text = self._text
                return _string_at(text.data, text.size).decode()
            if kind == _VARIANT and out.payload:
                tag = _string_at(out.tag_data, out.tag_size)
                if tag in self._string_cases:
                    payload = _StrOut.from_address(out.payload)
                    return wc.Variant(tag.decode(), _string_at(payload.data, payload.size).decode())
            lifted = result_ty.convert_from_c(result)  # takes ownership of the value
            result.kind = 0
            return lifted
        finally:
            if result.kind != 0:
                _val_delete(ctypes.byref(result))
                result.kind = 0


def raise_error(error: int) -> None:
    """Raise the ``wasmtime_error_t`` at ``error`` as wasmtime-py would."""
    raise_from = _WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(_ffi.wasmtime_error_t)))
    _maybe_raise_last_exn()
    raise raise_from


def _export(func: wc.Func, store: wasmtime.Store) -> Callable[..., Any]:
    if _layout_ok():
        try:
            export = _Export(func, store)
            if export._n and isinstance(export._result_ty, wc.String) and all(export._slots):
                return export.strings
            return export
        except Exception:  # pragma: no cover - a wasmtime-py without these internals
            pass
    return lambda store, *params: func(store, *params)  # pragma: no cover


# ----------------------------------------------------------------------
# Guest atoms
# ----------------------------------------------------------------------
# Live guests by their store's context pointer, which host imports receive.
_guests: weakref.WeakValueDictionary[int, GuestAtom] = weakref.WeakValueDictionary()
_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("radon_sandbox")


def _thread_limiter() -> trio.CapacityLimiter:
    try:
        return _limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(os.cpu_count() or 1)
        _limiter.set(limiter)
        return limiter


class GuestAtom:
    """One sandboxed atom's WebAssembly instance, driven from its cell."""

    __slots__ = (
        "__weakref__",
        "_context",
        "_fuel",
        "_funcs",
        "_handle",
        "_lock",
        "_store",
        "_timer_ids",
        "cell",
        "config",
        "crashed",
        "loaded",
        "timers",
    )

    def __init__(self, cell: AtomCell, loaded: LoadedComponent, config: SandboxConfig) -> None:
        self.cell = cell
        self.loaded = loaded
        self.config = config
        self.crashed: str | None = None
        self.timers: dict[int, TimerHandle] = {}
        self._timer_ids = itertools.count(1)
        store = wasmtime.Store(engine())
        store.set_wasi(wasmtime.WasiConfig())  # no files, no sockets, no environment
        store.set_limits(memory_size=config.memory)
        store.set_fuel(config.fuel)
        # The store's context pointer is fixed for the store's life: host imports
        # find their guest by it (no per-call bookkeeping).
        self._context: int = ctypes.cast(store._context(), ctypes.c_void_p).value or 0
        _guests[self._context] = self
        instance = loaded.linker.instantiate(store, loaded.component)
        funcs: dict[str, Callable[..., Any]] = {}
        for name, idx in loaded.exports.items():
            func = instance.get_func(store, idx)
            if func is None:  # pragma: no cover - checked at load
                raise SandboxError(f"export {name!r} is not a function")
            funcs[name] = _export(func, store)
        self._store = store
        self._funcs = funcs
        self._handle = funcs["handle"]
        self._fuel = config.fuel
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<GuestAtom {self.cell.cls.__name__} {self.cell.id}>"

    # calls into the guest ------------------------------------------------
    def _refuel(self) -> None:
        """A fresh turn's CPU budget (``store.set_fuel``, minus its Python layers)."""
        error = _raw_set_fuel(self._context, self._fuel)
        if error:  # pragma: no cover - fuel metering is always on in our engine
            raise_error(error)

    def _crashed_earlier(self) -> SandboxCrashed:
        return SandboxCrashed(
            f"the sandbox of {self.cell.label()} crashed earlier ({self.crashed})"
        )

    def _trapped(self, exc: BaseException) -> BaseException:
        """What a failed call into the guest raises; the instance is unusable after."""
        if isinstance(exc, (wasmtime.WasmtimeError, wasmtime.Trap)):
            self.crashed = _reason(exc, self.config)
            return SandboxCrashed(f"the sandbox stopped {self.cell.label()}: {self.crashed}")
        # A host import raised (wasmtime-py turns that into a trap and re-raises
        # it here): the instance cannot be entered again either.
        self.crashed = f"a host import raised {exc!r}"
        return exc

    def _invoke_sync(self, name: str, *params: Any) -> Any:
        if self.crashed is not None:
            raise self._crashed_earlier()
        try:
            return self._funcs[name](self._store, *params)
        except BaseException as exc:
            error = self._trapped(exc)
            if error is exc:
                raise
            raise error from None

    async def _invoke(self, name: str, *params: Any) -> Any:
        if self.config.threaded:
            # A store must never be entered from two threads at once: the cell's
            # turns are sequential, but a snapshot taken from another task could
            # otherwise overlap a turn that started while it ran.
            async with self._lock:
                return await trio.to_thread.run_sync(
                    self._invoke_sync, name, *params, limiter=_thread_limiter()
                )
        return self._invoke_sync(name, *params)

    def on_trio(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` where trio state may be touched (a host import's body)."""
        if self.config.threaded:
            return trio.from_thread.run_sync(fn, *args)
        return fn(*args)

    async def _settle(self, out: str) -> Any:
        """Follow one guest call to its end, performing the operations it awaits."""
        while True:
            tag = out[:1]
            if tag == "d":
                return _decode_result(out)
            if tag == "f":
                raise _decode_exception(out[1:])
            if tag != "s":
                raise _malformed(out)
            request = await self._invoke("pending")
            if request is None:
                raise SandboxError("the guest suspended a turn but reports no pending operation")
            try:
                value = await self._perform(request.op)
                reply = wc.Variant("value", _encode_reply(value))
            except Exception as exc:
                reply = wc.Variant("error", enc_exc(exc))
            out = await self._invoke("resume", request.token, reply)

    async def _perform(self, op: Any) -> Any:
        req = op.payload
        if op.tag == "ask":
            args, kwargs = _decode_message(req.message)
            endpoint = _endpoint(req.target)
            return await endpoint.ask(req.handler, args, kwargs, req.timeout)
        if op.tag == "spawn":
            cls = dec(getattr(req, "class"))
            args, kwargs = _decode_message(req.message)
            sandbox = _ISOLATION.get(req.isolation)
            if sandbox is None and req.isolation != "class-default":  # pragma: no cover
                raise SandboxError(f"unknown isolation {req.isolation!r} in a spawn request")
            return await self.cell.spawn(cls, args, kwargs, req.name, sandbox)
        raise SandboxError(f"unknown guest operation {op.tag!r}")  # pragma: no cover

    # what the cell calls -------------------------------------------------
    async def begin(self) -> None:
        """Build the atom inside the guest (constructor, then ``on_start``)."""
        cell = self.cell
        try:
            encoded_cls = enc(cell.cls)
            message = enc((cell.args, cell.kwargs))
        except Exception as exc:
            raise MessageNotPortable(
                f"the spawn arguments of {cell.label()} cannot enter the sandbox: {exc!r}"
            ) from exc
        self._store.set_fuel(self.config.fuel)
        await self._settle(await self._invoke("create", cell.id, cell.name, encoded_cls, message))
        self._store.set_fuel(self.config.fuel)
        await self._settle(await self._invoke("start"))

    async def restore(self, state: str) -> None:
        """Rebuild the atom from :meth:`snapshot` output, without its constructor."""
        cell = self.cell
        self._store.set_fuel(self.config.fuel)
        out = await self._invoke("restore", cell.id, cell.name, enc(cell.cls), state)
        await self._settle(out)

    async def call(self, handler: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One turn: run ``handler`` in the guest, with a fresh fuel budget."""
        message = enc_message(args, kwargs)
        self._refuel()
        if self.config.threaded:
            out = await self._invoke("handle", handler, message)
        else:
            out = self._invoke_sync("handle", handler, message)
        if out[:1] == "d":  # the common end of a turn, without _settle's frames
            return _decode_result(out)
        return await self._settle(out)

    def call_now(self, handler: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One turn of a handler that cannot suspend, run right here (inline).

        The hot path of a sandboxed ask: the common steps are written inline."""
        if self.crashed is not None:
            raise self._crashed_earlier()
        if not kwargs and all(map(_is_scalar, map(type, args))):
            message = _mdumps((args, kwargs), _MARSHAL_SCALARS).decode("latin-1")
        else:
            message = enc_message(args, kwargs)
        if _raw_set_fuel(self._context, self._fuel):  # pragma: no cover
            self._refuel()  # raises the error
        try:
            out: str = self._handle(self._store, handler, message)
        except BaseException as exc:
            error = self._trapped(exc)
            if error is exc:
                raise
            raise error from None
        tag = out[:1]
        if tag == "d":
            return _decode_result(out)
        if tag == "f":
            raise _decode_exception(out[1:])
        if tag != "s":
            raise _malformed(out)
        raise SandboxError(
            f"handler {handler!r} of {self.cell.label()} has no await of its own but "
            "returned an awaitable that waits on the host; declare it `async def` and "
            "await it in its body"
        )

    async def on_stop(self) -> None:
        """The atom's ``on_stop``, run in the guest (skipped after a crash)."""
        if self.crashed is not None:
            return
        self._store.set_fuel(self.config.fuel)
        await self._settle(await self._invoke("finish"))

    async def snapshot(self) -> str:
        """The atom's state, encoded by the guest (between turns only)."""
        self._store.set_fuel(self.config.fuel)
        out = await self._invoke("snapshot")
        if isinstance(out, wc.Variant):  # result<payload, payload> lifts tagged
            if out.tag == "err":
                raise _decode_exception(str(out.payload))
            return str(out.payload)
        return str(out)

    def timer_table(self) -> tuple[dict[int, TimerHandle], int]:
        """The host side of the guest's timers, by the numbers the guest holds,
        and the next number: what a move carries beside :meth:`snapshot`."""
        return dict(self.timers), next(self._timer_ids)

    def adopt_timers(self, timers: dict[int, TimerHandle], next_id: int) -> None:
        """Take over :meth:`timer_table` output (its handles re-armed here), so
        the restored guest's timer numbers name them."""
        self.timers.update(timers)
        self._timer_ids = itertools.count(next_id)


def _reason(exc: BaseException, config: SandboxConfig) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "fuel" in text:
        return f"it ran out of fuel, its CPU budget per turn ({config.fuel:,}): {first}"
    if "stack overflow" in text or "call stack exhausted" in text:
        return f"its stack overflowed: {first}"
    if "unreachable" in text or "memory" in text:
        return (
            f"it trapped ({first}); a guest that passes its memory cap "
            f"({config.memory:,} bytes) aborts this way"
        )
    return f"it trapped: {first}"


def _endpoint(atom_id: str) -> _ref.Endpoint:
    """Where a message from the guest to ``atom_id`` goes: the runtime's resolver
    (the one unpickled Refs use), so that placement can route it too."""
    return resolve(atom_id, None)


def _decode_result(outcome: str) -> Any:
    """The value of a ``d`` outcome (the payload after the tag character)."""
    if outcome == "dN":  # marshal's None
        return None
    try:
        data = outcome.encode("latin-1")
        return _ploads(data[1:]) if data[1] == 0x80 else _mloads(data[1:])
    except Exception as exc:
        raise SandboxError(f"the guest returned a result the host cannot decode: {exc!r}") from None


def _malformed(outcome: str) -> SandboxError:
    return SandboxError(
        f"the guest returned a malformed outcome {outcome[:40]!r} (expected a first "
        "character d, f or s; see docs/standard.md)"
    )


def _decode_exception(payload: str) -> BaseException:
    try:
        exc = dec(payload)
    except Exception as err:
        return SandboxError(
            f"the sandboxed handler raised an exception the host cannot rebuild: {err!r}"
        )
    if not isinstance(exc, BaseException):
        return SandboxError(f"the guest reported a failure that is not an exception: {exc!r}")
    return exc


def _decode_message(message: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    try:
        args, kwargs = dec(message)
    except Exception as exc:
        raise MessageNotPortable(f"a message from the sandbox cannot be decoded: {exc!r}") from exc
    return args, kwargs


def _encode_reply(value: Any) -> str:
    try:
        return enc_value(value)
    except Exception as exc:
        raise MessageNotPortable(f"the reply {value!r} cannot enter the sandbox: {exc!r}") from exc


# ----------------------------------------------------------------------
# Host imports (the guest's syscalls). Each receives the store first and must
# not raise: errors go back to the guest encoded.
# ----------------------------------------------------------------------
def _guest(store: Any) -> GuestAtom:
    """The guest whose call made a host import (``store`` is its StoreContext)."""
    guest = _guests.get(ctypes.cast(store._context(), ctypes.c_void_p).value or 0)
    if guest is None:  # pragma: no cover - only live guests run
        raise SandboxError("a host import was called by an unknown store")
    return guest


def _tell(target: str, handler: str, message: str) -> None:
    args, kwargs = _decode_message(message)
    _endpoint(target).tell(handler, args, kwargs)


def _h_tell(store: Any, target: str, handler: str, message: str) -> str | None:
    try:
        _guest(store).on_trio(_tell, target, handler, message)
    except Exception as exc:
        return enc_exc(exc)
    return None


def _h_stop(store: Any) -> None:
    guest = _guest(store)
    guest.on_trio(guest.cell.stop)


def _h_log(store: Any, level: str, event: str, fields: str) -> None:
    guest = _guest(store)
    try:
        decoded = dec(fields)
        values = dict(decoded) if isinstance(decoded, dict) else {"fields": decoded}
    except Exception:
        values = {"fields": "<undecodable>"}
    values.pop("event", None)
    method = getattr(guest.cell.log, level if level in _LOG_LEVELS else "info")
    with contextlib.suppress(Exception):
        method(event, sandboxed=True, **{str(k): v for k, v in values.items()})


def _h_now(store: Any) -> float:
    return _guest(store).on_trio(trio.current_time)


def _start_timer(guest: GuestAtom, delay: float, periodic: bool, handler: str, message: str) -> int:
    args, kwargs = _decode_message(message)
    cell = guest.cell
    if periodic:
        handle = cell.send_every(delay, handler, args, kwargs)
    else:
        handle = cell.send_after(delay, handler, args, kwargs)
    timer_id = next(guest._timer_ids)
    guest.timers[timer_id] = handle
    return timer_id


def _h_start_timer(store: Any, delay: float, periodic: bool, handler: str, message: str) -> Any:
    guest = _guest(store)
    try:
        return guest.on_trio(_start_timer, guest, delay, periodic, handler, message)
    except Exception as exc:
        return enc_exc(exc)  # result<u64, payload> lifts untagged: a str is the error


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


def _h_stash(store: Any) -> str | None:
    guest = _guest(store)
    try:
        guest.on_trio(guest.cell.stash)
    except Exception as exc:
        return enc_exc(exc)
    return None


def _h_unstash_all(store: Any) -> None:
    guest = _guest(store)
    guest.on_trio(guest.cell.unstash_all)


_HOST_FUNCS: dict[str, Callable[..., Any]] = {
    "tell": _h_tell,
    "stop": _h_stop,
    "log": _h_log,
    "now": _h_now,
    "start-timer": _h_start_timer,
    "cancel-timer": _h_cancel_timer,
    "timer-active": _h_timer_active,
    "stash": _h_stash,
    "unstash-all": _h_unstash_all,
}
