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

from ._boundary import host_form_message, read_host_form_message
from ._cache import BadComponent, by_hash, content_hash, entry, read_component, store_verified
from ._config import SandboxConfig
from ._engine import LoadedComponent
from ._instance import GuestAtom
from ._manifest import is_stand_in, read_manifest, stand_in
from ._spawn import (
    SandboxRuntime,
    component_class,
    load_component,
    runtime_for,
    snapshot,
    spawn_restored,
)
from ._value import placeholder, record_name

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
    "host_form_message",
    "is_stand_in",
    "load_component",
    "placeholder",
    "read_component",
    "read_host_form_message",
    "read_manifest",
    "record_name",
    "snapshot",
    "spawn_restored",
    "stand_in",
    "store_verified",
]


class _Isolation:
    """The runtime's ``Isolation`` extension: WebAssembly components."""

    async def runtime_for(self, cls: type[Any], options: Any) -> SandboxRuntime | None:
        return await runtime_for(cls, options)

    async def component_class(self, component: Any, atom: str) -> type[Any]:
        return await component_class(component, atom)


ISOLATION = _Isolation()
"""What ``open_system`` plugs into the runtime (``Extensions.isolation``)."""
