"""The value format of ``radon:atom`` (since 0.4.0; docs/standard.md, *Values*).

Everything that crosses the sandbox boundary (messages, results, replies,
exceptions, log fields, timer messages, snapshots) is a *value*: JSON text
(RFC 8259, ASCII only) where a JSON object with exactly one member whose key
starts with ``$`` is a tagged value (a tuple, bytes, a set, a map with other
keys, a big integer, a non-finite float, a reference, a record, an exception,
an opaque blob). Why JSON: it cannot execute anything when read (the host
never unpickles or unmarshals guest bytes), every language a guest may be
written in has a fast reader and writer built in (CPython's ``_json``, a
JavaScript engine's ``JSON``), and the text carries no length headers, so what
a reader allocates is bounded by the length of the text it was given: a decoder
bomb has to be as large as the memory it claims, and :class:`Limits` refuses
it before parsing.

This module is bundled into the guest (``_build._GUEST_FILES``): standard
library and guest-safe modules only. Host and guest share the writer
(:class:`Writer`) and the reader (:class:`Reader`); each side supplies what it
alone knows: how a reference becomes a handle and back, and which records it can
rebuild.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable
from json import decoder as _jdecoder
from json import encoder as _jencoder
from json import scanner as _jscanner
from typing import Any, TypeVar

from ._errors import _BASES, ForeignError, MessageNotPortable, foreign_kind

__all__ = [
    "MAX_SAFE_INT",
    "Kwargs",
    "Limits",
    "Opaque",
    "PendingRecord",
    "Reader",
    "Record",
    "ValueRejected",
    "Writer",
    "error_from",
    "is_fast",
    "known_class",
    "placeholder",
    "portable",
    "record_from",
    "record_name",
    "typed_from",
    "typed_placeholder",
]

T = TypeVar("T", bound=type)

MAX_SAFE_INT = 2**53 - 1
"""Integers beyond +-(2**53 - 1) are written as ``{"$int": "digits"}``: a reader
whose numbers are IEEE doubles (JavaScript's) would round them silently."""

# Functions that cross by name, as classes do ($global).
_FUNCTIONS = frozenset({type(len), type(_jencoder.py_encode_basestring)})
# A subclass of one of these crosses as its class's name and its built-in value.
_BUILTIN_BASES: tuple[type[Any], ...] = (
    str,
    bytes,
    bool,
    int,
    float,
    list,
    tuple,
    dict,
    set,
    frozenset,
)
_SUBCLASSABLE = frozenset(_BUILTIN_BASES) - {bool}
# Exactly these types cross as themselves (subclasses, such as enums, do not).
_FAST = frozenset({str, int, float, bool, type(None)})
is_fast = _FAST.__contains__

# CPython's C encoder, made once (``json.dumps`` builds one per call): no
# indentation, compact separators, ASCII only (the text crosses as a WIT string,
# and ASCII never fails to encode, lone surrogates included), no NaN (written
# as tagged values instead), no cycle markers (the trees built here are acyclic).
_c_make_encoder: Any = getattr(_jencoder, "c_make_encoder", None)
_ascii = _jencoder.encode_basestring_ascii


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


if _c_make_encoder is not None:
    _encode_tree = _c_make_encoder(None, _no_default, _ascii, None, ":", ",", False, False, False)

    def _dumps(tree: Any) -> str:
        return "".join(_encode_tree(tree, 0))

else:  # pragma: no cover - every CPython we run has _json
    _dumps = json.JSONEncoder(  # type: ignore[assignment]
        ensure_ascii=True, allow_nan=False, separators=(",", ":"), check_circular=False
    ).encode


class ValueRejected(MessageNotPortable):
    """A value the reader refused: malformed, or past the reader's :class:`Limits`."""


class Limits:
    """What a reader accepts: the length of the text, its nesting depth and its
    number of items (array elements and object members, counted over the whole
    value). Checked before parsing, so a refused value costs no allocation."""

    __slots__ = ("_trivial", "max_depth", "max_items", "max_length")

    def __init__(
        self, max_length: int = 16 * 1024 * 1024, max_depth: int = 64, max_items: int = 1_000_000
    ) -> None:
        self.max_length = max_length
        self.max_depth = max_depth
        self.max_items = max_items
        # No text this short can nest deeper or hold more items than allowed.
        self._trivial = 2 * min(max_depth, max_items)

    def check(self, text: str, start: int = 0) -> None:
        """Raise :class:`ValueRejected` if ``text[start:]`` passes a limit."""
        n = len(text) - start
        if n > self.max_length:
            raise ValueRejected(
                f"a value of {n:,} characters is longer than the reader allows "
                f"({self.max_length:,})"
            )
        if n <= self._trivial:
            return
        opens = text.count("[", start) + text.count("{", start)
        # Every item but the first of each container follows a comma.
        if opens + text.count(",", start) > self.max_items:
            raise ValueRejected(
                f"a value holds more than the {self.max_items:,} items the reader allows"
            )
        if opens > self.max_depth and _depth(text, start) > self.max_depth:
            raise ValueRejected(f"a value nests deeper than the {self.max_depth} levels allowed")


# Brackets outside strings (a string is matched whole, escapes included).
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _depth(text: str, start: int) -> int:
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text, start):
        char = match.group()
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif char in "]}":
            depth -= 1
    return deepest


class Opaque:
    """A value only the atom that wrote it can read: a guest's private encoding
    of state that has no portable form (``text``), and the references it holds
    (``refs``, written as ordinary references so that each side can map them).
    The host keeps it as it is."""

    __slots__ = ("refs", "text")

    def __init__(self, text: str, refs: list[Any] | None = None) -> None:
        self.text = text
        self.refs = refs or []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and (other.text, other.refs) == (self.text, self.refs)

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Opaque({len(self.text)} characters, {len(self.refs)} references)"


class Record:
    """A record whose class the reader has not registered with :func:`portable`:
    its type's name (``"module:QualName"``) and its fields, as plain values."""

    __slots__ = ("fields", "type")

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self.type = type_name
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and (other.type, other.fields) == (self.type, self.fields)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dict it holds

    def __repr__(self) -> str:
        return f"Record({self.type!r}, {self.fields!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Between hosts (placement pickles replies): the receiving process
        # rebuilds the class if it registered it, so a record passed on by a host
        # that never imported its module still arrives as itself.
        return (_record_or_class, (self.type, self.fields))


class PendingRecord(Record):
    """A record unpickled where its class must not be imported (placement's
    frame reader, for the modules of sandboxed components): pickle builds it as
    it would the class (``__new__``, then ``__setstate__`` with the instance's
    state, or a call with the constructor's arguments), and it is a
    :class:`Record` from then on. Subclasses name the type (``placeholder``)."""

    __slots__ = ()
    _radon_type = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs and type(args[0]) in _SUBCLASSABLE:
            # copyreg.__newobj__(cls, value): an instance of a subclass of a
            # built-in type (a str subclass, say).
            return typed_placeholder(cls._radon_type, type(args[0]))(args[0])
        made = super().__new__(cls)
        made.type = cls._radon_type
        made.fields = {"args": list(args), **kwargs} if (args or kwargs) else {}
        return made

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass  # __new__ set it up (pickle may also call neither and __setstate__)

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) of __slots__ classes
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        if isinstance(state, (list, tuple)):
            state = {str(i): v for i, v in enumerate(state)}
        self.type = self._radon_type
        self.fields = dict(state) if isinstance(state, dict) else {"state": state}


_typed_placeholders: dict[tuple[str, type], type] = {}


def typed_placeholder(type_name: str, base: type) -> type:
    """A subclass of the built-in ``base`` standing for ``type_name``: its
    instances are the built-in value, carry the name (written back as a
    ``$typed`` of that name) and become the class itself when unpickled in a
    process that registered it with :func:`portable`."""
    key = (type_name, base)
    cls = _typed_placeholders.get(key)
    if cls is None:
        if len(_typed_placeholders) >= 4096:  # names come from guests and peers
            _typed_placeholders.clear()
        cls = type(
            type_name.rpartition(":")[2].rpartition(".")[2] or base.__name__,
            (base,),
            {"_radon_type": type_name, "__reduce__": _reduce_typed},
        )
        _typed_placeholders[key] = cls
    return cls


def _reduce_typed(self: Any) -> tuple[Any, ...]:
    base = next(b for b in type(self).__mro__[1:] if b in _BUILTIN_BASES)
    return (_typed_or_class, (type(self)._radon_type, base(self)))


def _typed_or_class(type_name: str, value: Any) -> Any:
    try:
        return typed_from(type_name, value, _portable.get)
    except ValueRejected:  # the tagged built-in value is still the faithful answer
        return typed_placeholder(type_name, type(value))(value)


_placeholders: dict[str, type[PendingRecord]] = {}


def placeholder(module: str, qualname: str) -> type[PendingRecord]:
    """The :class:`PendingRecord` class standing for ``module:qualname``."""
    name = f"{module}:{qualname}"
    cls = _placeholders.get(name)
    if cls is None:
        if len(_placeholders) >= 4096:  # names come from peers: keep the table bounded
            _placeholders.clear()
        cls = type(qualname.rpartition(".")[2], (PendingRecord,), {"_radon_type": name})
        _placeholders[name] = cls
    return cls


def _record_or_class(type_name: str, fields: dict[str, Any]) -> Any:
    try:
        return record_from(type_name, fields, _portable.get)
    except ValueRejected:  # the record is still the faithful answer
        return Record(type_name, fields)


class Kwargs(dict):  # type: ignore[type-arg]
    """A message's keyword arguments (``{"$kw": {...}}``, last in the message)."""

    __slots__ = ()


# ----------------------------------------------------------------------
# Records: classes whose instances cross as their fields
# ----------------------------------------------------------------------
_portable: dict[str, type] = {}


def record_name(cls: type) -> str:
    """A class's name in the format: ``"module:QualName"``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def portable(cls: T) -> T:
    """Let instances of ``cls`` cross the sandbox boundary as themselves.

    A dataclass or attrs class crosses as a record (its fields, by name); an
    exception class as its arguments; a subclass of a built-in type (a ``str``
    that marks a kind of reply, say) as its built-in value. Either way the receiving side rebuilds
    an instance only of a class registered with this decorator, by calling it
    (``cls(**fields)``, ``cls(*args)``): the host never builds an object of a
    class the guest names unless the host's own code registered it. Elsewhere
    a record arrives as a :class:`Record` and an exception as a
    :class:`~radon_actors.ForeignError`. Decorate the class where it is
    defined, so that every process (and the guest) that imports it registers it.
    """
    if not isinstance(cls, type):
        raise TypeError(f"@portable takes a class, not {cls!r}")
    if not (
        _fields_of(cls) is not None or issubclass(cls, Exception) or issubclass(cls, _BUILTIN_BASES)
    ):
        raise TypeError(
            f"@portable takes a dataclass, an attrs class, an Exception subclass or a "
            f"subclass of a built-in type (str, bytes, int, float, list, tuple, dict, set, "
            f"frozenset), not {cls.__qualname__}: other classes have no portable form"
        )
    _portable[record_name(cls)] = cls
    return cls


# A record class's constructor keywords and the attributes that hold them: the
# same names, except for attrs' private attributes (``_x``, keyword ``x``).
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, str], ...] | None:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _find_fields(cls)
        if fields is not None:
            _FIELDS[cls] = fields
    return fields


def _find_fields(cls: type) -> tuple[tuple[str, str], ...] | None:
    if getattr(cls, "__dataclass_fields__", None) is not None:
        import dataclasses

        # Only fields the constructor takes: init=False ones are derived.
        return tuple((f.name, f.name) for f in dataclasses.fields(cls) if f.init)
    attrs = getattr(cls, "__attrs_attrs__", None)
    if attrs is not None:
        return tuple((getattr(a, "alias", None) or a.name, a.name) for a in attrs if a.init)
    return None


# ----------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------
class Writer:
    """Writes values in the format.

    ``ref`` turns a :class:`~radon_actors.Ref` into its ``$ref`` body (the
    side's handle for it); ``fallback`` gets any value with no portable form
    and returns a portable value to write instead (an ``Opaque``, its
    ``repr``), or raises;
    ``record_check`` sees the class of every record written (and may raise);
    without ``classes``, classes and functions go to ``fallback`` instead of
    ``$global`` (a reference by module and qualified name).
    """

    __slots__ = ("_classes", "_fallback", "_record_check", "_ref", "_ref_type")

    def __init__(
        self,
        ref: Callable[[Any], Any],
        fallback: Callable[[Any], Any] | None = None,
        ref_type: type | None = None,
        record_check: Callable[[type], None] | None = None,
        classes: bool = True,
    ) -> None:
        self._classes = classes
        self._ref = ref
        self._fallback = fallback
        self._record_check = record_check
        if ref_type is None:
            from .._ref import Ref

            ref_type = Ref
        self._ref_type = ref_type

    def tree(self, v: Any) -> Any:
        """``v`` as a tree of JSON types (tagged where JSON has no type for it)."""
        t = type(v)
        if t is str or t is bool or v is None:
            return v
        if t is int:
            return v if -MAX_SAFE_INT <= v <= MAX_SAFE_INT else {"$int": str(v)}
        if t is float:
            if math.isfinite(v):
                return v
            return {"$float": "nan" if v != v else ("inf" if v > 0 else "-inf")}
        if t is list:
            return [self.tree(x) for x in v]
        if t is tuple:
            return {"$tuple": [self.tree(x) for x in v]}
        if t is dict:
            if all(type(k) is str for k in v) and not (len(v) == 1 and next(iter(v))[:1] == "$"):
                return {k: self.tree(x) for k, x in v.items()}
            return {"$map": [[self.tree(k), self.tree(x)] for k, x in v.items()]}
        if t is bytes:
            return {"$bytes": base64.b64encode(v).decode("ascii")}
        if t is set:
            return {"$set": [self.tree(x) for x in v]}
        if t is frozenset:
            return {"$frozenset": [self.tree(x) for x in v]}
        if isinstance(v, self._ref_type):
            return {"$ref": self._ref(v)}
        if t is Opaque:
            return {"$opaque": {"text": v.text, "refs": [self.tree(r) for r in v.refs]}}
        if isinstance(v, Record):
            return {"$record": [v.type, self.tree(v.fields)]}
        if t is Kwargs:
            return {"$kw": {k: self.tree(x) for k, x in v.items()}}
        fields = _fields_of(t)
        if fields is not None:
            if self._record_check is not None:
                self._record_check(t)
            values = {key: getattr(v, attr) for key, attr in fields}
            return {"$record": [record_name(t), self.tree(values)]}
        for base in _BUILTIN_BASES:
            if isinstance(v, base):
                name = getattr(t, "_radon_type", None)
                if name is None:
                    if self._record_check is not None:
                        self._record_check(t)
                    name = record_name(t)
                return {"$typed": [name, self.tree(base(v))]}
        if isinstance(v, BaseException):
            return {"$error": self.error(v)}
        if self._classes and (isinstance(v, type) or t in _FUNCTIONS):
            name = record_name(v)
            if "<" not in name:  # not a lambda, nor a function or class made in a call
                return {"$global": name}
        if self._fallback is not None:
            return self.tree(self._fallback(v))
        raise MessageNotPortable(_not_portable(v))

    def error(self, exc: BaseException, traceback: str = "", answer: bool = False) -> Any:
        """An exception's ``$error`` body: its type's name and the names of the
        types it derives from, its message, its arguments if they are portable,
        the traceback text, and whether it is an answer (a Rejection)."""
        cls = type(exc)
        body: dict[str, Any] = {
            "type": exc.type_name if isinstance(exc, ForeignError) else record_name(cls),
            "bases": [k.__name__ for k in cls.__mro__[1:] if k is not object],
            "message": _message(exc),
        }
        try:  # noqa: SIM105 - cheaper than contextlib.suppress in the guest
            body["args"] = [self.tree(a) for a in exc.args]
        except Exception:  # arguments with no portable form: the message carries them
            pass
        if traceback:
            body["traceback"] = traceback
        if answer:
            body["answer"] = True
        return body

    def value(self, v: Any) -> str:
        """``v`` as text in the format."""
        t = type(v)
        if t is str:
            return _ascii(v)
        if t is int and -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
            return str(v)
        try:
            return _dumps(self.tree(v))
        except RecursionError:
            raise MessageNotPortable(
                "a value nests too deeply (or refers to itself) to cross the sandbox boundary"
            ) from None

    def message(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """A message: the positional arguments as an array, then the keyword
        arguments, if any, as a last ``{"$kw": {...}}`` element."""
        if not kwargs and all(map(is_fast, map(type, args))):
            # Every argument is a JSON scalar (one C-level pass): write them as
            # they are, unless one is a NaN or infinity (the encoder refuses it)
            # or an integer past a double's precision (tagged, see MAX_SAFE_INT).
            for a in args:
                if type(a) is int and not -MAX_SAFE_INT <= a <= MAX_SAFE_INT:
                    break
            else:
                try:
                    return _dumps(args)
                except ValueError:
                    pass
        tree = [self.tree(a) for a in args]
        if kwargs:
            tree.append({"$kw": {k: self.tree(x) for k, x in kwargs.items()}})
        try:
            return _dumps(tree)
        except RecursionError:  # pragma: no cover - tree() raises it first
            raise MessageNotPortable("a message nests too deeply to cross") from None


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} with an unprintable message>"


def _not_portable(v: Any) -> str:
    return (
        f"a {type(v).__module__}.{type(v).__qualname__} value cannot cross the sandbox "
        "boundary: only None, bool, int, float, str, bytes, lists, tuples, dicts, sets, "
        "Refs, exceptions, dataclass or attrs instances, and (into the sandbox) classes and "
        "functions by name cross (docs/standard.md, Values)"
    )


# ----------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------
_DIGITS = re.compile(r"-?[0-9]+\Z")


def _bad_constant(name: str) -> Any:
    raise ValueRejected(f'{name} is not JSON (non-finite floats are tagged: {{"$float": ...}})')


class Reader:
    """Reads values in the format, within :class:`Limits`.

    ``ref`` turns a ``$ref`` body into a Ref (raising for one the writer was not
    given); ``resolve`` names the classes the reader builds records, typed
    values and exceptions of (:func:`record_from`, :func:`typed_from`,
    :func:`error_from`), by calling them with the data; ``opaque`` an opaque
    value's text and references into a value. All are the reading side's to decide.
    """

    __slots__ = ("_class", "_opaque", "_ref", "_resolve", "_scan", "limits")

    def __init__(
        self,
        limits: Limits,
        ref: Callable[[Any], Any],
        resolve: Callable[[str], type | None],
        opaque: Callable[[str, list[Any]], Any] = Opaque,
        klass: Callable[[str], Any] | None = None,
    ) -> None:
        self._class = klass
        self.limits = limits
        self._ref = ref
        self._resolve = resolve
        self._opaque = opaque
        context = _jdecoder.JSONDecoder(
            object_pairs_hook=self._object, parse_constant=_bad_constant, strict=True
        )
        make: Any = _jscanner.make_scanner  # typeshed types it as its own class
        self._scan: Callable[[str, int], tuple[Any, int]] = make(context)

    def _object(self, pairs: list[tuple[str, Any]]) -> Any:
        if len(pairs) != 1 or pairs[0][0][:1] != "$":
            return dict(pairs)
        tag, body = pairs[0]
        reader = _TAGS.get(tag)
        if reader is None:
            raise ValueRejected(f"unknown tag {tag[:40]!r} in a value")
        return reader(self, body)

    def value(self, text: str, start: int = 0) -> Any:
        """The value in ``text[start:]`` (the whole rest of the text)."""
        self.limits.check(text, start)
        try:
            value, end = self._scan(text, start)
        except StopIteration:
            raise ValueRejected(f"not a value: {text[start : start + 40]!r}") from None
        except ValueRejected:
            raise
        except (ValueError, TypeError, RecursionError) as exc:
            raise ValueRejected(f"a malformed value: {exc}") from None
        if end != len(text):
            raise ValueRejected(f"text after a value: {text[end : end + 40]!r}")
        return value

    def message(self, text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """A message's ``(args, kwargs)``."""
        items = self.value(text)
        if type(items) is not list:
            raise ValueRejected("a message is an array of arguments")
        if items and type(items[-1]) is Kwargs:
            return tuple(items[:-1]), dict(items[-1])
        return tuple(items), {}

    # tagged values ----------------------------------------------------------
    def _int(self, body: Any) -> int:
        if type(body) is not str or not _DIGITS.match(body) or len(body) > 4300:
            raise ValueRejected(f"a malformed $int: {str(body)[:40]!r}")
        return int(body)

    def _float(self, body: Any) -> float:
        if body not in ("nan", "inf", "-inf"):
            raise ValueRejected(f"a malformed $float: {str(body)[:40]!r}")
        return float(body)

    def _tuple(self, body: Any) -> tuple[Any, ...]:
        return tuple(_array(body, "$tuple"))

    def _set(self, body: Any) -> set[Any]:
        return set(_hashables(body, "$set"))

    def _frozenset(self, body: Any) -> frozenset[Any]:
        return frozenset(_hashables(body, "$frozenset"))

    def _bytes(self, body: Any) -> bytes:
        if type(body) is not str:
            raise ValueRejected("a $bytes body is base64 text")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ValueRejected("a $bytes body is not valid base64") from None

    def _map(self, body: Any) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for pair in _array(body, "$map"):
            if type(pair) is not list or len(pair) != 2:
                raise ValueRejected("a $map holds [key, value] pairs")
            try:
                out[pair[0]] = pair[1]
            except TypeError:
                raise ValueRejected(
                    f"a $map key is not hashable: {type(pair[0]).__name__}"
                ) from None
        return out

    def _kw(self, body: Any) -> Kwargs:
        if type(body) is not dict or not all(k.isidentifier() for k in body):
            raise ValueRejected("$kw holds keyword arguments by name")
        return Kwargs(body)

    def _opaque_tag(self, body: Any) -> Any:
        if (
            type(body) is not dict
            or type(body.get("text")) is not str
            or type(body.get("refs", [])) is not list
        ):
            raise ValueRejected('an $opaque is {"text": ..., "refs": [...]}')
        return self._opaque(body["text"], body.get("refs", []))

    def _record_tag(self, body: Any) -> Any:
        if (
            type(body) is not list
            or len(body) != 2
            or type(body[0]) is not str
            or type(body[1]) is not dict
        ):
            raise ValueRejected('a $record is ["module:Name", {fields}]')
        return record_from(body[0], body[1], self._resolve)

    def _class_tag(self, body: Any) -> Any:
        if type(body) is not str:
            raise ValueRejected('a $global is "module:QualName"')
        if self._class is None:
            raise ValueRejected("this reader takes no class references")
        return self._class(body)

    def _typed_tag(self, body: Any) -> Any:
        if type(body) is not list or len(body) != 2 or type(body[0]) is not str:
            raise ValueRejected('a $typed is ["module:Name", value]')
        return typed_from(body[0], body[1], self._resolve)

    def _ref_tag(self, body: Any) -> Any:
        return self._ref(body)

    def _error_tag(self, body: Any) -> Any:
        if (
            type(body) is not dict
            or type(body.get("type")) is not str
            or type(body.get("message")) is not str
        ):
            raise ValueRejected('an $error holds at least {"type": ..., "message": ...}')
        return error_from(body, self._resolve)


def _array(body: Any, tag: str) -> list[Any]:
    if type(body) is not list:
        raise ValueRejected(f"a {tag} body is an array")
    return body


def _hashables(body: Any, tag: str) -> Iterable[Any]:
    items = _array(body, tag)
    try:
        frozenset(items)
    except TypeError:
        raise ValueRejected(f"a {tag} holds an item that is not hashable") from None
    return items


# ----------------------------------------------------------------------
# Exceptions and records, as a reader rebuilds them
# ----------------------------------------------------------------------
_MAX_TRACEBACK = 64 * 1024


def known_class(name: str) -> type | None:
    """A class every side may build from data: one registered with
    :func:`portable`, a built-in exception, or one of radon-actors' errors."""
    cls = _portable.get(name)
    if cls is not None:
        return cls
    module, _, qualname = name.partition(":")
    kind = _BASES.get(qualname)
    if kind is not None and kind.__module__ == module:
        return kind
    return None


def error_from(body: dict[str, Any], resolve: Callable[[str], type | None]) -> BaseException:
    """The exception an ``$error`` body describes.

    ``resolve`` names the classes this side will build (by calling them with
    the exception's arguments); anything else becomes a
    :class:`~radon_actors.ForeignError` that derives from the nearest type
    the original derived from that every side knows."""
    type_name: str = body["type"]
    message: str = body["message"]
    traceback = body.get("traceback")
    traceback = traceback[:_MAX_TRACEBACK] if type(traceback) is str else ""
    args = body.get("args")
    exc: BaseException | None = None
    cls = resolve(type_name)
    if cls is not None and issubclass(cls, Exception):
        try:
            made = cls(*args) if type(args) is list else cls(message)
        except Exception:
            made = None
        if isinstance(made, Exception):
            exc = made
    if exc is None:
        bases = body.get("bases")
        names = [type_name.rpartition(":")[2]]
        if type(bases) is list:
            names.extend(b for b in bases[:64] if type(b) is str)
        base = next((_BASES[n] for n in names if n in _BASES), None)
        exc = foreign_kind(base, body.get("answer") is True)(type_name, message, traceback)
    if traceback:
        exc.add_note(f"traceback inside the sandbox:\n{traceback}")
    return exc


def record_from(
    type_name: str, fields: dict[str, Any], resolve: Callable[[str], type | None]
) -> Any:
    """The record ``type_name`` with ``fields``: an instance of the class
    ``resolve`` names for it (built with the fields as keywords), else a
    :class:`Record`."""
    cls = resolve(type_name)
    if cls is None or _fields_of(cls) is None:
        return Record(type_name, fields)
    try:
        return cls(**fields)
    except Exception as exc:
        raise ValueRejected(f"record {type_name} could not be rebuilt: {exc!r}") from None


def typed_from(type_name: str, value: Any, resolve: Callable[[str], type | None]) -> Any:
    """The built-in ``value`` as an instance of the subclass ``resolve`` names
    for ``type_name``, else the built-in value itself."""
    cls = resolve(type_name)
    base = type(value)
    if base not in _SUBCLASSABLE:
        return value
    if cls is None or not issubclass(cls, base):
        # Not a class this side builds: the built-in value, still carrying its
        # type's name (written back as such; rebuilt where it is registered).
        return typed_placeholder(type_name, base)(value)
    try:
        if base is tuple and hasattr(cls, "_make"):  # a named tuple
            return cls._make(value)
        return cls(value)
    except Exception as exc:
        raise ValueRejected(f"{type_name} could not be rebuilt: {exc!r}") from None


_TAGS: dict[str, Callable[[Reader, Any], Any]] = {
    "$int": Reader._int,
    "$float": Reader._float,
    "$tuple": Reader._tuple,
    "$set": Reader._set,
    "$frozenset": Reader._frozenset,
    "$bytes": Reader._bytes,
    "$map": Reader._map,
    "$kw": Reader._kw,
    "$opaque": Reader._opaque_tag,
    "$record": Reader._record_tag,
    "$ref": Reader._ref_tag,
    "$error": Reader._error_tag,
    "$global": Reader._class_tag,
    "$typed": Reader._typed_tag,
}
