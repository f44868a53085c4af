"""A durable state's document as the store keeps it: text in the value format.

The document's shape (``{"radon-state": 1, "version": ..., "fields": ...}``)
and its rebuilding are the API layer's (``radon_actors._state``), which the
WebAssembly guest shares; here it becomes text in *host form* (references by
atom id; docs/standard.md, *Values*) for the store, and back.
"""

from __future__ import annotations

from typing import Any

from .. import _state
from .._logs import get_logger
from .._state import StateSpec, document
from ..sandbox.values import host_form_value, read_host_form_value

__all__ = ["encode", "read_document", "write_document"]

_log = get_logger("radon_actors.durable")


def _dropped(name: str, fields: list[str]) -> None:
    _log.warning("durable.fields_dropped", state=name, fields=fields)


_state.dropped_fields = _dropped


def write_document(doc: Any) -> str:
    """A document (a value) as the store's text."""
    return host_form_value(doc)


def read_document(text: str) -> Any:
    """The store's text as a document (a value)."""
    return read_host_form_value(text)


def encode(value: Any, spec: StateSpec[Any]) -> str:
    """The stored text for ``value``, a state of ``spec``."""
    return host_form_value(document(value, spec))
