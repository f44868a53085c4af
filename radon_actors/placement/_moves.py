"""Migrations waiting in an atom's control lane, and how they are called off.

A migration stops the atom at a turn boundary by queuing a control message (a
:class:`Move`). Whatever takes the atom away first (another migration, or its
supervisor retiring the incarnation, ``_supervision``) fails the moves still
queued behind it: they would find a forwarder. This module is what both sides
share, so neither imports the other.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

__all__ = ["Move", "fail_moves"]


class Move(abc.ABC):
    """A migration's control message (``_migration._Emigration``)."""

    @abc.abstractmethod
    def fail(self, exc: BaseException) -> None:
        """Call the migration off with ``exc`` (its caller gets it)."""


def fail_moves(control: Iterable[tuple[Any, ...]], error: BaseException) -> None:
    """Fail every migration in ``control`` (a cell's control lane, or what was
    taken out of it)."""
    for msg in control:
        if msg[0] == "migrate" and isinstance(msg[1], Move):
            msg[1].fail(error)
