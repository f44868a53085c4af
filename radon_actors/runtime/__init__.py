"""The in-process runtime: atom cells, the system nursery, timers, death watch and
the directory.

Layering: the public API (``Atom``, ``Ref``) calls into this package, which
drives the ``mailbox`` layer below it. The layers above (supervisor, sandbox,
placement) import only the names exported here: the seams (``_seams``) and the
public operations of cells and systems. See docs/architecture.md.
"""

from ._cell import STASHED, AtomCell, Message, Reply, Taken, default_decider
from ._directory import (
    DeadEndpoint,
    RemoteResolver,
    lookup,
    register,
    resolve,
    set_remote_resolver,
    set_virtual_resolver,
    unregister,
)
from ._seams import (
    Away,
    CellState,
    DecidesOwnFailures,
    Directive,
    Durability,
    Extensions,
    InstanceRuntime,
    Isolation,
    ParkedHook,
    Placement,
    ReplySlot,
    RootSupervisor,
    SpawnRequest,
    SupervisorHook,
)
from ._system import (
    DEFAULT_MAILBOX_SIZE,
    DEFAULT_MIGRATE_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    System,
    run_system,
)
from ._timers import TimerHandle, TimerState
from ._timers import rearm as rearm_timers
from ._timers import restoring as restoring_timers
from ._timers import snapshot as snapshot_timers
from ._timers import start as start_timers
from ._watch import Down, Watch, deliver_down, unwatch, watch, watches_of

__all__ = [
    "DEFAULT_MAILBOX_SIZE",
    "DEFAULT_MIGRATE_TIMEOUT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "STASHED",
    "AtomCell",
    "Away",
    "CellState",
    "DeadEndpoint",
    "DecidesOwnFailures",
    "Directive",
    "Down",
    "Durability",
    "Extensions",
    "InstanceRuntime",
    "Isolation",
    "Message",
    "ParkedHook",
    "Placement",
    "RemoteResolver",
    "Reply",
    "ReplySlot",
    "RootSupervisor",
    "SpawnRequest",
    "SupervisorHook",
    "System",
    "Taken",
    "TimerHandle",
    "TimerState",
    "Watch",
    "default_decider",
    "deliver_down",
    "lookup",
    "rearm_timers",
    "register",
    "resolve",
    "restoring_timers",
    "run_system",
    "set_remote_resolver",
    "set_virtual_resolver",
    "snapshot_timers",
    "start_timers",
    "unregister",
    "unwatch",
    "watch",
    "watches_of",
]
