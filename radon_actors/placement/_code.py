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

A sender remembers, per peer, what that peer has (``Peer.shipped``: asked or
sent once per host per connection); concurrent shipments of one ``H`` to one
host share the first. A receiver keeps the parts of a transfer in progress per
sender (``Node.staging``), dropped when that sender goes down. A host never
builds a component (runs componentize-py) for a peer: it only compiles what it
was sent.

(The sandbox is imported inside the functions that use it, so a system that
never ships a sandboxed atom never imports wasmtime.)
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import trio

from .._logs import get_logger
from ._classes import dump_class, load_class
from ._errors import ProtocolError
from ._frames import CodeDone, CodeHas, CodePart
from ._wire import PICKLE_PROTOCOL

if TYPE_CHECKING:
    from ..runtime import AtomCell
    from ..sandbox.host import LoadedComponent, SandboxConfig, SandboxRuntime
    from ._node import Node
    from ._transport import Peer

__all__ = [
    "CHUNK",
    "SandboxField",
    "Shipment",
    "activated",
    "activation",
    "runtime_from",
    "sandbox_field",
    "serve_code_done",
    "serve_code_has",
    "serve_code_part",
    "ship",
]

_log = get_logger("radon_actors.placement")

CHUNK = 1 << 20  # bytes per code_part request
MAX_COMPONENT = 1 << 28  # refuse larger components (the frame limit, for the whole)

# What an ``activate`` carries for a sandboxed atom: the component's hash, the
# atom's SandboxConfig, the snapshot a restart restores (spawn_restored), if any,
# and the atom's class by name in the component (the receiver builds it from the
# component's manifest: it never imports the atom's module).
SandboxField = tuple[str, "SandboxConfig", "str | None", str]


def _check_hash(h: str) -> None:
    """Refuse anything but a SHA-256 in hex (a hash names a cache directory)."""
    from ..sandbox.host import BadComponent, entry

    try:
        entry(h)
    except BadComponent as exc:
        raise ProtocolError(str(exc)) from None


class Shipment:
    """One component sent to one peer: done, or in progress (others wait)."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: Exception | None = None


async def ship(node: Node, peer: Peer, loaded: LoadedComponent) -> str:
    """Make sure ``peer`` has ``loaded``'s component; return its content hash."""
    from ..sandbox.host import content_hash

    h, _path = await content_hash(loaded)
    shipments = peer.shipped
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
    shipment = shipments[h] = Shipment()
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

    if await node.request(peer, CodeHas("code_has", 0, h)):
        return
    try:
        h, data = await read_component(loaded)
    except BadComponent as exc:
        raise ProtocolError(str(exc)) from None
    _log.info("placement.code_shipping", host=peer.name, hash=h, bytes=len(data))
    for offset in range(0, len(data), CHUNK):
        part = CodePart("code_part", 0, h, offset, data[offset : offset + CHUNK])
        await node.request(peer, part)
    modules = sorted(loaded.modules)
    await node.request(peer, CodeDone("code_done", 0, h, len(data), loaded.module, modules))


async def sandbox_field(node: Node, peer: Peer, cell: AtomCell) -> SandboxField | None:
    """What an ``activate`` of ``cell``'s atom on ``peer`` carries for its
    sandbox, once ``peer`` has the component: None for a native atom."""
    from ..sandbox.host import SandboxRuntime, record_name

    runtime = cell.runtime
    if not isinstance(runtime, SandboxRuntime):
        return None
    h = await ship(node, peer, runtime.loaded)
    return (h, runtime.config, runtime.restore_state, record_name(cell.cls))


async def activation(
    node: Node, peer: Peer, cell: AtomCell
) -> tuple[bytes, bytes, SandboxField | None]:
    """What an ``activate`` of ``cell``'s atom on ``peer`` carries for its class,
    its constructor's arguments and its sandbox. A sandboxed atom's class goes
    by name (``cls_blob`` empty) and its arguments in the value format, so
    that the receiver runs it from the component alone."""
    from ..sandbox.host import host_form_message

    sandbox = await sandbox_field(node, peer, cell)  # ships a sandboxed atom's component
    if sandbox is None:
        ctor = pickle.dumps((cell.args, cell.kwargs), PICKLE_PROTOCOL)
        return dump_class(cell.cls, peer), ctor, None
    return b"", host_form_message(cell.args, cell.kwargs).encode(), sandbox


async def activated(
    existing: type[Any] | None, cls_blob: bytes, ctor: bytes, sandbox: Any
) -> tuple[type[Any], tuple[Any, ...], dict[str, Any]]:
    """The receiving side of :func:`activation`: the atom's class (``existing``
    when the atom comes home) and its constructor's arguments."""
    if sandbox is None:
        args, kwargs = pickle.loads(ctor)
        return existing or load_class(cls_blob), args, kwargs
    from ..sandbox.host import read_host_form_message, read_manifest, stand_in

    if not (isinstance(sandbox, tuple) and len(sandbox) == 4 and isinstance(sandbox[3], str)):
        raise ProtocolError("a sandboxed activation names its class in its sandbox field")
    args, kwargs = read_host_form_message(ctor.decode())
    if existing is not None:
        return existing, args, kwargs
    loaded = await find(sandbox[0])
    if loaded is None:
        raise ProtocolError(
            f"the component {sandbox[0]} was not shipped to this host first "
            "(code_has/code_part/code_done); run the same radon-actors version on every host"
        )
    await trio.to_thread.run_sync(read_manifest, loaded)
    return stand_in(loaded, sandbox[3]), args, kwargs


async def runtime_from(cls: type[Any], field: SandboxField) -> SandboxRuntime:
    """The receiving side of :func:`sandbox_field`: a runtime for ``cls``'s atom."""
    from ..sandbox.host import SandboxRuntime

    h, config, restore, _name = field
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


async def serve_code_has(node: Node, peer: Peer, frame: CodeHas) -> bool:
    return await find(frame.h) is not None


async def serve_code_part(node: Node, peer: Peer, frame: CodePart) -> None:
    _, _, h, offset, chunk = frame
    _check_hash(h)
    staging = node.staging
    key = (peer.node_id, h)
    if offset == 0:
        staging[key] = bytearray()
    buf = staging.get(key)
    if buf is None or len(buf) != offset or offset + len(chunk) > MAX_COMPONENT:
        staging.pop(key, None)
        raise ProtocolError(
            f"component {h}: unexpected part at offset {offset} (have "
            f"{'nothing' if buf is None else len(buf)} bytes); send it again from offset 0"
        )
    buf += chunk
    await trio.lowlevel.checkpoint()


async def serve_code_done(node: Node, peer: Peer, frame: CodeDone) -> None:
    from ..sandbox.host import BadComponent, store_verified

    _, _, h, size, module, modules = frame
    _check_hash(h)
    buf = node.staging.pop((peer.node_id, h), None)
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
