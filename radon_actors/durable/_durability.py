"""The durability extension: where an atom's declared states are read and
written (its store, its type and its key), for native and sandboxed atoms."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .._logs import get_logger
from .._state import atom_type
from ._codec import read_document, write_document
from ._reminders import Reminders
from ._stores import SQLiteStore, StateStore
from ._virtual import Activations, directory_of, retire, serve

if TYPE_CHECKING:
    from .._ref import Ref
    from ..runtime import AtomCell, System

__all__ = ["DEFAULT_PATH", "Durability", "make_durability"]

_log = get_logger("radon_actors.durable")

DEFAULT_PATH = "radon-state.sqlite3"
"""The default store's file (relative to the working directory), unless the
``RADON_STATE`` environment variable names another."""


class Durability:
    """The runtime's ``Durability`` seam over one :class:`StateStore`, and the
    system's on-demand atoms."""

    def __init__(self, system: System, store: StateStore) -> None:
        self.store = store
        self.url = getattr(store, "url", None)
        self.activations = Activations(system)
        serve(self.activations)
        self.reminders = Reminders(system, self)
        if directory_of(system) == system.prefix:
            # Only the directory serves reminders: a worker host shares its
            # system's store, and serving them there too would deliver each twice.
            system.start_soon(self.reminders.run)

    def get(self, cls: type[Any], key: str) -> Ref[Any]:
        return self.activations.get(cls, key)

    async def remind(
        self,
        cell: AtomCell,
        name: str,
        h: Any,
        args: tuple[Any, ...],
        due: float,
        period: float | None,
        limit: int | None = None,
    ) -> bool:
        return await self.reminders.remind(cell, name, h, args, due, period, limit)

    async def forget_reminder(self, cell: AtomCell, name: str) -> bool:
        return await self.reminders.forget(cell, name)

    async def read_state(self, cell: AtomCell, name: str) -> tuple[Any, str] | None:
        stored = await self.store.read(atom_type(cell.cls), key_of(cell), name)
        if stored is None:
            return None
        text, etag = stored
        return (None if text is None else read_document(text)), etag

    async def write_state(self, cell: AtomCell, name: str, doc: Any, etag: str | None) -> str:
        text = write_document(doc)
        return await self.store.write(atom_type(cell.cls), key_of(cell), name, text, etag)

    async def clear_state(self, cell: AtomCell, name: str, etag: str | None) -> str:
        return await self.store.clear(atom_type(cell.cls), key_of(cell), name, etag)

    async def aclose(self) -> None:
        retire(self.activations)
        await self.reminders.stop()  # before the store closes under its deliveries
        await self.store.aclose()


def key_of(cell: AtomCell) -> str:
    """The key a durable atom's state is stored under: its on-demand key, else
    its name."""
    key = cell.on_demand_key
    if key is not None:
        return key
    if cell.name is None:
        raise TypeError(
            f"{cell.cls.__qualname__} declares durable state, so it needs a key: spawn it "
            "with a name (system.spawn(..., name='...'))"
        )
    return cell.name


def make_durability(store: StateStore | None) -> Any:
    """The ``Extensions.durability`` factory for ``open_system(state_store=...)``."""

    def factory(system: System) -> Durability:
        chosen = store
        if chosen is None:
            path = os.environ.get("RADON_STATE") or DEFAULT_PATH
            chosen = SQLiteStore(path)
            _log.info("durable.default_store", path=os.path.abspath(path))
        return Durability(system, chosen)

    return factory
