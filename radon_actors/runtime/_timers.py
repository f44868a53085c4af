"""Timers: messages an atom schedules to itself.

A timer is a small task in the system's nursery that sleeps and then queues the
message. The queued message carries the timer handle in its reply slot, so a
timer cancelled after it queued a message but before that message ran still
suppresses it: nothing arrives after ``cancel()`` returns. Timers die with their
atom (stop and restart cancel them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from .._errors import MailboxFull

if TYPE_CHECKING:
    from ._cell import AtomCell

__all__ = ["TimerHandle"]


class _Live:
    """Marker in a live timer's ``task`` slot (a real ask holds a Task there)."""


_LIVE: Any = _Live()


class TimerHandle:
    """A one-shot or periodic timer of one atom (see ``Atom.send_after``)."""

    __slots__ = ("_cell", "_delay", "_fired", "_msg", "_periodic", "_scope", "task")

    def __init__(
        self,
        cell: AtomCell,
        msg: tuple[Any, tuple[Any, ...], dict[str, Any]],
        delay: float,
        periodic: bool,
    ) -> None:
        self._cell = cell
        self._msg = msg
        self._delay = delay
        self._periodic = periodic
        self._fired = False
        self._scope = trio.CancelScope()
        # Read by the atom's loop like an ask's reply slot: None means "drop".
        self.task: Any = _LIVE

    @property
    def active(self) -> bool:
        """True until a one-shot timer fires, or until the timer is cancelled."""
        return self.task is not None and not self._fired

    def cancel(self) -> None:
        """Cancel the timer; a message it queued that has not run yet is dropped."""
        self.task = None
        self._scope.cancel()
        self._cell.timers.discard(self)

    def __repr__(self) -> str:
        kind = "every" if self._periodic else "after"
        state = "active" if self.active else "done"
        return f"<Timer {self._msg[0].name} {kind} {self._delay}s {state}>"

    async def run(self) -> None:
        with self._scope:
            spec, args, kwargs = self._msg
            msg = (spec, args, kwargs, self)
            mailbox = self._cell.mailbox
            if not self._periodic:
                await trio.sleep(self._delay)
                self._fired = True
                self._cell.timers.discard(self)
                await mailbox.put(msg)
                return
            deadline = trio.current_time()
            while True:
                deadline += self._delay
                await trio.sleep_until(deadline)
                try:
                    queued = mailbox.put_nowait(msg)
                except MailboxFull:
                    self._cell.log.warning("timer.tick_skipped", handler=spec.name)
                    continue
                if not queued:
                    return
