"""Atom classes on the wire: by reference when importable, else by value.

A placed or migrated atom's class travels in its ``activate`` request. A class
the receiving host can import goes as a reference (its module and name); one
defined in ``__main__`` or a module the host does not have goes by value, with
cloudpickle, which only works between the same Python versions (each host says
its version in its hello). Both ends cache: a class is pickled once per process,
and the same bytes give the same class object, so a class shipped by value is
rebuilt once per host, not once per message.

The caches are process-wide on purpose: a class object, and the bytes that
stand for it, are the same for every node of the process.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
import weakref
from typing import TYPE_CHECKING

import cloudpickle  # type: ignore[import-untyped]

from .._errors import SpawnError
from ._wire import PICKLE_PROTOCOL

if TYPE_CHECKING:
    from ._transport import Peer

__all__ = ["PYTHON", "dump_class", "load_class"]

PYTHON = f"{sys.implementation.name}-{sys.version_info[0]}.{sys.version_info[1]}"
"""This process's Python, as hellos name it."""

# Class -> its bytes; weak, so it holds no class alive.
_class_blobs: weakref.WeakKeyDictionary[type, bytes] = weakref.WeakKeyDictionary()
# SHA-256 of the bytes -> the class. Bounded: the oldest entries go first. An
# evicted class that comes again is unpickled again, into the same class object
# while that class is alive (cloudpickle tracks the classes it rebuilt).
_classes: dict[bytes, type] = {}
MAX_CLASSES = 1024


def dump_class(cls: type, peer: Peer) -> bytes:
    """``cls`` for the wire to ``peer`` (cached; see the module docs).

    Code shipped by value only runs on the same Python version: refused otherwise.
    """
    module = sys.modules.get(cls.__module__)
    if (module is None or cls.__module__ == "__main__") and peer.python != PYTHON:
        raise SpawnError(
            f"{cls.__qualname__} is defined in {cls.__module__!r}, so it would travel by value "
            f"(cloudpickle), which needs the same Python on both sides: this host runs "
            f"{PYTHON}, host {peer.label} runs {peer.python}. Move the class to a module "
            "installed on that host"
        )
    blob = _class_blobs.get(cls)
    if blob is None:
        blob = _class_blobs[cls] = cloudpickle.dumps(cls, PICKLE_PROTOCOL)
    return blob


def load_class(blob: bytes) -> type:
    """The class of ``blob``; the same bytes give the same class object."""
    key = hashlib.sha256(blob).digest()
    cls = _classes.get(key)
    if cls is None:
        cls = pickle.loads(blob)
        if len(_classes) >= MAX_CLASSES:
            del _classes[next(iter(_classes))]
        _classes[key] = cls
    return cls
