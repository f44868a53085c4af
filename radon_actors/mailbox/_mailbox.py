"""The per-atom mailbox.

Three queues, one consumer:

* the *control lane*: unbounded, always served first (stop, restart, migrate,
  failure notices). Control messages overtake user messages so that a full or
  slow mailbox can always be stopped.
* the *user lane*: bounded by ``capacity``. ``put_nowait`` fails loudly with
  :class:`~radon_actors.MailboxFull` when it is full; ``put`` waits for room.
  Nothing in a mailbox grows without bound.
* the *stash*: messages the atom set aside; ``unstash_all`` puts them back at the
  head of the user lane in their original order. The stash is bounded by
  ``capacity`` as well, so at worst a mailbox holds twice its capacity.

The consumer (the atom's task) drains the lanes with plain ``popleft`` calls and
parks only when both are empty, so a burst of messages costs one wake-up, not
one per message. Producers never yield when there is room.

The control lane and the stash are empty for nearly every atom nearly all the
time, and an empty ``deque`` costs 760 bytes: until something goes in, each is
the empty tuple :data:`NONE` (falsy, iterable, with a length, and loud on any
write), and :meth:`Mailbox.put_control` and :meth:`Mailbox.stash` make the
real ``deque``. So read them freely, write them only through those methods;
and read them afresh (``mailbox.control``), since the object changes. The user
lane is :data:`NONE` too while its consumer has no task (:meth:`Mailbox.idle`):
an idle atom holds no queue at all. A consumer that pops from it directly takes
it with :meth:`Mailbox.user_lane` first.

The consumer is a task parked in :meth:`Mailbox.wait`, or, for an atom that has
no task while it is idle, an :class:`IdleConsumer`, whose ``wake_idle`` the
first message calls (once) to give the atom a task again. Either way producers
wake it the same way, and only when it sleeps, so the cost stays one wake-up
per burst.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

import attrs
import trio
from trio.lowlevel import Abort, ParkingLot, Task, current_task, reschedule, wait_task_rescheduled

from .._errors import MailboxFull, StashOverflow

__all__ = ["NONE", "IdleConsumer", "Mailbox", "MailboxStatistics"]

NONE: Any = ()
"""An empty lane that has never held anything (see the module docs)."""


class IdleConsumer(Protocol):
    """A consumer without a task while its mailbox is empty (:meth:`Mailbox.idle`)."""

    def wake_idle(self) -> None:
        """A message arrived: give the consumer a task (called once)."""


@attrs.frozen
class MailboxStatistics:
    """A snapshot of one mailbox."""

    queued: int
    """User messages waiting."""
    control: int
    """Control messages waiting."""
    stashed: int
    """Messages set aside with ``stash()``."""
    capacity: int
    """Bound of the user lane (and of the stash)."""
    senders_waiting: int
    """Senders blocked in ``put`` for room."""


class Mailbox:
    """A bounded mailbox with a priority lane and a stash; see the module docs."""

    __slots__ = ("_consumer", "_senders", "capacity", "closed", "control", "stashed", "user")

    def __init__(self, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"mailbox capacity must be a positive int, not {capacity!r}")
        self.capacity = capacity
        # Public to the runtime's hot loop, which pops them directly.
        self.user: deque[Any] = NONE
        self.control: deque[Any] = NONE
        self.stashed: deque[Any] = NONE
        self.closed = False
        # The parked consumer's task, or an idle one (see the module docs).
        self._consumer: Task | IdleConsumer | None = None
        # Made when a sender first waits for room (an empty ParkingLot costs
        # about 250 bytes, and most mailboxes never fill).
        self._senders: ParkingLot | None = None

    def __len__(self) -> int:
        return len(self.user)

    # producers ----------------------------------------------------------
    def put_nowait(self, msg: Any) -> bool:
        """Queue a user message; False if the mailbox is closed.

        Raises :class:`MailboxFull` when the user lane is at capacity.
        """
        if self.closed:
            return False
        user = self.user
        if len(user) >= self.capacity:
            raise MailboxFull(
                f"mailbox full ({self.capacity} messages); use `await ref.send(...)` to wait "
                "for room, or spawn the atom with a larger mailbox_size"
            )
        try:
            user.append(msg)
        except AttributeError:  # NONE: an idle atom's lane, made on its first message
            self.user = deque((msg,))
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            if consumer.__class__ is Task:
                reschedule(consumer)
            else:
                consumer.wake_idle()  # type: ignore[union-attr]  # the atom gets a task
        return True

    async def put(self, msg: Any) -> bool:
        """Queue a user message, waiting for room; False if the mailbox is (or gets) closed.

        Cancellation while waiting leaves the message unsent.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while len(self.user) >= self.capacity and not self.closed:
            await self._waiting_senders().park()
        return self.put_nowait(msg)

    async def wait_for_room(self) -> None:
        """Wait, as :meth:`put` does, until the user lane has room or the mailbox
        is closed, without a message in hand (a caller that then has nothing to
        put passes the wake-up on: :meth:`room_made`)."""
        if len(self.user) < self.capacity or self.closed:
            await trio.lowlevel.checkpoint()
            return
        await self._waiting_senders().park()

    def _waiting_senders(self) -> ParkingLot:
        senders = self._senders
        if senders is None:
            senders = self._senders = ParkingLot()
        return senders

    def put_control(self, msg: Any) -> bool:
        """Queue a control message ahead of all user messages; False if closed."""
        if self.closed:
            return False
        control = self.control
        if control is NONE:
            control = self.control = deque()
        control.append(msg)
        self._wake_consumer()
        return True

    def _wake_consumer(self) -> None:
        # ``put_nowait`` inlines this: it is the message path.
        consumer = self._consumer
        if consumer is not None:
            self._consumer = None
            if consumer.__class__ is Task:
                reschedule(consumer)
            else:
                consumer.wake_idle()  # type: ignore[union-attr]

    # consumer -----------------------------------------------------------
    def room_made(self) -> None:
        """Called by the consumer after it popped user messages: wake one waiting sender."""
        senders = self._senders
        if senders:  # None, or no one waiting
            senders.unpark()

    def user_lane(self) -> deque[Any]:
        """The user lane as a real ``deque`` (made if need be), for a consumer
        that pops from it directly (and keeps it: the lane object stays until
        :meth:`idle`) and for the writers below."""
        user = self.user
        if user is NONE:
            user = self.user = deque()
        return user

    async def wait(self) -> None:
        """Park the consumer until a message arrives (returns at once if one is queued)."""
        if self.control or self.user:
            return
        self._consumer = current_task()
        await wait_task_rescheduled(self._abort_wait)

    def _abort_wait(self, _raise_cancel: Any) -> Abort:
        self._consumer = None
        return Abort.SUCCEEDED

    @property
    def waiting(self) -> Task | None:
        """The consumer's task while it is parked in :meth:`wait`, else None."""
        consumer = self._consumer
        return consumer if consumer.__class__ is Task else None

    def wake(self) -> None:
        """Wake a consumer parked in :meth:`wait` with nothing new (it looks again)."""
        if self._consumer.__class__ is Task:
            self._wake_consumer()

    def idle(self, consumer: IdleConsumer) -> None:
        """The consumer stops without a task while the lanes are empty: the next
        message (user or control) calls its ``wake_idle`` once, which must give
        it one. An empty user lane goes back to :data:`NONE` meanwhile."""
        if self.user or self.control:
            raise RuntimeError("a mailbox with messages cannot go idle")
        self.user = NONE
        self._consumer = consumer

    # stash -------------------------------------------------------------
    def stash(self, msg: Any) -> None:
        """Set ``msg`` aside until :meth:`unstash_all`."""
        if len(self.stashed) >= self.capacity:
            raise StashOverflow(
                f"stash full ({self.capacity} messages); unstash before stashing more"
            )
        self.restash(msg)

    def unstash_all(self) -> int:
        """Move every stashed message to the head of the user lane, in order."""
        stashed = self.stashed
        n = len(stashed)
        if n:
            self.user_lane().extendleft(reversed(stashed))
            self.stashed = NONE
            self._wake_consumer()
        return n

    def restash(self, msg: Any) -> None:
        """Put back a message stashed before (a move hands the stash over):
        past the stash's bound if need be, as it was accepted once."""
        stashed = self.stashed
        if stashed is NONE:
            stashed = self.stashed = deque()
        stashed.append(msg)

    # shutdown -----------------------------------------------------------
    def close(self) -> list[Any]:
        """Refuse further messages and return the undelivered ones (stash first,
        then the user lane, in order); blocked senders wake and see the closure."""
        self.closed = True
        user = self.user
        left = [*self.stashed, *user]
        self.stashed = NONE
        if user is not NONE:
            user.clear()  # the same object: a consumer may hold it (user_lane)
        self.control = NONE
        # An idle consumer stays: a closed mailbox wakes nobody, and one that
        # reopens with messages (``reopen``) must still reach it.
        if self._senders is not None:
            self._senders.unpark_all()
        return left

    def hand_over(self, msgs: Iterable[Any]) -> None:
        """Queue ``msgs`` behind the user lane whatever its bound: messages that
        were accepted once elsewhere for this atom (a paused queue handed over
        after a move). Their number is bounded where they were accepted; senders
        wait for room until the atom has worked the lane down."""
        self.user_lane().extend(msgs)
        if self.user:
            self._wake_consumer()

    def reopen(
        self,
        stashed: Iterable[Any] = (),
        user: Iterable[Any] = (),
        control: Iterable[Any] = (),
    ) -> None:
        """Accept messages again after :meth:`close` (the atom came back into this
        process, or a move was called off), with what ``close`` returned put back:
        ``stashed`` in the stash, ``user`` at the head of the user lane (over its
        bound if need be: those messages were accepted once), ``control`` behind
        the control lane."""
        self.closed = False
        for msg in stashed:
            self.restash(msg)
        self.user_lane().extendleft(reversed(list(user)))
        for msg in control:
            self.put_control(msg)
        if self.user or self.control:
            self._wake_consumer()

    def statistics(self) -> MailboxStatistics:
        """Current queue lengths."""
        return MailboxStatistics(
            queued=len(self.user),
            control=len(self.control),
            stashed=len(self.stashed),
            capacity=self.capacity,
            senders_waiting=0 if self._senders is None else len(self._senders),
        )
