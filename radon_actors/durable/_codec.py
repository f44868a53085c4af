"""The stored form of a durable state: language-neutral and versioned.

A state is stored as the standard's value format (JSON text, docs/standard.md,
*Values*; references by atom id) of::

    {"radon-state": 1, "version": <the class's version>, "fields": {...}}

for an attrs class or a dataclass (its fields by name), or ``"value": ...``
for any other value. So another host, another Python, a sandboxed incarnation,
or a later version of the class can read it: a stored state of an older
version goes through the spec's ``upgrade`` first; fields the class no longer
has are dropped (logged), fields it gained take their defaults. A value nested
inside a state is rebuilt as its class only if that class is ``@portable``
(else it reads back as a ``Record``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import attrs

from .._logs import get_logger
from ..sandbox.values import host_form_value, read_host_form_value

if TYPE_CHECKING:
    from ._state import StateSpec

__all__ = ["FORMAT", "decode", "encode"]

FORMAT = 1
_log = get_logger("radon_actors.durable")


def _fields(cls: Any) -> dict[str, str] | None:
    """Attribute name -> constructor keyword, for an attrs class or a dataclass."""
    if not isinstance(cls, type):
        return None
    if attrs.has(cls):
        return {a.name: a.alias or a.name for a in attrs.fields(cls) if a.init}
    if dataclasses.is_dataclass(cls):
        return {f.name: f.name for f in dataclasses.fields(cls) if f.init}
    return None


def encode(value: Any, spec: StateSpec[Any]) -> str:
    """The document for ``value``, a state of ``spec``."""
    fields = _fields(type(value))
    doc: dict[str, Any] = {"radon-state": FORMAT, "version": spec.version}
    if fields is not None:
        doc["fields"] = {name: getattr(value, name) for name in fields}
    else:
        doc["value"] = value
    return host_form_value(doc)


def decode(document: str, spec: StateSpec[Any]) -> Any:
    """The state a document holds, rebuilt for ``spec`` (upgraded if older)."""
    doc = read_host_form_value(document)
    if not isinstance(doc, dict) or doc.get("radon-state") != FORMAT:
        raise ValueError(f"not a radon-actors state document (format {FORMAT}): {document[:80]!r}")
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"a state document with no valid version: {document[:80]!r}")
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
    if dropped:
        _log.warning("durable.fields_dropped", state=spec.name, fields=dropped)
    return factory(**known)
