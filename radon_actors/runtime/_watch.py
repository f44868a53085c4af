"""Death watch: an atom asks to be told when another atom crashes or stops.

``self.watch(ref, Watcher.on_down)`` registers the watcher's handler; it then
receives one :class:`Down` message per crash of the watched atom (that its
supervisor answered with a restart or a resume; ``stopped=False``) and a last
one when the watched atom stops, for any reason (``stopped=True``). Watching an
atom that is not running notifies at once. Watching is idempotent (watching
again only changes the handler) and ends with ``unwatch`` or the watched atom's
stop. Notices to a watcher that has stopped are dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .._errors import AtomStopped, MailboxFull
from .._ref import Ref
from . import _directory
from ._seams import CellState

if TYPE_CHECKING:
    from .._atom import HandlerSpec
    from ._cell import AtomCell

__all__ = ["Down", "Watch", "deliver_down", "unwatch", "watch", "watches_of"]

_STOPPING = CellState.STOPPING


@attrs.frozen
class Down:
    """The message a watcher's handler receives (see ``Atom.watch``)."""

    ref: Ref[Any]
    """The watched atom."""
    reason: BaseException | None
    """The exception it crashed or stopped with; None for a normal stop."""
    stopped: bool
    """True: it stopped for good (the last notice). False: it crashed and its
    supervisor kept it (restarted or resumed); the Ref still works."""


class Watch:
    """One watcher's registration on one target: its callbacks sit in the target's
    ``on_stopped`` and ``on_crashed`` lists."""

    __slots__ = ("spec", "target", "watcher")

    def __init__(self, watcher: AtomCell, spec: HandlerSpec, target: AtomCell) -> None:
        self.watcher = watcher
        self.spec = spec
        self.target = target

    def crashed(self, cell: AtomCell, exc: BaseException) -> None:
        deliver_down(self.watcher, self.spec, Down(cell.ref, exc, stopped=False))

    def stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        deliver_down(self.watcher, self.spec, Down(cell.ref, reason, stopped=True))


def deliver_down(watcher: AtomCell, spec: HandlerSpec, down: Down) -> None:
    """Queue ``down`` for ``watcher``'s handler ``spec`` (waits for room if need be)."""
    if watcher.state >= _STOPPING:
        return
    msg: tuple[Any, ...] = (spec, (down,), {}, None)
    mailbox = watcher.opened()
    try:
        mailbox.put_nowait(msg)
    except MailboxFull:
        # A death notice is not dropped: wait for room in the background.
        watcher.system.start_soon(mailbox.put, msg)


def _find(target: AtomCell, watcher: AtomCell) -> Watch | None:
    for entry in watches_of(target):
        if entry.watcher is watcher:
            return entry
    return None


def watch(watcher: AtomCell, ref: Ref[Any], h: Any) -> None:
    """Register ``h`` (a handler of ``watcher`` taking one :class:`Down`) for ``ref``."""
    if not isinstance(ref, Ref):
        raise TypeError(f"watch() takes a Ref, not {ref!r}")
    spec = watcher.spec_for(h, (None,), {})
    target = _directory.lookup(ref.id)
    placement = watcher.system.active_placement
    if target is None and placement is not None and placement.watch(watcher, ref, spec):
        return  # an atom whose origin is another host (radon_actors.placement)
    if target is None or target.stopped.is_set():
        reason = AtomStopped(f"atom {ref.name or ref.id} was not running when watched")
        deliver_down(watcher, spec, Down(ref, reason, stopped=True))
        return
    existing = _find(target, watcher)
    if existing is not None:
        existing.spec = spec
        return
    entry = Watch(watcher, spec, target)
    target.add_stop_callback(entry.stopped)
    if target.on_crashed is None:
        target.on_crashed = []
    target.on_crashed.append(entry.crashed)


def unwatch(watcher: AtomCell, ref: Ref[Any]) -> None:
    """Stop watching ``ref`` (nothing happens if it was not watched)."""
    target = _directory.lookup(ref.id)
    if target is None:
        placement = watcher.system.active_placement
        if placement is not None:
            placement.unwatch(watcher, ref)
        return
    entry = _find(target, watcher)
    if entry is None:
        return
    target.remove_stop_callback(entry.stopped)
    if target.on_crashed is not None:
        target.on_crashed.remove(entry.crashed)


def watches_of(target: AtomCell) -> list[Watch]:
    """The registrations of the atoms watching ``target`` in this process."""
    entries = []
    for callback in target.on_stopped or ():
        owner = getattr(callback, "__self__", None)
        if isinstance(owner, Watch):
            entries.append(owner)
    return entries
