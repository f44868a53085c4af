"""Durable atoms: declared state kept in a store (docs/durability.md).

An extension above the runtime, wired in by ``open_system(state_store=...)``
through the runtime's ``Durability`` seam. ``state``, ``State`` and the stores
are re-exported by ``radon_actors``; the modules here are private.
"""

from .._state import State, StateSpec, state
from ._durability import DEFAULT_PATH, Durability, make_durability
from ._stores import RedisStore, SQLiteStore, StateStore, store_from_url
from ._virtual import (
    Activations,
    Forwarding,
    KeyOwners,
    VirtualEndpoint,
    serve,
    set_directory,
)

__all__ = [
    "DEFAULT_PATH",
    "Activations",
    "Durability",
    "Forwarding",
    "KeyOwners",
    "RedisStore",
    "SQLiteStore",
    "State",
    "StateSpec",
    "StateStore",
    "VirtualEndpoint",
    "make_durability",
    "serve",
    "set_directory",
    "state",
    "store_from_url",
]
