"""The Python codec of the sandbox boundary (docs/standard.md, *Codec*).

A payload is latin-1 text of either a pickle (protocol 5, first byte ``0x80``)
or a marshal stream (which never starts with ``0x80``), so a reader tells them
apart by one byte and never needs to be told which one was written.

Host and guest speak the same format, so both use this module: it is bundled
into the guest (``_build._GUEST_FILES``) and imports only the standard library
and the guest-safe ``_errors``. The two sides read alike (:func:`dec`) but choose
differently what to marshal: the host marshals all plain data, small containers
included (:func:`enc_value`, :func:`enc_message`), while the guest marshals
scalars only (:func:`enc_scalar_value`, :func:`enc_scalar_message`), because
each check runs in the guest's interpreter at thousands of WebAssembly
instructions a call.

Marshal versions are pinned, never "the current one" (the guest's CPython is
newer than the host's): 2 for scalars (no reference table to build, the
cheapest to write) and 4 for containers (back-references keep an object that
appears twice shared, as a pickle does). Both are read by every CPython since 3.4.
"""

from __future__ import annotations

import marshal
import pickle
from typing import Any

from ._errors import MessageNotPortable

__all__ = [
    "MARSHAL_SCALARS",
    "PICKLE_FIRST",
    "SCALARS",
    "dec",
    "enc",
    "enc_message",
    "enc_scalar_message",
    "enc_scalar_value",
    "enc_value",
    "is_scalar",
    "plain",
]

PROTOCOL = 5
MARSHAL_CONTAINERS = 4
MARSHAL_SCALARS = 2
# The first byte of every protocol-5 pickle (its PROTO opcode); no marshal stream
# starts with it.
PICKLE_FIRST = 0x80
# Values marshal encodes exactly (exact types: marshal writes any other buffer
# object as bytes, and refuses other classes).
SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_CONTAINERS = frozenset({tuple, list, dict, set, frozenset})
# The limits of what the host checks before marshalling a container.
_MAX_ITEMS = 32
_MAX_DEPTH = 4

is_scalar = SCALARS.__contains__
_mdumps = marshal.dumps
_mloads = marshal.loads
_pdumps = pickle.dumps
_ploads = pickle.loads


def enc(obj: Any) -> str:
    """A pickle payload: classes, exceptions, snapshots, anything not plain."""
    return _pdumps(obj, PROTOCOL).decode("latin-1")


def plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is plain data that marshal encodes exactly: scalars, and
    small tuples, lists, dicts, sets and frozensets of plain data."""
    kind = type(value)
    if kind in SCALARS:
        return True
    if kind not in _CONTAINERS or depth > _MAX_DEPTH or len(value) > _MAX_ITEMS:
        return False
    if kind is dict:
        return all(plain(k, depth + 1) and plain(v, depth + 1) for k, v in value.items())
    return all(plain(item, depth + 1) for item in value)


def enc_value(obj: Any) -> str:
    """A value (a result, a reply) as the host writes it: marshal for plain data."""
    if type(obj) in SCALARS:
        return _mdumps(obj, MARSHAL_SCALARS).decode("latin-1")
    if plain(obj):
        return _mdumps(obj, MARSHAL_CONTAINERS).decode("latin-1")
    return _pdumps(obj, PROTOCOL).decode("latin-1")


def enc_message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A message ``(args, kwargs)`` as the host writes it: marshal for plain data."""
    if not kwargs and all(map(is_scalar, map(type, args))):
        return _mdumps((args, kwargs), MARSHAL_SCALARS).decode("latin-1")
    message = (args, kwargs)
    if plain(args) and plain(kwargs):
        return _mdumps(message, MARSHAL_CONTAINERS).decode("latin-1")
    return _pdumps(message, PROTOCOL).decode("latin-1")


def enc_scalar_value(obj: Any) -> str:
    """A value as the guest writes it: marshal for a scalar (one type test), else
    a pickle."""
    if type(obj) in SCALARS:
        return _mdumps(obj, MARSHAL_SCALARS).decode("latin-1")
    return _pdumps(obj, PROTOCOL).decode("latin-1")


def enc_scalar_message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A message as the guest writes it: marshal when every argument is a scalar
    (no Python-level calls in the check), else a pickle; raises
    :class:`MessageNotPortable` for one that does not pickle."""
    if not kwargs and all(map(is_scalar, map(type, args))):
        return _mdumps((args, kwargs), MARSHAL_SCALARS).decode("latin-1")
    try:
        return _pdumps((args, kwargs), PROTOCOL).decode("latin-1")
    except Exception as exc:
        raise MessageNotPortable(f"message cannot leave the sandbox: {exc!r}") from None


def dec(text: str) -> Any:
    """Decode a payload of either kind, told apart by its first byte."""
    data = text.encode("latin-1")
    if data[:1] == b"\x80":
        return _ploads(data)
    return _mloads(data)
