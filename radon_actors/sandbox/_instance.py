"""``GuestAtom``: one sandboxed atom's WebAssembly instance, driven from its cell.

A :class:`GuestAtom` is what an :class:`~radon_actors.runtime.AtomCell` holds as
its ``instance`` for a sandboxed atom: its own store (memory cap, fuel), one
instance of the atom's component, and the host side of its timers. The cell
calls it as it would call a native instance's handlers (``call``, ``call_now``)
and lifecycle (``begin``, ``on_stop``, ``snapshot``, ``restore``).

A turn may suspend in the guest: the guest returns ``"s"``, the host fetches the
request (``pending``), performs it on trio (``_hostcalls.perform``) and resumes
the guest with the reply, until the turn ends with a result or an exception.
After a trap the instance is poisoned (wasmtime refuses to enter it again), so
``crashed`` says why and every later call fails fast; the supervisor restarts
the atom with a fresh instance.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import trio
import wasmtime
from wasmtime import component as wc

from . import _hostcalls
from ._boundary import HostSide, from_host_form, to_host_form
from ._calls import export, raise_error, raw_set_fuel
from ._config import SandboxConfig
from ._engine import LoadedComponent, engine
from ._errors import MessageNotPortable, SandboxCrashed, SandboxDenied, SandboxError
from ._outcomes import SUSPENDED, crash_reason, malformed
from ._value import Limits, ValueRejected, record_name

if TYPE_CHECKING:
    from ..runtime import AtomCell, TimerHandle

__all__ = ["GuestAtom", "Tree"]

T = TypeVar("T")
_limiter: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("radon_sandbox")


def _thread_limiter() -> trio.CapacityLimiter:
    """One worker thread per core for threaded atoms' guest calls, per trio run."""
    try:
        return _limiter.get()
    except LookupError:
        limiter = trio.CapacityLimiter(os.cpu_count() or 1)
        _limiter.set(limiter)
        return limiter


class Tree:
    """The quota of one sandboxed tree: a sandboxed atom that trusted code
    spawned, and the sandboxed atoms below it that sandboxed atoms spawned.

    Each live instance reserves its full memory cap, so the tree's memory is
    bounded by ``SandboxConfig.tree_memory`` whatever its atoms do; a spawn that
    would pass it, or ``max_descendants``, is refused before it starts.
    """

    __slots__ = ("descendants", "max_descendants", "memory", "tree_memory")

    def __init__(self, config: SandboxConfig) -> None:
        self.tree_memory = config.tree_memory
        self.max_descendants = config.max_descendants
        self.memory = config.memory  # the root's own cap
        self.descendants = 0

    def reserve(self, memory: int) -> None:
        """Count one more live descendant with memory cap ``memory``, or raise
        :class:`SandboxDenied` (nothing counted)."""
        if self.descendants >= self.max_descendants:
            raise SandboxDenied(
                f"this sandboxed tree already holds {self.descendants} live descendants, its "
                f"quota (SandboxConfig.max_descendants={self.max_descendants})"
            )
        if self.memory + memory > self.tree_memory:
            raise SandboxDenied(
                f"a child with a {memory:,}-byte memory cap would take this sandboxed tree "
                f"past its total of {self.tree_memory:,} bytes ({self.memory:,} reserved by "
                "its live atoms; SandboxConfig.tree_memory)"
            )
        self.descendants += 1
        self.memory += memory

    def release(self, memory: int) -> None:
        """A descendant counted with :meth:`reserve` stopped."""
        self.descendants -= 1
        self.memory -= memory


class GuestAtom:
    """One sandboxed atom's WebAssembly instance, driven from its cell."""

    __slots__ = (
        "__weakref__",
        "_context",
        "_fuel",
        "_funcs",
        "_handle",
        "_lock",
        "_read",
        "_read_message",
        "_store",
        "_timer_ids",
        "_write_message",
        "cell",
        "config",
        "crashed",
        "loaded",
        "logs",
        "on_demand",
        "sends",
        "side",
        "timers",
        "tree",
        "turn_bytes",
    )

    def __init__(
        self,
        cell: AtomCell,
        loaded: LoadedComponent,
        config: SandboxConfig,
        tree: Tree | None = None,
    ) -> None:
        self.cell = cell
        # The quota of the sandboxed tree this atom belongs to (its own, at a root).
        self.tree = tree if tree is not None else Tree(config)
        self.sends = 0  # messages sent in the current turn (SandboxConfig.max_sends)
        self.turn_bytes = 0  # what the guest handed the host this turn (max_turn_bytes)
        self.logs = 0  # log events of the current turn (SandboxConfig.max_logs)
        self.on_demand = 0  # on-demand atoms referenced (SandboxConfig.max_on_demand)
        self.loaded = loaded
        self.config = config
        self.crashed: str | None = None
        self.timers: dict[int, TimerHandle] = {}
        limits = Limits(config.max_value, config.max_depth, config.max_items)
        side = HostSide(cell.ref, limits)
        self.side = side
        self._read = side.reader.value
        self._read_message = side.reader.message
        self._write_message = side.writer.message
        self._timer_ids = itertools.count(1)
        store = wasmtime.Store(engine())
        store.set_wasi(wasmtime.WasiConfig())  # no files, no sockets, no environment
        store.set_limits(memory_size=config.memory)
        store.set_fuel(config.fuel)
        # The store's context pointer is fixed for the store's life: host imports
        # find their guest by it (no per-call bookkeeping).
        self._context: int = ctypes.cast(store._context(), ctypes.c_void_p).value or 0
        _hostcalls.register(self._context, self)
        instance = loaded.linker.instantiate(store, loaded.component)
        funcs: dict[str, Callable[..., Any]] = {}
        for name, idx in loaded.exports.items():
            func = instance.get_func(store, idx)
            if func is None:  # pragma: no cover - checked at load
                raise SandboxError(f"export {name!r} is not a function")
            funcs[name] = export(func, store)
        self._store = store
        self._funcs = funcs
        self._handle = funcs["handle"]
        self._fuel = config.fuel
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<GuestAtom {self.cell.cls.__name__} {self.cell.id}>"

    # calls into the guest ------------------------------------------------
    def _refuel(self) -> None:
        """A fresh turn's CPU budget (``store.set_fuel``, minus its Python layers)."""
        error = raw_set_fuel(self._context, self._fuel)
        if error:  # pragma: no cover - fuel metering is always on in our engine
            raise_error(error)

    def _crashed_earlier(self) -> SandboxCrashed:
        return SandboxCrashed(
            f"the sandbox of {self.cell.label()} crashed earlier ({self.crashed})"
        )

    def _fail(self, exc: BaseException) -> NoReturn:
        """Raise what the failed call into the guest that raised ``exc`` means (call
        it from the ``except`` block); the instance cannot be entered again."""
        if isinstance(exc, (wasmtime.WasmtimeError, wasmtime.Trap)):
            self.crashed = crash_reason(exc, self.config)
            raise SandboxCrashed(
                f"the sandbox stopped {self.cell.label()}: {self.crashed}"
            ) from None
        # A host import raised (wasmtime-py turns that into a trap and re-raises
        # it here): the instance cannot be entered again either.
        self.crashed = f"a host import raised {exc!r}"
        raise exc

    def _invoke_sync(self, name: str, *params: Any) -> Any:
        if self.crashed is not None:
            raise self._crashed_earlier()
        try:
            return self._funcs[name](self._store, *params)
        except BaseException as exc:
            self._fail(exc)

    async def _invoke(self, name: str, *params: Any) -> Any:
        if self.config.threaded:
            # A store must never be entered from two threads at once: the cell's
            # turns are sequential, but a snapshot taken from another task could
            # otherwise overlap a turn that started while it ran.
            async with self._lock:
                return await trio.to_thread.run_sync(
                    self._invoke_sync, name, *params, limiter=_thread_limiter()
                )
        return self._invoke_sync(name, *params)

    def on_trio(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` where trio state may be touched (a host import's body)."""
        if self.config.threaded:
            return trio.from_thread.run_sync(fn, *args)
        return fn(*args)

    def outcome(self, out: str) -> Any:
        """The value of a finished call (``"d"``), or :data:`SUSPENDED` (``"s"``);
        raises the guest's exception (``"f"``) or the error of a malformed or
        unreadable outcome. Nothing the guest wrote is read past the limits of
        its config, nor into anything but plain data, granted Refs, and
        exceptions and records the host knows (``_boundary``)."""
        tag = out[:1]
        if tag == "d":
            try:
                return self._read(out, 1)
            except ValueRejected as exc:
                raise MessageNotPortable(
                    f"{self.cell.label()} returned a value the host refuses: {exc}"
                ) from None
        if tag == "f":
            raise self.exception(out, 1)
        if tag != "s":
            raise malformed(out)
        return SUSPENDED

    def exception(self, text: str, start: int = 0) -> BaseException:
        """The exception a guest reported (an ``$error`` value), to raise."""
        try:
            exc = self._read(text, start)
        except ValueRejected as err:
            return SandboxError(f"{self.cell.label()} failed, and its error is unreadable: {err}")
        if not isinstance(exc, BaseException):
            return SandboxError(
                f"{self.cell.label()} reported a failure that is not an exception: {str(exc)[:200]}"
            )
        return exc

    async def _settle(self, out: str) -> Any:
        """Follow one guest call to its end, performing the operations it awaits."""
        while (value := self.outcome(out)) is SUSPENDED:
            request = await self._invoke("pending")
            if request is None:
                raise SandboxError("the guest suspended a turn but reports no pending operation")
            reply = await _hostcalls.perform(self, request.op)
            out = await self._invoke("resume", request.token, reply)
        return value

    # what the cell calls -------------------------------------------------
    async def begin(self) -> None:
        """Build the atom inside the guest (constructor, then ``on_start``)."""
        cell = self.cell
        try:
            message = self._write_message(cell.args, cell.kwargs)
        except Exception as exc:
            raise MessageNotPortable(
                f"the spawn arguments of {cell.label()} cannot enter the sandbox: {exc}"
            ) from exc
        self._store.set_fuel(self.config.fuel)
        out = await self._invoke("create", cell.id, cell.name, record_name(cell.cls), message)
        await self._settle(out)
        self._store.set_fuel(self.config.fuel)
        await self._settle(await self._invoke("start"))

    async def restore(self, state: str) -> None:
        """Rebuild the atom from :meth:`snapshot` output, without its constructor."""
        cell = self.cell
        guest_state = from_host_form(self.side, state)
        self._store.set_fuel(self.config.fuel)
        out = await self._invoke("restore", cell.id, cell.name, record_name(cell.cls), guest_state)
        await self._settle(out)

    async def call(self, handler: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One turn: run ``handler`` in the guest, with a fresh fuel budget."""
        message = self._write_message(args, kwargs)
        self._refuel()
        self.sends = self.logs = self.turn_bytes = 0
        if self.config.threaded:
            out = await self._invoke("handle", handler, message)
        else:
            out = self._invoke_sync("handle", handler, message)
        if out[:1] == "d":  # the common end of a turn, without _settle's frames
            try:
                return self._read(out, 1)
            except ValueRejected:
                pass  # outcome() raises it with the atom's name
        return await self._settle(out)

    def call_now(self, handler: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """One turn of a handler that cannot suspend, run right here (inline).

        The hot path of a sandboxed ask: the common steps are written inline."""
        if self.crashed is not None:
            raise self._crashed_earlier()
        message = self._write_message(args, kwargs)
        self.sends = self.logs = self.turn_bytes = 0
        if raw_set_fuel(self._context, self._fuel):  # pragma: no cover
            self._refuel()  # raises the error
        try:
            out: str = self._handle(self._store, handler, message)
        except BaseException as exc:
            self._fail(exc)
        if out[:1] == "d":
            try:
                return self._read(out, 1)
            except ValueRejected:
                pass  # outcome() raises it with the atom's name
        self.outcome(out)  # raises unless the guest suspended the turn
        raise SandboxError(
            f"handler {handler!r} of {self.cell.label()} has no await of its own but "
            "returned an awaitable that waits on the host; declare it async (`async def` "
            "in Python, an `async` method in JavaScript) and await it in its body"
        )

    async def on_stop(self) -> None:
        """The atom's ``on_stop``, run in the guest (skipped after a crash)."""
        if self.crashed is not None:
            return
        self._store.set_fuel(self.config.fuel)
        await self._settle(await self._invoke("finish"))

    async def snapshot(self) -> str:
        """The atom's state (between turns only), in host form (``_boundary``):
        what :meth:`restore` takes, here or on another host."""
        self._store.set_fuel(self.config.fuel)
        out = await self._invoke("snapshot")
        if isinstance(out, wc.Variant):  # result<payload, payload> lifts tagged
            if out.tag == "err":
                raise self.exception(str(out.payload))
            out = out.payload
        try:
            return to_host_form(self.side, str(out))
        except ValueRejected as exc:
            raise MessageNotPortable(
                f"the snapshot of {self.cell.label()} is unreadable: {exc}"
            ) from None

    def timer_table(self) -> tuple[dict[int, TimerHandle], int]:
        """The host side of the guest's timers, by the numbers the guest holds,
        and the next number: what a move carries beside :meth:`snapshot`."""
        return dict(self.timers), next(self._timer_ids)

    def live_timers(self) -> int:
        """How many of the guest's timers can still fire (spent ones are dropped)."""
        timers = self.timers
        for timer_id in [t for t, handle in timers.items() if not handle.active]:
            del timers[timer_id]
        return len(timers)

    def add_timer(self, handle: TimerHandle) -> int:
        """File a host timer under a fresh number, the one the guest holds."""
        timer_id = next(self._timer_ids)
        self.timers[timer_id] = handle
        return timer_id

    def adopt_timers(self, timers: dict[int, TimerHandle], next_id: int) -> None:
        """Take over :meth:`timer_table` output (its handles re-armed here), so
        the restored guest's timer numbers name them."""
        self.timers.update(timers)
        self._timer_ids = itertools.count(next_id)
