"""A sharded, replicated key-value store composed of atoms, served over RESP2.

See README.md in this folder for the design and its consistency guarantees.

Names are imported lazily: the shard atoms' modules are pure Python (they can be
packaged into a WebAssembly sandbox), and importing this package must not drag
the trio-based frontend into such a build.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._resp import Error, ProtocolError, RespParser, Simple, encode
    from ._ring import Ring
    from ._server import serve
    from ._store import Store, deployment, open_store

__all__ = [
    "Error",
    "ProtocolError",
    "RespParser",
    "Ring",
    "Simple",
    "Store",
    "deployment",
    "encode",
    "open_store",
    "serve",
]

_WHERE = {
    "Error": "_resp",
    "ProtocolError": "_resp",
    "RespParser": "_resp",
    "Simple": "_resp",
    "encode": "_resp",
    "Ring": "_ring",
    "serve": "_server",
    "Store": "_store",
    "open_store": "_store",
    "deployment": "_store",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
