"""Components by content hash: the part of the component cache other hosts use.

A component is named by the SHA-256 of its portable ``component.wasm`` (never
the compiled artifact, which only fits one CPU and wasmtime build). Locally
built components get their hash on first use; components received from another
host are verified against theirs, stored under ``sha256-<hash>`` beside the
locally built ones (see ``_build.cache_root``), compiled once off the trio
thread and loaded. Nothing here builds a component: only ``_build`` runs
componentize-py, and only for a module of this process.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
from pathlib import Path

import trio

from .._logs import get_logger
from . import _engine
from ._build import cache_root
from ._engine import LoadedComponent
from ._keyed import KeyedLocks

__all__ = [
    "BadComponent",
    "by_hash",
    "content_hash",
    "entry",
    "read_component",
    "store_verified",
]

_log = get_logger("radon_actors.sandbox")

_READ_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")

# Components by content hash: received ones, and local ones once hashed. Like
# ``_engine._loaded``, process-wide on purpose: a component is compiled for this
# process's engine, and an atom restarted or moved here later needs it again.
# One entry per component this process has loaded (each also holds megabytes of
# compiled code, so none is ever loaded twice).
_by_hash: dict[str, LoadedComponent] = {}
# Component (by its cache key) -> (content hash, path of its component.wasm):
# one entry per loaded component, as above.
_digests: dict[str, tuple[str, Path]] = {}
# A lock per hash being loaded, dropped once loaded: hashes come from other
# hosts, so a table of locks kept forever would grow with what they send.
_loading: KeyedLocks[trio.Lock] = KeyedLocks(trio.Lock)
# Dropped before interpreter teardown, while wasmtime can still free them.
atexit.register(_by_hash.clear)


class BadComponent(ValueError):
    """A component hash that is not one, or bytes that do not match their hash."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def entry(h: str) -> Path:
    """Where hash ``h`` is cached; refuses anything but a SHA-256 in hex (a hash
    names a directory, so it must not be a path)."""
    if not (isinstance(h, str) and len(h) == 64 and _HEX.issuperset(h)):
        raise BadComponent(f"{h!r} is not a component hash (64 lowercase hex digits)")
    return cache_root() / f"sha256-{h}"


async def content_hash(loaded: LoadedComponent) -> tuple[str, Path]:
    """The content hash of a loaded component and the path of its ``.wasm``."""
    found = _digests.get(loaded.key)
    if found is None:
        path = cache_root() / loaded.key / "component.wasm"
        if not path.is_file():
            raise FileNotFoundError(
                f"the component of {loaded.module} is no longer in the sandbox cache ({path}); "
                "it was deleted after it was loaded: restart the process to rebuild it"
            )
        h = await trio.to_thread.run_sync(_sha256_file, path)
        found = _digests.setdefault(loaded.key, (h, path))
        _by_hash.setdefault(found[0], loaded)
        await trio.to_thread.run_sync(_publish, found[0], path.parent, loaded)
    return found


def _publish(h: str, built: Path, loaded: LoadedComponent) -> None:
    """Make a locally built component findable by its hash in this machine's cache.

    Worker hosts on this machine share the disk cache: with a ``sha256-<hash>``
    entry hard-linked to the build's files (the compiled ``component.cwasm``
    included), a host asked ``code_has(hash)`` loads the compiled artifact in
    milliseconds instead of receiving the component and compiling it again
    (seconds). Only an optimisation: on any error the entry is simply absent.
    A worker thread.
    """
    directory = entry(h)
    if (directory / "meta.json").is_file():
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("component.wasm", "component.cwasm"):
            target = directory / name
            if (built / name).is_file() and not target.exists():
                os.link(built / name, target)
        (directory / "module.txt").write_text(f"{loaded.module}\n")
        meta = directory / f"meta.json.{os.getpid()}.tmp"
        meta.write_text(json.dumps({"module": loaded.module, "modules": sorted(loaded.modules)}))
        meta.replace(directory / "meta.json")  # last: marks the entry complete
    except OSError as exc:
        _log.debug("sandbox.publish_failed", hash=h, error=repr(exc))


async def read_component(loaded: LoadedComponent) -> tuple[str, bytes]:
    """The content hash and the bytes of ``loaded``'s ``component.wasm``, checked
    again (raises :class:`BadComponent` if the file changed since it was hashed)."""
    h, path = await content_hash(loaded)
    data = await trio.to_thread.run_sync(path.read_bytes)
    if await trio.to_thread.run_sync(_sha256, data) != h:
        raise BadComponent(
            f"the cached component {path} changed after it was loaded; restart the process"
        )
    return h, data


async def by_hash(h: str) -> LoadedComponent | None:
    """The component with hash ``h``: loaded, or loaded now from the disk cache."""
    directory = entry(h)
    loaded = _by_hash.get(h)
    if loaded is not None:
        return loaded
    if not (directory / "component.wasm").is_file() or not (directory / "meta.json").is_file():
        return None
    with _loading.holding(h) as lock:
        async with lock:
            loaded = _by_hash.get(h)
            if loaded is None:
                loaded = await _load(h, directory)
    return loaded


async def store_verified(
    h: str, data: bytes | bytearray, module: str, modules: list[str]
) -> LoadedComponent:
    """Check ``data`` against ``h``, store it in the cache and load it.

    Raises :class:`BadComponent` (nothing kept) when the bytes do not match.
    ``data`` must no longer be shared: it is hashed and written off the trio thread.
    """
    directory = entry(h)
    actual = await trio.to_thread.run_sync(_sha256, data)
    if actual != h:
        raise BadComponent(f"expected {h}, got {actual}")
    with _loading.holding(h) as lock:
        async with lock:
            loaded = _by_hash.get(h)
            if loaded is None:
                await trio.to_thread.run_sync(_store, directory, data, module, modules)
                loaded = await _load(h, directory)
    return loaded


def _sha256(data: bytes | bytearray) -> str:
    return hashlib.sha256(data).hexdigest()


async def _load(h: str, directory: Path) -> LoadedComponent:
    _engine.engine()  # made here, on the trio thread, not by two threads at once
    loaded = await trio.to_thread.run_sync(_load_sync, h, directory)
    _by_hash[h] = loaded
    # Atoms of that module spawned on this host (children that atoms here spawn)
    # use it too, instead of building the module here.
    _engine.adopt_loaded(loaded)
    _digests.setdefault(loaded.key, (h, directory / "component.wasm"))
    return loaded


def _load_sync(h: str, directory: Path) -> LoadedComponent:
    """Compile (or deserialize the compiled artifact) and link; a worker thread."""
    meta = json.loads((directory / "meta.json").read_text())

    def progress(message: str) -> None:
        _log.info("sandbox.compile", message=message, hash=h)

    component = _engine.compile_component(
        directory / "component.wasm", directory / "component.cwasm", progress
    )
    return LoadedComponent(
        str(meta["module"]), f"sha256-{h}", component, frozenset(meta["modules"])
    )


def _store(directory: Path, data: bytes | bytearray, module: str, modules: list[str]) -> None:
    """Write a verified component into the disk cache, atomically; a worker thread."""
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.tmp"
    partial = directory / f"component.wasm.{tag}"
    partial.write_bytes(data)
    partial.replace(directory / "component.wasm")
    (directory / "module.txt").write_text(f"{module}\n")
    meta = directory / f"meta.json.{tag}"
    meta.write_text(json.dumps({"module": module, "modules": sorted(modules)}))
    meta.replace(directory / "meta.json")  # last: marks the entry complete
