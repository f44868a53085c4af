"""Code that travels: sandboxed atoms' components, shipped by content hash.

A sandboxed atom runs its WebAssembly component, so the component is all the
code a host needs to run it, whatever that host's Python or CPU. It is named by
its *content hash* ``H``, the SHA-256 of the portable ``component.wasm`` (never
the compiled artifact, which only fits one CPU and wasmtime build).

Before an ``activate`` that starts or moves a sandboxed atom on host X, the
sender makes sure X has ``H`` (:func:`ship`):

1. ``code_has(H)``: X answers True if it has the component loaded, or in its
   disk cache (then it loads it, compiling it off the trio thread if needed).
2. Otherwise the bytes go as ``code_part(H, offset, bytes)`` requests of
   :data:`CHUNK` bytes each, one at a time (each waits for its reply), so the
   peer's other frames interleave with the transfer instead of queueing behind
   one 20 MB frame; then ``code_done(H, size, module, modules)``: X checks the
   size and the hash of what it received (a mismatch is refused and nothing is
   kept), stores it in its disk cache under ``sha256-H`` (beside the components
   built locally, see ``sandbox._build.cache_root``), compiles it once on a
   worker thread, and answers.

A sender remembers, per peer, what that peer has (asked or sent once per host
per process); concurrent shipments of one ``H`` to one host share the first.
A host never builds a component (runs componentize-py) for a peer: it only
compiles what it was sent.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import structlog
import trio

from ._errors import ProtocolError
from ._node import Node, Peer, add_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..runtime import AtomCell
    from ..sandbox.host import LoadedComponent, SandboxConfig, SandboxRuntime

__all__ = ["CHUNK", "SandboxField", "runtime_from", "sandbox_fields", "ship"]

_log = structlog.get_logger("radon_actors.placement")

CHUNK = 1 << 20  # bytes per code_part request
MAX_COMPONENT = 1 << 28  # refuse larger components (the frame limit, for the whole)

# What an ``activate`` carries for a sandboxed atom: the component's hash, the
# atom's SandboxConfig, and the snapshot a restart restores (spawn_restored), if any.
SandboxField = tuple[str, "SandboxConfig", "str | None"]

# Per peer: content hash -> the shipment (done, or in progress).
_shipped: weakref.WeakKeyDictionary[Peer, dict[str, _Shipment]] = weakref.WeakKeyDictionary()
# Receiving side: (sender's node id, hash) -> the bytes received so far.
_staging: dict[tuple[str, str], bytearray] = {}
_watching: weakref.WeakSet[Node] = weakref.WeakSet()


def _check_hash(h: str) -> None:
    """Refuse anything but a SHA-256 in hex (a hash names a cache directory)."""
    from ..sandbox.host import BadComponent, entry

    try:
        entry(h)
    except BadComponent as exc:
        raise ProtocolError(str(exc)) from None


class _Shipment:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: Exception | None = None


async def ship(node: Node, peer: Peer, loaded: LoadedComponent) -> str:
    """Make sure ``peer`` has ``loaded``'s component; return its content hash."""
    from ..sandbox.host import content_hash

    h, _path = await content_hash(loaded)
    shipments = _shipped.setdefault(peer, {})
    while True:
        shipment = shipments.get(h)
        if shipment is None:
            break
        await shipment.done.wait()
        if shipment.error is not None:
            raise shipment.error
        if shipments.get(h) is shipment:
            return h
        # The first sender was cancelled: take over.
    shipment = shipments[h] = _Shipment()
    try:
        await _send(node, peer, h, loaded)
    except BaseException as exc:
        del shipments[h]
        if isinstance(exc, Exception):
            shipment.error = exc
        shipment.done.set()
        raise
    shipment.done.set()
    return h


async def _send(node: Node, peer: Peer, h: str, loaded: LoadedComponent) -> None:
    from ..sandbox.host import BadComponent, read_component

    if await node.request(peer, ("code_has", h)):
        return
    try:
        h, data = await read_component(loaded)
    except BadComponent as exc:
        raise ProtocolError(str(exc)) from None
    _log.info("placement.code_shipping", host=peer.name, hash=h, bytes=len(data))
    for offset in range(0, len(data), CHUNK):
        await node.request(peer, ("code_part", h, offset, data[offset : offset + CHUNK]))
    await node.request(peer, ("code_done", h, len(data), loaded.module, sorted(loaded.modules)))


async def sandbox_fields(node: Node, peer: Peer, cell: AtomCell) -> tuple[()] | tuple[SandboxField]:
    """The fields an ``activate`` of ``cell``'s atom on ``peer`` appends for its
    sandbox, once ``peer`` has the component: none for a native atom (its frame
    is unchanged), else one :data:`SandboxField`."""
    from ..sandbox.host import SandboxRuntime

    runtime = cell.runtime
    if not isinstance(runtime, SandboxRuntime):
        return ()
    h = await ship(node, peer, runtime.loaded)
    return ((h, runtime.config, runtime.restore_state),)


async def runtime_from(cls: type[Any], field: SandboxField) -> SandboxRuntime:
    """The receiving side of :func:`sandbox_fields`: a runtime for ``cls``'s atom."""
    from ..sandbox.host import SandboxRuntime

    h, config, restore = field
    loaded = await find(h)
    if loaded is None:
        raise ProtocolError(
            f"the component {h} of {cls.__qualname__} was not shipped to this host first "
            "(code_has/code_part/code_done); run the same radon-actors version on every host"
        )
    runtime = SandboxRuntime(cls, loaded, config)
    runtime.restore_state = restore
    return runtime


# ----------------------------------------------------------------------
# receiving side
# ----------------------------------------------------------------------
async def find(h: str) -> LoadedComponent | None:
    """The component with hash ``h``: loaded, or loaded now from the disk cache."""
    from ..sandbox.host import by_hash

    _check_hash(h)
    return await by_hash(h)


def _forget_staging(node: Node) -> None:
    if node in _watching:
        return
    _watching.add(node)

    def host_down(name: str, reason: str) -> None:
        node_id = node.names.get(name)
        for key in [k for k in _staging if k[0] == node_id]:
            del _staging[key]

    node.host_down_callbacks.append(host_down)


async def _req_code_has(node: Node, peer: Peer, h: str) -> bool:
    return await find(h) is not None


async def _req_code_part(node: Node, peer: Peer, h: str, offset: int, chunk: bytes) -> None:
    _check_hash(h)
    _forget_staging(node)
    key = (peer.node_id, h)
    if offset == 0:
        _staging[key] = bytearray()
    buf = _staging.get(key)
    if buf is None or len(buf) != offset or offset + len(chunk) > MAX_COMPONENT:
        _staging.pop(key, None)
        raise ProtocolError(
            f"component {h}: unexpected part at offset {offset} (have "
            f"{'nothing' if buf is None else len(buf)} bytes); send it again from offset 0"
        )
    buf += chunk
    await trio.lowlevel.checkpoint()


async def _req_code_done(
    node: Node, peer: Peer, h: str, size: int, module: str, modules: list[str]
) -> None:
    from ..sandbox.host import BadComponent, store_verified

    _check_hash(h)
    buf = _staging.pop((peer.node_id, h), None)
    if buf is None or len(buf) != size:
        got = "nothing" if buf is None else f"{len(buf)} bytes"
        raise ProtocolError(f"component {h}: expected {size} bytes, got {got}; send it again")
    try:
        # ``buf`` is no longer shared: hashed and written as it is, off the trio thread.
        await store_verified(h, buf, module, modules)
    except BadComponent as exc:
        _log.warning("placement.code_refused", host=peer.name, error=str(exc))
        raise ProtocolError(
            f"the component received from host {peer.label} does not match its hash "
            f"({exc}); it was discarded"
        ) from None
    _log.info("placement.code_received", host=peer.name, hash=h, bytes=size, module=module)


_HANDLERS: dict[str, Callable[..., Awaitable[Any]]] = {
    "code_has": _req_code_has,
    "code_part": _req_code_part,
    "code_done": _req_code_done,
}
for _kind, _fn in _HANDLERS.items():
    add_request(_kind, _fn)
