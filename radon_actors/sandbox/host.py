"""The sandbox as the host's other layers use it (placement, ``open_system``).

``radon_actors.sandbox`` itself must stay importable inside the guest, so the
host-side interface lives here: the isolation extension the runtime calls to
spawn a sandboxed atom, the instance runtime it returns, snapshots, and the
component cache by content hash that placement ships components through.
Users never need this module: the public names are re-exported by
``radon_actors``.
"""

from __future__ import annotations

from typing import Any

from ._cache import BadComponent, by_hash, content_hash, entry, read_component, store_verified
from ._config import SandboxConfig
from ._engine import LoadedComponent
from ._instance import GuestAtom
from ._spawn import SandboxRuntime, runtime_for, snapshot, spawn_restored

__all__ = [
    "ISOLATION",
    "BadComponent",
    "GuestAtom",
    "LoadedComponent",
    "SandboxConfig",
    "SandboxRuntime",
    "by_hash",
    "content_hash",
    "entry",
    "read_component",
    "snapshot",
    "spawn_restored",
    "store_verified",
]


class _Isolation:
    """The runtime's ``Isolation`` extension: WebAssembly components."""

    async def runtime_for(self, cls: type[Any], options: Any) -> SandboxRuntime | None:
        return await runtime_for(cls, options)


ISOLATION = _Isolation()
"""What ``open_system`` plugs into the runtime (``Extensions.isolation``)."""
