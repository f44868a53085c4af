"""A sharded, replicated key-value store composed of atoms, served over RESP2.

See README.md in this folder for the design and its consistency guarantees.
"""

from ._resp import Error, ProtocolError, RespParser, Simple, encode
from ._ring import Ring
from ._server import serve
from ._store import Store, open_store

__all__ = [
    "Error",
    "ProtocolError",
    "RespParser",
    "Ring",
    "Simple",
    "Store",
    "encode",
    "open_store",
    "serve",
]
