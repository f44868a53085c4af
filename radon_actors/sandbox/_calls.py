"""Calls into a guest's exports through wasmtime's C API, with ctypes.

Why not ``wasmtime.component.Func.__call__``: on every call it asks the engine
for the function's type, allocates argument and result buffers and copies each
string twice, which was most of a sandboxed ask's host time. :func:`export`
wraps an export in an :class:`_Export` that does that work once per export
and per instance instead, and falls back to the plain call if this wasmtime-py's
C structures ever differ from the overlays here (checked by ``_layout_ok``).

The foreign calls are CDLL-style, so the GIL is released while WebAssembly
runs (two guests on two threads run in parallel).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _bindings, _ffi
from wasmtime import component as wc
from wasmtime._error import WasmtimeError as _WasmtimeError
from wasmtime.component._enter import maybe_raise_last_exn as _maybe_raise_last_exn

__all__ = ["export", "raise_error", "raw_set_fuel"]


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
# wasmtime_context_set_fuel(context, fuel) -> error pointer or 0: a turn's fresh
# CPU budget in one foreign call (``Store.set_fuel`` adds Python layers).
raw_set_fuel = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)(
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


class _Unreadable(Exception):
    """A value kind :func:`_read` does not handle (wasmtime-py's lifting does)."""


_READ_NUMBERS = {
    0: "boolean",
    1: "s8",
    2: "u8",
    3: "s16",
    4: "u16",
    5: "s32",
    6: "u32",
    7: "s64",
    8: "u64",
    9: "f32",
    10: "f64",
}
_OPTION = 18
_RECORD = 14
_ENUM = 17


def _read(c: Any) -> Any:
    """A ``wasmtime_component_val_t`` as the Python value wasmtime-py would lift
    (records as :class:`wasmtime.component.Record` with the WIT field names,
    variants as :class:`wasmtime.component.Variant`), read from the value
    itself. wasmtime-py's lifting asks the engine for the type's cases and
    fields again at every level of every call (most of a suspended turn's host
    time); the value carries its own kinds and names. Leaves ownership alone."""
    kind = c.kind
    of = c.of
    if kind == _STRING:
        return _string_at(of.string.data, of.string.size).decode()
    number = _READ_NUMBERS.get(kind)
    if number is not None:
        return getattr(of, number)
    if kind == _OPTION:
        return _read(of.option.contents) if of.option else None
    if kind == _RECORD:
        record = wc.Record()
        rec = of.record
        for i in range(rec.size):
            entry = rec.data[i]
            setattr(record, _string_at(entry.name.data, entry.name.size).decode(), _read(entry.val))
        return record
    if kind == _VARIANT:
        var = of.variant
        tag = _string_at(var.discriminant.data, var.discriminant.size).decode()
        return wc.Variant(tag, _read(var.val.contents) if var.val else None)
    if kind == _ENUM:
        return _string_at(of.enumeration.data, of.enumeration.size).decode()
    raise _Unreadable(kind)


def _lower_string_variant(slot: Any, tag: str, text: str) -> None:
    """Write ``tag(text)`` (a variant case whose payload is a string) into the
    argument slot ``slot``, owned by C as wasmtime-py's lowering would leave it
    (freed with the slot after the call), without asking for the type's cases."""
    payload = _ffi.wasmtime_component_val_t()
    payload.kind = _STRING
    payload.of.string = _ffi.str_to_capi(text)
    slot.kind = _VARIANT
    slot.of.variant.discriminant = _ffi.str_to_capi(tag)
    slot.of.variant.val = _ffi.wasmtime_component_val_new(ctypes.byref(payload))


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
    :func:`export` falls back to the plain call if the layout ever differs.
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
        "_string_params",
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
        # For each parameter that is a variant: its cases whose payload is a string.
        self._string_params = [
            frozenset(n for n, t in ty.cases if isinstance(t, wc.String))
            if isinstance(ty, wc.VariantType)
            else frozenset()
            for ty in self._params
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
                elif (
                    type(val) is wc.Variant
                    and val.tag in self._string_params[i]
                    and type(val.payload) is str
                ):
                    generic.append(i)
                    _lower_string_variant(args[i], val.tag, val.payload)
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
            try:
                return _read(result)  # the value is freed below
            except _Unreadable:
                pass
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


def export(func: wc.Func, store: wasmtime.Store) -> Callable[..., Any]:
    if _layout_ok():
        try:
            export = _Export(func, store)
            if export._n and isinstance(export._result_ty, wc.String) and all(export._slots):
                return export.strings
            return export
        except Exception:  # pragma: no cover - a wasmtime-py without these internals
            pass
    return lambda store, *params: func(store, *params)  # pragma: no cover
