"""radon-actors: atoms (isolated, stateful actors) on trio.

The public API is re-exported here; every other module is private.

Host-only names (the runtime, which needs trio and structlog) are imported
lazily, so that ``from radon_actors import Atom, handler`` also works inside the
WebAssembly guest, where trio does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._atom import Atom, Rejection, Timer, handler
from ._errors import (
    AskTimeout,
    AtomStopped,
    BadArguments,
    DeadlockError,
    HandlerNotFound,
    MailboxFull,
    NameTaken,
    NoSuchAtom,
    NotSpawned,
    RadonError,
    SpawnError,
    StashOverflow,
    StateConflict,
    WouldBlock,
)
from ._ref import Ref
from ._state import State, state
from .sandbox._errors import (
    ForeignError,
    MessageNotPortable,
    SandboxBuildError,
    SandboxCrashed,
    SandboxDenied,
    SandboxError,
)
from .sandbox._value import Record, portable

if TYPE_CHECKING:
    from ._open import open_system
    from .cluster import Cluster
    from .durable import RedisStore, SQLiteStore, StateStore
    from .mailbox import DeadLetter, DeadLetters
    from .placement import (
        AuthenticationFailed,
        HostDown,
        LeastLoaded,
        MessageTooLarge,
        MigrationError,
        NoSuchHost,
        ProtocolError,
        RoundRobin,
    )
    from .runtime import Directive, Down, System
    from .sandbox._config import SandboxConfig
    from .sandbox._prebuild import prebuild
    from .supervisor import (
        ChildInfo,
        ChildSpec,
        Escalated,
        Restart,
        RestartIntensityExceeded,
        Strategy,
        Supervisor,
        SupervisorError,
    )

__version__ = "0.1.0"

__all__ = [
    "AskTimeout",
    "Atom",
    "AtomStopped",
    "AuthenticationFailed",
    "BadArguments",
    "ChildInfo",
    "ChildSpec",
    "Cluster",
    "DeadLetter",
    "DeadLetters",
    "DeadlockError",
    "Directive",
    "Down",
    "Escalated",
    "ForeignError",
    "HandlerNotFound",
    "HostDown",
    "LeastLoaded",
    "MailboxFull",
    "MessageNotPortable",
    "MessageTooLarge",
    "MigrationError",
    "NameTaken",
    "NoSuchAtom",
    "NoSuchHost",
    "NotSpawned",
    "ProtocolError",
    "RadonError",
    "Record",
    "RedisStore",
    "Ref",
    "Rejection",
    "Restart",
    "RestartIntensityExceeded",
    "RoundRobin",
    "SandboxBuildError",
    "SandboxConfig",
    "SandboxCrashed",
    "SandboxDenied",
    "SandboxError",
    "SQLiteStore",
    "SpawnError",
    "StashOverflow",
    "State",
    "StateConflict",
    "StateStore",
    "Strategy",
    "Supervisor",
    "SupervisorError",
    "System",
    "Timer",
    "WouldBlock",
    "handler",
    "open_system",
    "portable",
    "prebuild",
    "state",
]

_LAZY = {
    "System": "runtime",
    "open_system": "_open",
    "Directive": "runtime",
    "ChildInfo": "supervisor",
    "ChildSpec": "supervisor",
    "Down": "runtime",
    "Escalated": "supervisor",
    "Restart": "supervisor",
    "RestartIntensityExceeded": "supervisor",
    "Strategy": "supervisor",
    "Supervisor": "supervisor",
    "SupervisorError": "supervisor",
    "DeadLetter": "mailbox",
    "DeadLetters": "mailbox",
    "SandboxConfig": "sandbox._config",
    "prebuild": "sandbox._prebuild",
    "AuthenticationFailed": "placement",
    "HostDown": "placement",
    "MessageTooLarge": "placement",
    "MigrationError": "placement",
    "NoSuchHost": "placement",
    "ProtocolError": "placement",
    "RoundRobin": "placement",
    "LeastLoaded": "placement",
    "StateStore": "durable",
    "SQLiteStore": "durable",
    "RedisStore": "durable",
    "Cluster": "cluster",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'radon_actors' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
