"""Timers: messages an atom schedules to itself.

A timer is a small task in the system's nursery that sleeps and then queues the
message. The queued message carries the timer handle in its reply slot, so a
timer cancelled after it queued a message but before that message ran still
suppresses it: nothing arrives after ``cancel()`` returns. Timers die with their
atom (stop and restart cancel them).

A live migration moves them (see radon_actors.placement): :func:`snapshot`
records each pending timer's remaining due time, :func:`restoring` and
:func:`rearm` build it again on the target behind the same handle (a handle
pickles to its key), and the source cancels its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import outcome
import trio

from .._errors import MailboxFull

if TYPE_CHECKING:
    from ._cell import AtomCell

__all__ = ["TimerHandle", "TimerState", "rearm", "restoring", "snapshot", "start"]

# (key, handler name, args, kwargs, delay or interval, periodic, seconds until the
# next firing, or None for a one-shot that fired and whose message is queued)
TimerState = tuple[int, str, tuple[Any, ...], dict[str, Any], float, bool, float | None]


class _Live:
    """Marker in a live timer's ``task`` slot (a real ask holds a Task there)."""


_LIVE: Any = _Live()


class TimerHandle:
    """A one-shot or periodic timer of one atom (see ``Atom.send_after``)."""

    __slots__ = (
        "_cell",
        "_deadline",
        "_delay",
        "_fired",
        "_key",
        "_msg",
        "_periodic",
        "_scope",
        "task",
    )

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
        # When it fires next (trio's clock of this process).
        self._deadline = trio.current_time() + delay
        self._key: int | None = None  # made when it first travels (see ``key``)
        # Read by the atom's loop like an ask's reply slot: None means "drop".
        self.task: Any = _LIVE

    def key(self) -> int:
        """This timer's identity across hosts (random, made on first use)."""
        if self._key is None:
            self._key = random.getrandbits(63)
        return self._key

    def __reduce__(self) -> tuple[Any, ...]:
        # In an atom's migrating state: the handle on the target (see ``restoring``).
        return (_restore, (self.key(),))

    @property
    def active(self) -> bool:
        """True until a one-shot timer fires, or until the timer is cancelled."""
        return self.task is not None and not self._fired

    def cancel(self) -> None:
        """Cancel the timer; a message it queued that has not run yet is dropped."""
        self.task = None
        self._scope.cancel()
        if self._cell is not None:
            self._cell.drop_timer(self)

    def deliver(self, result: outcome.Outcome[Any]) -> None:
        """A timer's message is its own reply slot (:class:`ReplySlot`): nobody reads it."""

    def __repr__(self) -> str:
        kind = "every" if self._periodic else "after"
        state = "active" if self.active else "done"
        name = "?" if self._msg is None else self._msg[0].name
        return f"<Timer {name} {kind} {self._delay}s {state}>"

    async def run(self) -> None:
        with self._scope:
            spec, args, kwargs = self._msg
            msg = (spec, args, kwargs, self)
            mailbox = self._cell.opened()
            if not self._periodic:
                await trio.sleep_until(self._deadline)
                self._fired = True
                await mailbox.put(msg)
                # Pending until queued: a migration meanwhile re-arms it on the target.
                self._cell.drop_timer(self)
                return
            while True:
                await trio.sleep_until(self._deadline)
                self._deadline += self._delay
                try:
                    queued = mailbox.put_nowait(msg)
                except MailboxFull:
                    self._cell.log.warning("timer.tick_skipped", handler=spec.name)
                    continue
                if not queued:
                    return


# ----------------------------------------------------------------------
# Moving timers with their atom (live migration)
# ----------------------------------------------------------------------
def snapshot(cell: AtomCell, queued: Iterable[TimerHandle] = ()) -> list[TimerState]:
    """The atom's pending timers, plus the one-shot timers whose message is among
    ``queued`` (the messages that move with it), with the time left until each fires.

    Taken at a turn boundary together with the state and the queued messages.
    """
    now = trio.current_time()
    states: list[TimerState] = []
    seen: set[TimerHandle] = set()
    for timer in [*cell.timers, *queued]:
        if timer in seen or timer.task is None or timer._msg is None:
            continue
        seen.add(timer)
        spec, args, kwargs = timer._msg
        # A timer that fired and waits for room in the mailbox is still pending
        # (it is in ``cell.timers``): it fires again on the target, at once.
        pending = timer in cell.timers
        # Not clamped at 0: overdue timers keep their order on the target.
        left = timer._deadline - now if pending else None
        states.append((timer.key(), spec.name, args, kwargs, timer._delay, timer._periodic, left))
    return states


_restoring: dict[int, TimerHandle] | None = None


def _shell(key: int) -> TimerHandle:
    timer = TimerHandle.__new__(TimerHandle)
    timer._cell = None  # type: ignore[assignment]
    timer._msg = None  # type: ignore[assignment]
    timer._delay = 0.0
    timer._periodic = False
    timer._fired = True
    timer._scope = trio.CancelScope()
    timer._deadline = 0.0
    timer._key = key
    timer.task = None  # inert until ``rearm`` revives it
    return timer


def _restore(key: int) -> TimerHandle:
    """Unpickle a handle: the target's timer of that key while an atom is being
    restored (see ``restoring``), else an inert, inactive handle."""
    table = _restoring
    if table is None:
        return _shell(key)
    timer = table.get(key)
    if timer is None:
        timer = table[key] = _shell(key)
    return timer


@contextmanager
def restoring() -> Iterator[dict[int, TimerHandle]]:
    """Unpickle an atom's state inside this block: its timer handles come out as
    the (still inert) handles that :func:`rearm` then revives, by key."""
    global _restoring
    outer = _restoring
    table: dict[int, TimerHandle] = {}
    _restoring = table
    try:
        yield table
    finally:
        _restoring = outer


def rearm(
    cell: AtomCell, table: dict[int, TimerHandle], states: Iterable[TimerState]
) -> list[TimerHandle]:
    """Revive the timers of ``states`` on ``cell`` (the same handles the state
    holds, from ``table``), each due after the time it had left at the source.

    Returns the ones to start (``start``) once the atom runs; one-shot timers whose
    message travelled queued come back fired, as the reply slot of that message.
    """
    now = trio.current_time()
    armed: list[TimerHandle] = []
    for key, name, args, kwargs, delay, periodic, left in states:
        timer = table.get(key)
        if timer is None:
            timer = table[key] = _shell(key)
        timer._cell = cell
        timer._msg = (cell.table[name], args, kwargs)
        timer._delay = delay
        timer._periodic = periodic
        timer.task = _LIVE
        if left is None:
            timer._fired = True
            continue
        timer._fired = False
        timer._deadline = now + left
        cell.add_timer(timer)
        armed.append(timer)
    for timer in table.values():
        if timer._cell is None:
            timer._cell = cell  # a handle of a timer that is over: inert
    return armed


def start(cell: AtomCell, timers: Iterable[TimerHandle]) -> None:
    """Start revived timers (after :func:`rearm`, once the atom runs)."""
    for timer in timers:
        if timer.task is not None:
            cell.system.start_soon(timer.run)
