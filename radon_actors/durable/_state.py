"""Declaring durable state on an atom class, and the handle a handler uses.

``cart = state(CartState)`` in the class body declares a state: an instance
of ``CartState`` (an attrs class or a dataclass, or any value the standard's
value format holds) that is loaded from the system's store before
``on_start``, and written when the atom says so (``await self.cart.save()``).
In a handler, ``self.cart`` is a :class:`State`: ``value`` is the state,
``save()``/``clear()``/``reload()`` talk to the store, ``etag`` is the revision
this incarnation read.

The store's key is the atom's type (``durable_type`` on the class, else its
module and qualified name) and its key (the name it was spawned with), and the
state's name (the attribute's, unless given).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import attrs

from .._errors import StateConflict
from ._codec import decode, encode

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._durability import Durability

__all__ = ["State", "StateSpec", "atom_type", "state"]

T = TypeVar("T")


def atom_type(cls: type) -> str:
    """The type name a durable atom's state is stored under."""
    name = cls.__dict__.get("durable_type")
    return name if isinstance(name, str) else f"{cls.__module__}.{cls.__qualname__}"


@attrs.define
class _Record:
    """One state of one incarnation: its value, and what the store said of it
    (kept in the atom's ``__dict__``, so it moves with a migrating atom)."""

    value: Any
    etag: str | None
    exists: bool
    stale: bool = False


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

    def loaded(self, document: str | None, etag: str) -> _Record:
        if document is None:  # cleared: a tombstone
            return _Record(self.factory(), etag, False)
        return _Record(decode(document, self), etag, True)


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
        durability, atom_type, key = self._where()
        document = encode(record.value, self._spec)
        record.etag = await self._guard(
            durability.store.write(atom_type, key, self._name, document, record.etag)
        )
        record.exists = True

    async def clear(self) -> None:
        """Remove the stored state (the value goes back to the factory's)."""
        record = self._check()
        durability, atom_type, key = self._where()
        record.etag = await self._guard(
            durability.store.clear(atom_type, key, self._name, record.etag)
        )
        record.exists = False
        record.value = self._spec.factory()

    async def reload(self) -> None:
        """Read the stored state again (dropping unsaved changes)."""
        durability, atom_type, key = self._where()
        stored = await durability.store.read(atom_type, key, self._name)
        fresh = self._spec.fresh() if stored is None else self._spec.loaded(*stored)
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

    def _where(self) -> tuple[Durability, str, str]:
        from ._durability import durability_of

        return durability_of(self._atom)
