"""The standard's value format, in host form, for the layers that store values
outside any guest (durable state, ``radon_actors.durable``).

A public seam module of the sandbox package (no wasmtime behind it): JSON text
with ``$`` tags for what JSON lacks (docs/standard.md, *Values*), references
written by atom id. Classes are rebuilt only when registered with
``@radon_actors.portable``; others read back as :class:`~radon_actors.Record`.
"""

from __future__ import annotations

from ._boundary import host_form_value, read_host_form_value
from ._value import ValueRejected, portable

__all__ = ["ValueRejected", "host_form_value", "portable", "read_host_form_value"]
