"""The wasmtime engine and the components compiled for it.

* One :class:`wasmtime.Engine` per process, with fuel metering on (a compiled
  component only loads into an engine with the same configuration).
* :func:`load` turns a module name into a :class:`LoadedComponent`: built by
  ``_build`` (or found in its cache), compiled once and serialized beside the
  component, so later processes load it in milliseconds.
* A :class:`LoadedComponent` is linked once: the host imports of
  ``_hostcalls`` are defined in its linker and its exports looked up, so each
  instance (``_instance.GuestAtom``) only instantiates it.

Components received from other hosts by content hash come through ``_cache``,
which compiles them here too and hands them to :func:`adopt_loaded`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from .._logs import get_logger
from . import _build
from ._errors import SandboxError
from ._hostcalls import HOST_FUNCS
from ._keyed import KeyedLocks

__all__ = [
    "GUEST_INTERFACE",
    "HOST_INTERFACE",
    "LoadedComponent",
    "adopt_loaded",
    "compile_component",
    "engine",
    "load",
    "loaded",
]

_log = get_logger("radon_actors.sandbox")

_PACKAGE = "radon:atom"
_VERSION = "0.6.0"
HOST_INTERFACE = f"{_PACKAGE}/host@{_VERSION}"
GUEST_INTERFACE = f"{_PACKAGE}/guest@{_VERSION}"
_EXPORTS = (
    "create",
    "start",
    "handle",
    "pending",
    "resume",
    "finish",
    "snapshot",
    "restore",
    "manifest",
)

# Process-wide: a compiled component only loads into an engine with the same
# Config, and one engine serves every store, trio run and thread of the process.
_engine: wasmtime.Engine | None = None


def engine() -> wasmtime.Engine:
    """The process's engine (fuel metering on)."""
    global _engine
    if _engine is None:
        config = wasmtime.Config()
        config.consume_fuel = True
        _engine = wasmtime.Engine(config)
    return _engine


# The user modules of every component this process loaded (its atom's module
# and the non-standard-library modules bundled with it): placement's frame
# reader must not import them to unpickle a message (``component_modules``).
_component_modules: set[str] = set()


def component_modules() -> set[str]:
    """Modules that belong to a loaded component: code that runs only inside
    its sandbox here, so nothing may import it natively to decode a message
    (placement turns their records into :class:`~radon_actors.Record`)."""
    return _component_modules


def note_component_modules(names: Any) -> None:
    """Count ``names`` among :func:`component_modules` (the standard library and
    radon-actors never are)."""
    stdlib = sys.stdlib_module_names
    for name in names:
        top = name.partition(".")[0]
        if top not in stdlib and top != "radon_actors" and name.isascii():
            _component_modules.add(name)


class LoadedComponent:
    """A compiled component, its linker (host imports defined) and export indices."""

    __slots__ = ("component", "exports", "key", "linker", "manifest", "module", "modules")

    def __init__(
        self,
        module: str,
        key: str,
        component: wc.Component,
        modules: frozenset[str] = frozenset(),
    ) -> None:
        self.module = module
        self.key = key
        self.component = component
        # What the component says it holds (``_manifest.read``), once read.
        self.manifest: Any = None
        # Modules the guest can import besides its standard library.
        self.modules = modules
        note_component_modules((module, *modules))
        linker = wc.Linker(engine())
        linker.add_wasip2()
        host = linker.root().add_instance(HOST_INTERFACE)
        for name, fn in HOST_FUNCS.items():
            host.add_func(name, fn)
        self.linker = linker
        iface = component.get_export_index(GUEST_INTERFACE)
        if iface is None:
            raise SandboxError(f"component of {module} does not export {GUEST_INTERFACE}")
        self.exports: dict[str, wc.ExportIndex] = {}
        for name in _EXPORTS:
            idx = component.get_export_index(name, iface)
            if idx is None:
                raise SandboxError(f"component of {module} lacks the export {name!r}")
            self.exports[name] = idx


# Loaded components by module. Process-wide on purpose: compiling costs seconds
# and each component is compiled for this process's engine; the table holds one
# entry per sandboxed module of the process, so it is bounded by the code, not
# by traffic. The locks exist only while a module is being loaded.
_loaded: dict[str, LoadedComponent] = {}
_locks: KeyedLocks[threading.Lock] = KeyedLocks(threading.Lock)


def adopt_loaded(loaded: LoadedComponent) -> None:
    """Use ``loaded`` for its module unless this process loaded one already (a
    component received from another host serves the atoms spawned here too)."""
    _loaded.setdefault(loaded.module, loaded)


def loaded(module: str) -> LoadedComponent | None:
    """The component of ``module`` if this process has loaded it already."""
    return _loaded.get(module)


def load(module: str, *, progress: Callable[[str], None] | None = None) -> LoadedComponent:
    """Build (if needed), compile (if needed) and load the component of ``module``.

    Blocking (seconds on a cold cache): call it from a worker thread in async code.
    """
    found = _loaded.get(module)
    if found is not None:
        return found
    with _locks.holding(module) as lock, lock:
        found = _loaded.get(module)
        if found is not None:
            return found
        say = progress or (lambda message: _log.info("sandbox.build", message=message))
        result = _build.build_component(module, progress=say)
        component = compile_component(result.wasm, result.directory / "component.cwasm", say)
        found = _loaded[module] = LoadedComponent(module, result.key, component, result.modules)
        return found


def compile_component(wasm: Path, compiled: Path, progress: Callable[[str], None]) -> wc.Component:
    """Compile ``wasm`` for this machine, or deserialize ``compiled`` if it fits."""
    if compiled.exists():
        try:
            return wc.Component.deserialize_file(engine(), str(compiled))
        except wasmtime.WasmtimeError:
            compiled.unlink(missing_ok=True)  # another wasmtime version or config
    progress(f"compiling {wasm.name} for this machine (a few seconds, cached after)")
    component = wc.Component(engine(), wasm.read_bytes())
    partial = compiled.with_name(f"{compiled.name}.{os.getpid()}.tmp")
    partial.write_bytes(component.serialize())
    partial.replace(compiled)
    return component
