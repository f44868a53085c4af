"""How a cell runs a sandboxed atom: its handler table and its instance factory.

The cell's loop is the same for native and sandboxed atoms. For a sandboxed
atom the handler table is a copy of the class's where each handler's ``fn``
forwards into the guest (a plain function for a handler that cannot suspend, so
an idle atom still answers inline; an ``async`` one otherwise, and always for
threaded atoms), while ``check`` keeps validating the arguments at the sender against the
real signature, and also checks that the message can cross the boundary at all.
The cell's ``instance`` is a :class:`~._instance.GuestAtom`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio

from .._atom import Atom, HandlerSpec, handler_table
from .._errors import AtomStopped
from .._ref import Ref
from ..runtime import lookup
from . import _engine, _value
from ._config import SandboxConfig
from ._errors import MessageNotPortable, SandboxError
from ._instance import GuestAtom, Tree
from ._manifest import is_stand_in, read_manifest, stand_in

if TYPE_CHECKING:
    from ..runtime import AtomCell, System

__all__ = [
    "SandboxRuntime",
    "component_class",
    "load_component",
    "prepare",
    "resolve_config",
    "runtime_for",
    "sandbox_table",
    "snapshot",
    "spawn_restored",
]

A = TypeVar("A", bound=Atom)

# A class's forwarding tables are cached on the class, by (inline, bundled), as
# its native table is (``_radon_handlers``): they live and die with the class,
# so classes made at run time (tests, factories) do not pile up in a registry.
_TABLES_ATTR = "_radon_sandbox_tables"


def _forwarder(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    async def forward(guest: GuestAtom, *args: Any, **kwargs: Any) -> Any:
        return await guest.call(name, args, kwargs)

    forward.__name__ = name
    forward.__wrapped__ = original  # type: ignore[attr-defined]  # error messages' signature
    return forward


def _sync_forwarder(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def forward(guest: GuestAtom, *args: Any, **kwargs: Any) -> Any:
        return guest.call_now(name, args, kwargs)

    forward.__name__ = name
    forward.__wrapped__ = original  # type: ignore[attr-defined]
    return forward


def _portable_check(
    original: Callable[..., None] | None, label: str, bundled: frozenset[str]
) -> Callable[..., None]:
    """The sender's check of a message for a sandboxed handler: the handler's own
    argument check, then a trial write in the value format (scalars skip it)."""
    is_fast = _value.is_fast

    def record_check(cls: type) -> None:
        module = cls.__module__
        if bundled and module not in bundled:
            raise MessageNotPortable(
                f"it holds a {cls.__qualname__} of module {module}, which the sandbox cannot "
                "import; send plain data, or records of the atom's own module"
            )

    writer = _value.Writer(_trial_ref, record_check=record_check)

    def check(*args: Any, **kwargs: Any) -> None:
        if original is not None:
            original(*args, **kwargs)
        if not kwargs and all(map(is_fast, map(type, args))):
            return  # scalars always cross (big ints and NaN are tagged)
        try:
            writer.message(args, kwargs)
        except Exception as exc:
            raise MessageNotPortable(
                f"a message for sandboxed handler {label} cannot cross the sandbox boundary: {exc}"
            ) from None

    return check


def _trial_ref(ref: Ref[Any]) -> list[Any]:
    return [0, ref.id, ref.name]


def sandbox_table(
    cls: type[Atom], *, inline: bool, bundled: frozenset[str] = frozenset()
) -> dict[Any, HandlerSpec]:
    """The class's handler table with every handler forwarded into the guest.

    With ``inline``, handlers that cannot suspend (plain ``def``, and ``async def``
    without an ``await``) get a plain forwarder, so that an idle atom answers an
    ask in the caller's task, as natively; other ``async def`` handlers get an
    ``async`` forwarder (a queued turn that may suspend in the guest).
    ``bundled`` names the modules the guest can import besides its standard
    library: a message needing any other fails at the sender.
    """
    tables: dict[tuple[bool, frozenset[str]], dict[Any, HandlerSpec]] | None
    tables = cls.__dict__.get(_TABLES_ATTR)
    if tables is None:
        tables = {}
        setattr(cls, _TABLES_ATTR, tables)
    cache_key = (inline, bundled)
    table = tables.get(cache_key)
    if table is not None:
        return table
    native = handler_table(cls)
    copies: dict[int, HandlerSpec] = {}
    table = {}
    for key, spec in native.items():
        copy = copies.get(id(spec))
        if copy is None:
            copy = HandlerSpec.__new__(HandlerSpec)
            copy.owner = spec.owner
            copy.name = spec.name
            copy.answers = spec.answers
            # As natively: a handler that cannot suspend (a plain def, or an
            # async def without an await) runs inline on an idle atom.
            sync = inline and spec.never_suspends
            make = _sync_forwarder if sync else _forwarder
            copy.fn = make(spec.name, spec.fn)
            copy.is_async = not sync
            copy.never_suspends = sync
            copy.check = _portable_check(spec.check, f"{cls.__name__}.{spec.name}", bundled)
            copies[id(spec)] = copy
        table[key] = copy
    tables[cache_key] = table
    return table


class SandboxRuntime:
    """The :class:`~radon_actors.runtime.InstanceRuntime` of one sandboxed atom
    (``AtomCell.runtime``): its guest-forwarding handler table and component."""

    __slots__ = ("config", "loaded", "restore_state", "table", "tree")

    def __init__(
        self, cls: type[Atom], loaded: _engine.LoadedComponent, config: SandboxConfig
    ) -> None:
        self.loaded = loaded
        self.config = config
        self.restore_state: str | None = None
        # The sandboxed tree whose quota this atom counts against (None: it is
        # a tree's root, spawned by trusted code; its instances make their own).
        self.tree: Tree | None = None
        # Threaded atoms must await every guest call (it runs on a worker thread).
        self.table = sandbox_table(cls, inline=not config.threaded, bundled=loaded.modules)

    async def start(self, cell: AtomCell) -> GuestAtom:
        """A fresh guest instance of the cell's atom, constructed and started."""
        if self.restore_state is not None:
            # A restored atom restarts from its snapshot: it has no spawn arguments.
            return await self.restore(cell, self.restore_state)
        guest = GuestAtom(cell, self.loaded, self.config, self.tree)
        await guest.begin()
        return guest

    async def restore(self, cell: AtomCell, state: str) -> GuestAtom:
        """A guest instance of the cell's atom rebuilt from :func:`snapshot` output
        (its constructor and ``on_start`` do not run)."""
        guest = GuestAtom(cell, self.loaded, self.config, self.tree)
        await guest.restore(state)
        return guest


def resolve_config(cls: type[Any], sandbox: Any) -> SandboxConfig | None:
    """``spawn(sandbox=...)``, else the class's ``sandbox`` attribute, as a config."""
    if sandbox is None:
        sandbox = getattr(cls, "sandbox", False)
    if sandbox is False:
        return None
    if sandbox is True:
        return SandboxConfig()
    if isinstance(sandbox, SandboxConfig):
        return sandbox
    raise TypeError(f"sandbox= takes a bool or a SandboxConfig, not {sandbox!r}")


async def runtime_for(cls: type[Atom], sandbox: Any) -> SandboxRuntime | None:
    """What ``spawn(..., sandbox=...)`` asks for: None (native) or a ready runtime."""
    if isinstance(sandbox, SandboxRuntime):
        return sandbox
    config = resolve_config(cls, sandbox)
    if config is None:
        if is_stand_in(cls):
            raise SandboxError(
                f"{cls.__qualname__} is an atom class of a WebAssembly component: it runs only "
                "sandboxed (sandbox=True or a SandboxConfig)"
            )
        return None
    return await prepare(cls, config)


async def load_component(component: Any) -> _engine.LoadedComponent:
    """The component at a path (stored in the cache by its content hash) or with
    a content hash this machine's cache holds."""
    from ._cache import BadComponent, by_hash, store_verified

    text = os.fspath(component) if isinstance(component, (str, os.PathLike)) else None
    if text is None:
        raise TypeError(f"a component is a path or a content hash, not {component!r}")
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        found = await by_hash(text)
        if found is None:
            raise SandboxError(
                f"no component with hash {text} in this machine's cache; pass its .wasm path"
            )
        return found
    path = Path(text)
    try:
        data = await trio.to_thread.run_sync(path.read_bytes)
    except OSError as exc:
        raise SandboxError(f"cannot read the component {path}: {exc.strerror or exc}") from None
    h = hashlib.sha256(data).hexdigest()
    try:
        return await store_verified(h, data, f"component-{h[:12]}", [])
    except BadComponent as exc:  # pragma: no cover - hashed just now
        raise SandboxError(str(exc)) from None
    except Exception as exc:
        raise SandboxError(f"{path} is not a component this host can run: {exc}") from None


async def component_class(component: Any, atom: str) -> type[Atom]:
    """The stand-in class of atom class ``atom`` of ``component`` (see
    :func:`load_component`), built from its manifest."""
    loaded = await load_component(component)
    await trio.to_thread.run_sync(read_manifest, loaded)
    return stand_in(loaded, atom)


async def prepare(cls: type[Atom], config: SandboxConfig) -> SandboxRuntime:
    """Load (building and compiling on first use) the component of ``cls``'s module;
    a stand-in (``_manifest``) runs the component it came from."""
    if is_stand_in(cls):
        loaded: _engine.LoadedComponent = cls._radon_component[0]  # type: ignore[attr-defined]
        return SandboxRuntime(cls, loaded, config)
    module = cls.__module__
    found = _engine.loaded(module)
    if found is None:
        found = await trio.to_thread.run_sync(_engine.load, module)
    return SandboxRuntime(cls, found, config)


# ----------------------------------------------------------------------
# Snapshot and restore (used to move an atom: placement, recovery)
# ----------------------------------------------------------------------
def _guest_of(ref: Ref[Any]) -> tuple[AtomCell, GuestAtom]:
    cell = lookup(ref.id)
    if cell is None or cell.instance is None:
        raise AtomStopped(f"atom {ref.name or ref.id} is not running here; nothing to snapshot")
    guest = cell.instance
    if not isinstance(guest, GuestAtom):
        raise SandboxError(
            f"atom {ref.name or ref.id} is not sandboxed; only sandboxed atoms can be "
            "snapshotted (spawn it with sandbox=True)"
        )
    return cell, guest


async def snapshot(ref: Ref[Any]) -> str:
    """The encoded state of the sandboxed atom behind ``ref``, taken between turns.

    An idle atom is snapshotted at once. Mid-turn (an ``async`` handler suspended
    on an ``ask``, a failure being handled, ``on_start`` running), the snapshot
    waits for the turn boundary and is taken there by the atom's own task, before
    its next message: the state it returns is the state after that turn, as when
    migration stops an atom.

    Raises :class:`AtomStopped` if the atom is not running in this process, or
    stops before the turn ends (a stop requested earlier is handled first);
    :class:`SandboxError` if it is not sandboxed. Cancelling the wait withdraws
    the request: the atom is not held up, and a snapshot its task has already
    started is finished there and discarded.
    """
    cell, guest = _guest_of(ref)
    if not cell.busy:
        return await guest.snapshot()
    return await _snapshot_at_turn_boundary(cell)


async def _snapshot_at_turn_boundary(cell: AtomCell) -> str:
    done = trio.Event()
    taken: list[outcome.Outcome[str]] = []
    withdrawn = False

    async def take() -> None:
        # Runs in the atom's task as a control message, at the turn boundary.
        if withdrawn:
            return
        guest = cell.instance
        if not isinstance(guest, GuestAtom):  # pragma: no cover - restarted natively
            taken.append(outcome.Error(SandboxError(f"{cell.label()} is not sandboxed")))
        else:
            try:
                taken.append(outcome.Value(await guest.snapshot()))
            except Exception as exc:  # the caller's error, not the atom's
                taken.append(outcome.Error(exc))
        done.set()

    def stopped(_cell: AtomCell, _reason: BaseException | None) -> None:
        done.set()

    if not cell.call_between_turns(take):
        await trio.lowlevel.checkpoint()
        raise AtomStopped(f"{cell.label()} stopped; nothing to snapshot")
    cell.add_stop_callback(stopped)
    try:
        await done.wait()
    except BaseException:
        withdrawn = True  # cancelled: the atom's task skips the request
        raise
    finally:
        with contextlib.suppress(ValueError):
            cell.remove_stop_callback(stopped)
    if not taken:
        raise AtomStopped(f"{cell.label()} stopped before its turn ended; nothing to snapshot")
    return taken[0].unwrap()


async def spawn_restored(
    system: System,
    cls: type[A],
    state: str,
    *,
    name: str | None = None,
    config: SandboxConfig | None = None,
) -> Ref[A]:
    """Spawn a sandboxed ``cls`` atom rebuilt from :func:`snapshot` output.

    The constructor and ``on_start`` do not run; a later restart (after a crash)
    restores the same snapshot again.
    """
    runtime = await prepare(cls, config or resolve_config(cls, None) or SandboxConfig())
    runtime.restore_state = state
    return await system.spawn_cell(cls, (), {}, name=name, sandbox=runtime)
