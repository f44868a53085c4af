"""Dead letters: messages that could not be delivered.

A tell to a stopped atom, or a message still queued when its atom stopped, ends
up here instead of vanishing: it is counted, kept in a bounded ring of recent
letters for inspection, and logged (the first few per system, then every
``log_every``-th, so a flood cannot flood the log too).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from .._logs import get_logger

__all__ = ["DeadLetter", "DeadLetters"]

_log = get_logger("radon_actors.dead_letters")


@attrs.frozen
class DeadLetter:
    """A message that was not delivered."""

    atom_id: str
    """Id of the atom it was addressed to."""
    atom_name: str | None
    """Name of that atom, if it had one."""
    handler: str
    """The handler the message named."""
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    reason: str
    """Why it was not delivered (for example ``"atom stopped"``)."""


class DeadLetters:
    """The dead-letter office of one atom system.

    ``len(dead_letters)`` is the number of dead letters so far; :meth:`recent`
    returns the last ``keep`` of them.
    """

    def __init__(self, keep: int = 1000, log_first: int = 10, log_every: int = 1000) -> None:
        self._recent: deque[DeadLetter] = deque(maxlen=keep)
        self._count = 0
        self._log_first = log_first
        self._log_every = log_every

    def record(self, letter: DeadLetter) -> None:
        """Count, keep and (rate-limited) log one dead letter."""
        self._count += 1
        self._recent.append(letter)
        n = self._count
        if n <= self._log_first or n % self._log_every == 0:
            _log.warning(
                "dead_letter",
                atom_id=letter.atom_id,
                atom_name=letter.atom_name,
                handler=letter.handler,
                reason=letter.reason,
                total=n,
            )

    def recent(self) -> list[DeadLetter]:
        """The most recent dead letters, oldest first."""
        return list(self._recent)

    def __len__(self) -> int:
        return self._count
