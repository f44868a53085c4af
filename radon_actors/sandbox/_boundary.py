"""The host's end of one guest instance's boundary: handles, reader, writer.

A guest names other atoms only by *handles*: small numbers this table grants
when a reference reaches the guest (its own reference is handle 0; a
constructor argument, a message, a reply or a child adds one). A number the
guest was never given refers to nothing, so an atom id a guest learns or
guesses is no capability (docs/sandbox.md, threat model).

Everything the guest returns is read with the :class:`~._value.Reader` here,
within the :class:`~._value.Limits` of the atom's ``SandboxConfig``; it builds
only plain data, the Refs this table granted, records and exceptions of
classes the host's own code registered (``@portable``), built-in exceptions,
and :class:`~radon_actors.ForeignError`. Nothing the guest names is imported.

Snapshots leave the instance in *host form*: the same format, with each
reference written as ``[null, atom id, name]`` instead of a handle, so that a
restored instance (here or on another host) gets handles of its own. Host form
is read only from the host's own hands (``spawn_restored``, placement), never
from a guest.
"""

from __future__ import annotations

from typing import Any

from .._ref import Ref
from ..runtime import resolve
from ._value import Limits, Reader, ValueRejected, Writer, known_class

__all__ = [
    "HostSide",
    "from_host_form",
    "host_form_message",
    "read_host_form_message",
    "to_host_form",
]


class HostSide:
    """One guest instance's granted handles, and the reader and writer that map
    Refs to and from them."""

    __slots__ = ("handles", "reader", "refs", "writer")

    def __init__(self, own: Ref[Any], limits: Limits) -> None:
        self.refs: list[Ref[Any]] = [own]
        self.handles: dict[str, int] = {own.id: 0}
        self.writer = Writer(self._grant)
        self.reader = Reader(limits, self._granted, known_class)

    def _grant(self, ref: Ref[Any]) -> list[Any]:
        handle = self.handles.get(ref.id)
        if handle is None:
            handle = len(self.refs)
            self.refs.append(ref)
            self.handles[ref.id] = handle
        return [handle, ref.id, ref.name]

    def _granted(self, body: Any) -> Ref[Any]:
        handle = body[0] if type(body) is list and body else body
        if type(handle) is not int or not 0 <= handle < len(self.refs):
            raise ValueRejected(
                f"the guest named an atom by handle {str(handle)[:20]}, which it was never "
                "given: a sandboxed atom reaches only the Refs it receives"
            )
        return self.refs[handle]

    def target(self, handle: int) -> Ref[Any]:
        """The Ref behind a handle the guest sends to (ask, tell)."""
        return self._granted(handle)


# ----------------------------------------------------------------------
# Host form (snapshots outside any instance)
# ----------------------------------------------------------------------
def _host_ref(ref: Ref[Any]) -> list[Any]:
    return [None, ref.id, ref.name]


def _host_form_ref(body: Any) -> Ref[Any]:
    if (
        type(body) is not list
        or len(body) != 3
        or type(body[1]) is not str
        or not (body[2] is None or type(body[2]) is str)
    ):
        raise ValueRejected("a reference in host form is [null, atom id, name]")
    atom_id, name = body[1], body[2]
    return Ref(atom_id, name, resolve(atom_id, name))


_host_writer = Writer(_host_ref)
# What the host itself wrote (a snapshot on its way between instances): its size
# is the host's own, so the limits only guard against a corrupted file.
_host_reader = Reader(
    Limits(max_length=1 << 31, max_depth=1000, max_items=1 << 31), _host_form_ref, known_class
)


def to_host_form(side: HostSide, guest_text: str) -> str:
    """A snapshot the guest wrote (its handles) in host form."""
    return _host_writer.value(side.reader.value(guest_text))


def from_host_form(side: HostSide, text: str) -> str:
    """A snapshot in host form, written for the guest behind ``side``."""
    return side.writer.value(_host_reader.value(text))


def host_form_value(value: Any) -> str:
    """``value`` in host form: the value format, references by atom id (durable
    state: ``radon_actors.durable``)."""
    return _host_writer.value(value)


def read_host_form_value(text: str) -> Any:
    """The value of :func:`host_form_value` output (only the host's own: see the
    module docs)."""
    return _host_reader.value(text)


def host_form_message(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A sandboxed atom's message (its constructor's, say) for another host:
    the value format in host form, which that host reads without importing any
    module (records of unregistered classes stay records until a guest, or a
    process that registered the class, rebuilds them)."""
    return _host_writer.message(args, kwargs)


def read_host_form_message(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The ``(args, kwargs)`` of :func:`host_form_message` output."""
    return _host_reader.message(text)
