"""The exceptions radon-actors raises.

Every error derives from :class:`RadonError`, so ``except RadonError`` catches
anything the framework itself reports. Each one also derives from the built-in
exception a Python programmer would reach for first (``LookupError``,
``TypeError``, ``TimeoutError``...), so existing ``except`` clauses keep working.

This module is imported inside the WebAssembly guest too: standard library only.
"""

from __future__ import annotations

__all__ = [
    "AskTimeout",
    "AtomStopped",
    "BadArguments",
    "DeadlockError",
    "HandlerNotFound",
    "MailboxFull",
    "NameTaken",
    "NoSuchAtom",
    "NotSpawned",
    "RadonError",
    "SpawnError",
    "StashOverflow",
    "StateConflict",
    "WouldBlock",
]


class RadonError(Exception):
    """Base class of every error raised by radon-actors itself."""


class AtomStopped(RadonError):
    """The atom a message was addressed to has stopped (or stopped before replying).

    Raised at once by ``ask`` on a stopped atom, and raised to every asker whose
    message was still queued when the atom stopped. Spawn a new atom, or watch the
    atom to learn when it stops.
    """


class HandlerNotFound(RadonError, LookupError):
    """The message names a method that is not a ``@handler`` of the atom's class."""


class BadArguments(RadonError, TypeError):
    """The message's arguments do not match the handler's signature."""


class AskTimeout(RadonError, TimeoutError):
    """``ask(..., timeout=...)`` got no reply in time; a late reply is dropped."""


class MailboxFull(RadonError):
    """A non-waiting send (``tell``) found the atom's mailbox at capacity.

    Use ``await ref.send(...)`` to wait for room instead, or give the atom a larger
    ``mailbox_size``.
    """


class StashOverflow(RadonError):
    """``stash()`` was called with the stash already holding ``mailbox_size`` messages."""


class NameTaken(RadonError, ValueError):
    """Another live atom in the system already has this name."""


class NoSuchAtom(RadonError, LookupError):
    """No live atom has this name."""


class SpawnError(RadonError):
    """An atom's constructor or ``on_start`` raised; the original error is the cause."""


class NotSpawned(RadonError, RuntimeError):
    """An ``Atom`` method that needs the runtime was used on an atom that was built
    directly (``Counter()``) instead of spawned (``system.spawn(Counter)``)."""


class DeadlockError(RadonError, RuntimeError):
    """An atom asked itself from inside one of its own handlers.

    The reply could only come from the turn that is waiting for it. Call the method
    directly (``self.method(...)``) or ``tell`` yourself instead.
    """


class StateConflict(RadonError):
    """A durable atom's save (or clear) was refused: the stored state changed
    since this incarnation read it (another incarnation of the same atom wrote
    it). This incarnation can never write again; let the failure reach its
    supervisor, whose restart loads the stored state afresh."""


class WouldBlock(RadonError):
    """``ref.ask_nowait(...)`` could not answer without waiting, and did nothing.

    The atom is busy or has messages queued, runs elsewhere (another host, a
    sandbox thread, not activated yet), is starting, or the handler may suspend
    (an ``async def`` that awaits). ``await ref.ask(...)`` instead. (The name and
    the contract are trio's: compare ``MemoryReceiveChannel.receive_nowait``.)
    """
