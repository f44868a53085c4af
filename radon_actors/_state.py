"""Declaring durable state on an atom class, and the handle a handler uses.

``cart = state(CartState)`` in the class body declares a state: an instance
of ``CartState`` (a dataclass or an attrs class, or any value the standard's
value format holds) that is loaded from the system's store before
``on_start``, and written when the atom says so (``await self.cart.save()``).
In a handler, ``self.cart`` is a :class:`State`: ``value`` is the state,
``save()``/``clear()``/``reload()`` talk to the store, ``etag`` is the revision
this incarnation read.

This module is part of the API layer, and runs in the WebAssembly guest too
(standard library only; attrs is used when it is there): a state talks to its
store through the atom's context (``read_state``, ``write_state``,
``clear_state``), which the runtime's cell implements with the system's
durability extension and the guest runtime with host operations. Either way the
atom names only its own states; its type and key are the host's to decide.

The stored document (docs/durability.md, "The stored form")::

    {"radon-state": 1, "version": <the class's version>, "fields": {...}}

for a dataclass or an attrs class (its fields by name), or ``"value": ...``
for any other value, so another host, another Python, a sandboxed incarnation
or a later version of the class can read it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from ._errors import StateConflict

try:  # the host has attrs; the WebAssembly guest has the standard library only
    import attrs as _attrs
except ImportError:  # pragma: no cover - only inside the guest
    _attrs = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FORMAT", "State", "StateSpec", "atom_type", "document", "rebuild", "state"]

T = TypeVar("T")

FORMAT = 1
"""The version of the stored document's own shape (``"radon-state"``)."""


def atom_type(cls: type) -> str:
    """The type name a durable atom's state is stored under."""
    name = cls.__dict__.get("durable_type")
    return name if isinstance(name, str) else f"{cls.__module__}.{cls.__qualname__}"


class _Record:
    """One state of one incarnation: its value, and what the store said of it
    (kept in the atom's ``__dict__``, so it moves with a migrating atom and is
    part of a sandboxed atom's snapshot)."""

    __slots__ = ("etag", "exists", "stale", "value")

    def __init__(self, value: Any, etag: str | None, exists: bool, stale: bool = False) -> None:
        self.value = value
        self.etag = etag
        self.exists = exists
        self.stale = stale

    def __repr__(self) -> str:
        return f"_Record(value={self.value!r}, etag={self.etag!r}, exists={self.exists})"


class StateSpec(Generic[T]):
    """A durable state declared on an atom class (see :func:`state`)."""

    def __init__(
        self,
        factory: Callable[[], T],
        *,
        name: str | None,
        version: int,
        upgrade: Callable[[int, Any], Any] | None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"state() takes a class or a factory of the state, not {factory!r}")
        if not isinstance(version, int) or version < 1:
            raise ValueError(f"a state's version is a positive int, not {version!r}")
        self.factory = factory
        self.name = name
        self.version = version
        self.upgrade = upgrade
        self.attr = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr
        if self.name is None:
            self.name = attr
        inherited = getattr(owner, "_radon_states", ())
        owner._radon_states = (*(s for s in inherited if s.attr != attr), self)  # type: ignore[attr-defined]

    @property
    def slot(self) -> str:
        return f"_radon_state_{self.attr}"

    @overload
    def __get__(self, instance: None, owner: type) -> StateSpec[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> State[T]: ...
    def __get__(self, instance: object | None, owner: type) -> StateSpec[T] | State[T]:
        if instance is None:
            return self
        record = instance.__dict__.get(self.slot)
        if record is None:
            raise RuntimeError(
                f"the durable state {self.attr!r} is loaded after __init__, before on_start: "
                "use it from on_start or a handler"
            )
        return State(instance, self, record)

    def __set__(self, instance: object, value: Any) -> None:
        raise AttributeError(
            f"{self.attr!r} is a durable state: assign to `self.{self.attr}.value` instead"
        )

    def fresh(self) -> _Record:
        return _Record(self.factory(), None, False)

    def loaded(self, stored: tuple[Any, str] | None) -> _Record:
        """The record for what the store answered: None (nothing stored), or the
        document as a value (None: cleared, a tombstone) and its etag."""
        if stored is None:
            return self.fresh()
        doc, etag = stored
        if doc is None:
            return _Record(self.factory(), etag, False)
        return _Record(rebuild(doc, self), etag, True)


def state(
    factory: Callable[[], T],
    *,
    name: str | None = None,
    version: int = 1,
    upgrade: Callable[[int, Any], Any] | None = None,
) -> StateSpec[T]:
    """Declare a durable state in an atom class body: ``cart = state(CartState)``.

    ``factory`` makes the state of an atom that has none stored yet (a class
    called with no arguments, or any callable). ``name`` is the state's name in
    the store (default: the attribute's). ``version`` is written with the state;
    a stored state of an older version is passed through ``upgrade(version,
    fields)`` (its fields as a dict, or its plain value) before it is rebuilt.
    See docs/durability.md.
    """
    return StateSpec(factory, name=name, version=version, upgrade=upgrade)


async def load_states(atom: Any) -> None:
    """Read every state ``atom``'s class declares (before its ``on_start``)."""
    ctx = atom._radon_ctx
    spec: StateSpec[Any]
    for spec in type(atom)._radon_states:
        assert spec.name is not None
        atom.__dict__[spec.slot] = spec.loaded(await ctx.read_state(spec.name))


class State(Generic[T]):
    """A durable state as a handler sees it: ``self.cart`` for ``cart = state(...)``."""

    __slots__ = ("_atom", "_record", "_spec")

    def __init__(self, atom: object, spec: StateSpec[T], record: _Record) -> None:
        self._atom = atom
        self._spec = spec
        self._record = record

    @property
    def value(self) -> T:
        """The state (change it in place, or assign a new one), saved by :meth:`save`."""
        value: T = self._record.value
        return value

    @value.setter
    def value(self, value: T) -> None:
        self._record.value = value

    @property
    def etag(self) -> str | None:
        """The revision of the stored state this incarnation last read or wrote."""
        return self._record.etag

    @property
    def exists(self) -> bool:
        """Whether a state is stored (False before the first save, and after a clear)."""
        return self._record.exists

    async def save(self) -> None:
        """Write the state to the store; raises :class:`~radon_actors.StateConflict`
        if another incarnation wrote it since (then this one never writes again)."""
        record = self._check()
        doc = document(record.value, self._spec)
        ctx = self._atom._radon_ctx  # type: ignore[attr-defined]
        record.etag = await self._guard(ctx.write_state(self._name, doc, record.etag))
        record.exists = True

    async def clear(self) -> None:
        """Remove the stored state (the value goes back to the factory's)."""
        record = self._check()
        ctx = self._atom._radon_ctx  # type: ignore[attr-defined]
        record.etag = await self._guard(ctx.clear_state(self._name, record.etag))
        record.exists = False
        record.value = self._spec.factory()

    async def reload(self) -> None:
        """Read the stored state again (dropping unsaved changes)."""
        ctx = self._atom._radon_ctx  # type: ignore[attr-defined]
        fresh = self._spec.loaded(await ctx.read_state(self._name))
        record = self._record
        record.value, record.etag, record.exists = fresh.value, fresh.etag, fresh.exists

    @property
    def _name(self) -> str:
        name = self._spec.name
        assert name is not None
        return name

    def _check(self) -> _Record:
        record = self._record
        if record.stale:
            raise StateConflict(
                f"this incarnation of the atom lost the state {self._name!r} to another one "
                "(a save was refused); it cannot write any more: let it restart"
            )
        return record

    async def _guard(self, write: Any) -> str:
        try:
            etag: str = await write
        except StateConflict:
            self._record.stale = True
            raise
        return etag


# ----------------------------------------------------------------------
# The stored document
# ----------------------------------------------------------------------
def _fields(cls: Any) -> dict[str, str] | None:
    """Attribute name -> constructor keyword, for an attrs class or a dataclass."""
    if not isinstance(cls, type):
        return None
    if _attrs is not None and _attrs.has(cls):
        return {a.name: a.alias or a.name for a in _attrs.fields(cls) if a.init}
    if dataclasses.is_dataclass(cls):
        return {f.name: f.name for f in dataclasses.fields(cls) if f.init}
    return None


def document(value: Any, spec: StateSpec[Any]) -> dict[str, Any]:
    """The document for ``value``, a state of ``spec`` (a value; the store keeps
    it as text in the value format)."""
    fields = _fields(type(value))
    doc: dict[str, Any] = {"radon-state": FORMAT, "version": spec.version}
    if fields is not None:
        doc["fields"] = {name: getattr(value, name) for name in fields}
    else:
        doc["value"] = value
    return doc


dropped_fields: Callable[[str, list[str]], None] | None = None
"""Called with a state's name and the stored fields its class no longer has
(set by the host's durability extension, which logs them)."""


def rebuild(doc: Any, spec: StateSpec[Any]) -> Any:
    """The state a document holds, rebuilt for ``spec`` (upgraded if older)."""
    if not isinstance(doc, dict) or doc.get("radon-state") != FORMAT:
        raise ValueError(f"not a radon-actors state document (format {FORMAT}): {str(doc)[:80]}")
    version = doc.get("version")
    if type(version) is not int or version < 1:
        raise ValueError(f"a state document with no valid version: {str(doc)[:80]}")
    if version > spec.version:
        raise ValueError(
            f"the state {spec.name!r} was stored by version {version} of its class, and this "
            f"one is version {spec.version}: run the newer code"
        )
    body = doc["fields"] if "fields" in doc else doc.get("value")
    if version < spec.version:
        if spec.upgrade is None:
            raise ValueError(
                f"the state {spec.name!r} is stored as version {version}, the class is version "
                f"{spec.version}, and the state declares no upgrade"
            )
        body = spec.upgrade(version, body)
    factory = spec.factory
    fields = _fields(factory)
    if fields is None or not isinstance(body, dict):
        return body
    known = {fields[name]: v for name, v in body.items() if name in fields}
    dropped = sorted(set(body) - set(fields))
    if dropped and dropped_fields is not None:
        dropped_fields(str(spec.name), dropped)
    return factory(**known)
