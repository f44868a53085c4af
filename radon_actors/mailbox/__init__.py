"""Mailboxes: bounded per-atom queues with a priority lane, a stash and dead letters.

This is the layer below the runtime: it knows messages only as opaque items and
tasks only as things to park and wake.
"""

from ._budget import BUDGET, budget
from ._deadletters import DeadLetter, DeadLetters
from ._mailbox import Mailbox, MailboxStatistics

__all__ = ["BUDGET", "DeadLetter", "DeadLetters", "Mailbox", "MailboxStatistics", "budget"]
