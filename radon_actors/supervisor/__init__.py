"""Supervision trees: supervisors, child specs, restart strategies, death watch.

See docs/supervision.md for the semantics and how they compare with OTP's and
Akka's.
"""

from ..runtime import Down
from ._spec import (
    ChildSpec,
    Escalated,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    SupervisorError,
)
from ._supervisor import ChildInfo, Supervisor, start_root

__all__ = [
    "ChildInfo",
    "ChildSpec",
    "Down",
    "Escalated",
    "Restart",
    "RestartIntensityExceeded",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "start_root",
]
