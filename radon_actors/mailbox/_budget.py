"""A cooperative scheduling budget shared by the message path.

The fast paths (an ``ask`` answered inline by an idle atom, a ``send`` that finds
room, an atom draining a backlog) never need to block, so left alone they would
never give trio a schedule point and one busy loop could starve every other task.
Like tokio's coop budget, each of those operations spends one unit; when the
budget runs out the operation yields once (a cancel-shielded checkpoint) and the
budget refills. Fairness costs one scheduler pass per ``BUDGET`` operations
instead of one per operation.
"""

from __future__ import annotations

__all__ = ["BUDGET", "budget"]

BUDGET = 64


class _Budget:
    __slots__ = ("left",)

    def __init__(self) -> None:
        self.left = BUDGET


# One budget per process: trio runs one task at a time, so a process-wide counter
# bounds how long any task can go between schedule points.
budget = _Budget()
