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

import atexit
import hashlib
import json
import os
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
import trio

from ._errors import ProtocolError
from ._node import Node, Peer, add_request

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..runtime._cell import AtomCell
    from ..sandbox._config import SandboxConfig
    from ..sandbox._engine import LoadedComponent
    from ..sandbox._spawn import SandboxRuntime

__all__ = ["CHUNK", "SandboxField", "runtime_from", "sandbox_fields", "ship"]

_log = structlog.get_logger("radon_actors.placement")

CHUNK = 1 << 20  # bytes per code_part request
MAX_COMPONENT = 1 << 28  # refuse larger components (the frame limit, for the whole)

# What an ``activate`` carries for a sandboxed atom: the component's hash, the
# atom's SandboxConfig, and the snapshot a restart restores (spawn_restored), if any.
SandboxField = tuple[str, "SandboxConfig", "str | None"]

# Components by content hash: received ones, and local ones once hashed.
_by_hash: dict[str, LoadedComponent] = {}
# Component (by its cache key) -> (content hash, path of its component.wasm).
_digests: dict[str, tuple[str, Path]] = {}
_loading: dict[str, trio.Lock] = {}
# Per peer: content hash -> the shipment (done, or in progress).
_shipped: weakref.WeakKeyDictionary[Peer, dict[str, _Shipment]] = weakref.WeakKeyDictionary()
# Receiving side: (sender's node id, hash) -> the bytes received so far.
_staging: dict[tuple[str, str], bytearray] = {}
_watching: weakref.WeakSet[Node] = weakref.WeakSet()
# Dropped before interpreter teardown, while wasmtime can still free them.
atexit.register(_by_hash.clear)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


_HEX = frozenset("0123456789abcdef")


def _directory(h: str) -> Path:
    """Where hash ``h`` is cached; refuses anything but a SHA-256 in hex (a hash
    names a directory, so it must not be a path)."""
    from ..sandbox._build import cache_root

    if not (isinstance(h, str) and len(h) == 64 and _HEX.issuperset(h)):
        raise ProtocolError(f"{h!r} is not a component hash (64 lowercase hex digits)")
    return cache_root() / f"sha256-{h}"


async def digest(loaded: LoadedComponent) -> tuple[str, Path]:
    """The content hash of a loaded component and the path of its ``.wasm``."""
    found = _digests.get(loaded.key)
    if found is None:
        from ..sandbox._build import cache_root

        path = cache_root() / loaded.key / "component.wasm"
        if not path.is_file():
            raise FileNotFoundError(
                f"the component of {loaded.module} is no longer in the sandbox cache ({path}); "
                "it was deleted after it was loaded: restart the process to rebuild it"
            )
        h = await trio.to_thread.run_sync(_sha256_file, path)
        found = _digests.setdefault(loaded.key, (h, path))
        _by_hash.setdefault(found[0], loaded)
    return found


class _Shipment:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: Exception | None = None


async def ship(node: Node, peer: Peer, loaded: LoadedComponent) -> str:
    """Make sure ``peer`` has ``loaded``'s component; return its content hash."""
    h, path = await digest(loaded)
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
        await _send(node, peer, h, path, loaded)
    except BaseException as exc:
        del shipments[h]
        if isinstance(exc, Exception):
            shipment.error = exc
        shipment.done.set()
        raise
    shipment.done.set()
    return h


async def _send(node: Node, peer: Peer, h: str, path: Path, loaded: LoadedComponent) -> None:
    if await node.request(peer, ("code_has", h)):
        return
    data = await trio.to_thread.run_sync(path.read_bytes)
    if await trio.to_thread.run_sync(_sha256, data) != h:
        raise ProtocolError(
            f"the cached component {path} changed after it was loaded; restart the process"
        )
    _log.info("placement.code_shipping", host=peer.name, hash=h, bytes=len(data))
    for offset in range(0, len(data), CHUNK):
        await node.request(peer, ("code_part", h, offset, data[offset : offset + CHUNK]))
    await node.request(peer, ("code_done", h, len(data), loaded.module, sorted(loaded.modules)))


async def sandbox_fields(node: Node, peer: Peer, cell: AtomCell) -> tuple[()] | tuple[SandboxField]:
    """The fields an ``activate`` of ``cell``'s atom on ``peer`` appends for its
    sandbox, once ``peer`` has the component: none for a native atom (its frame
    is unchanged), else one :data:`SandboxField`."""
    runtime: SandboxRuntime | None = cell.sandbox
    if runtime is None:
        return ()
    h = await ship(node, peer, runtime.loaded)
    return ((h, runtime.config, runtime.restore_state),)


async def runtime_from(cls: type[Any], field: SandboxField) -> SandboxRuntime:
    """The receiving side of :func:`sandbox_fields`: a runtime for ``cls``'s atom."""
    from ..sandbox._spawn import SandboxRuntime

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
    directory = _directory(h)
    loaded = _by_hash.get(h)
    if loaded is not None:
        return loaded
    if not (directory / "component.wasm").is_file() or not (directory / "meta.json").is_file():
        return None
    async with _loading.setdefault(h, trio.Lock()):
        loaded = _by_hash.get(h)
        if loaded is None:
            loaded = await _load(h, directory)
    return loaded


async def _load(h: str, directory: Path) -> LoadedComponent:
    from ..sandbox import _engine

    _engine.engine()  # made here, on the trio thread, not by two threads at once
    loaded = await trio.to_thread.run_sync(_load_sync, h, directory)
    _by_hash[h] = loaded
    # Atoms of that module spawned on this host (children that atoms here spawn)
    # use it too, instead of building the module here.
    _engine._loaded.setdefault(loaded.module, loaded)
    _digests.setdefault(loaded.key, (h, directory / "component.wasm"))
    return loaded


def _load_sync(h: str, directory: Path) -> LoadedComponent:
    """Compile (or deserialize the compiled artifact) and link; a worker thread."""
    from ..sandbox import _engine

    meta = json.loads((directory / "meta.json").read_text())

    def progress(message: str) -> None:
        _log.info("sandbox.compile", message=message, hash=h)

    component = _engine._compile(
        directory / "component.wasm", directory / "component.cwasm", progress
    )
    return _engine.LoadedComponent(
        str(meta["module"]), f"sha256-{h}", component, frozenset(meta["modules"])
    )


def _store(h: str, data: bytes | bytearray, module: str, modules: list[str]) -> Path:
    """Write a verified component into the disk cache, atomically; a worker thread."""
    directory = _directory(h)
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.tmp"
    partial = directory / f"component.wasm.{tag}"
    partial.write_bytes(data)
    partial.replace(directory / "component.wasm")
    (directory / "module.txt").write_text(f"{module}\n")
    meta = directory / f"meta.json.{tag}"
    meta.write_text(json.dumps({"module": module, "modules": sorted(modules)}))
    meta.replace(directory / "meta.json")  # last: marks the entry complete
    return directory


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
    _directory(h)  # a valid hash
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
    _directory(h)  # a valid hash
    buf = _staging.pop((peer.node_id, h), None)
    if buf is None or len(buf) != size:
        got = "nothing" if buf is None else f"{len(buf)} bytes"
        raise ProtocolError(f"component {h}: expected {size} bytes, got {got}; send it again")
    data = buf  # no longer shared: hashed and written as it is, off the trio thread
    actual = await trio.to_thread.run_sync(_sha256, data)
    if actual != h:
        _log.warning("placement.code_refused", host=peer.name, expected=h, actual=actual)
        raise ProtocolError(
            f"the component received from host {peer.label} does not match its hash "
            f"(expected {h}, got {actual}); it was discarded"
        )
    async with _loading.setdefault(h, trio.Lock()):
        if h in _by_hash:
            return
        directory = await trio.to_thread.run_sync(_store, h, data, module, modules)
        await _load(h, directory)
    _log.info("placement.code_received", host=peer.name, hash=h, bytes=size, module=module)


_HANDLERS: dict[str, Callable[..., Awaitable[Any]]] = {
    "code_has": _req_code_has,
    "code_part": _req_code_part,
    "code_done": _req_code_done,
}
for _kind, _fn in _HANDLERS.items():
    add_request(_kind, _fn)
