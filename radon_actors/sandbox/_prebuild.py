"""``prebuild``: get atoms' WebAssembly components ready now, with progress.

The first sandboxed spawn of a module builds its component (componentize-py,
10-60 s on a small machine) and compiles it for this machine (seconds); both are
cached on disk, so it happens once per machine and source version. The runtime
does that work quietly on a worker thread, reporting it only as log events
(``sandbox.build``), as a library should. An application that wants to show it,
or to pay it at start-up rather than on the first spawn, calls :func:`prebuild`
with a ``progress`` callback; ``radon build`` does the same from the shell.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import trio

from .._atom import Atom
from . import _engine

__all__ = ["prebuild"]


async def prebuild(*atoms: type[Atom] | str, progress: Callable[[str], None] | None = None) -> None:
    """Build (if needed), compile (if needed) and load the sandbox components of
    ``atoms`` (atom classes, or names of their modules) now.

    Each step is reported to ``progress`` (called in the trio thread; for
    example ``functools.partial(print, file=sys.stderr)``): a cold cache reports
    the build and the compilation, a warm one only that the component is ready.
    Later sandboxed spawns of these modules, here or on worker hosts of this
    machine, start at once. Raises :class:`~radon_actors.SandboxBuildError` for a
    module that cannot be sandboxed (a script's ``__main__``, a native import).
    """
    modules: list[str] = []
    for atom in atoms:
        if isinstance(atom, str):
            module = atom
        elif isinstance(atom, type) and issubclass(atom, Atom):
            module = atom.__module__
        else:
            raise TypeError(f"prebuild() takes Atom subclasses or module names, not {atom!r}")
        if module not in modules:
            modules.append(module)
    token = trio.lowlevel.current_trio_token()

    def report(message: str) -> None:  # from the build's worker thread
        if progress is not None:
            trio.from_thread.run_sync(progress, message, trio_token=token)

    for module in modules:
        cached = _engine.loaded(module) is not None
        loaded = await trio.to_thread.run_sync(partial(_engine.load, module, progress=report))
        if progress is not None:
            where = "already loaded" if cached else f"cache entry {loaded.key}"
            progress(f"{module}: component ready ({where})")
