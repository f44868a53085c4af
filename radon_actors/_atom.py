"""``Atom``, the ``@handler`` marker, and the per-class handler table.

An atom is an ordinary Python object whose ``@handler`` methods are the only way
in. The class knows nothing about trio, mailboxes or hosts: everything that needs
the runtime goes through ``self._radon_ctx``, an object the runtime installs
before ``__init__`` runs. That indirection is what lets the *same* class run
natively on trio or inside the WebAssembly guest, where a different context
object forwards the calls across the sandbox boundary.

This module is imported inside the WebAssembly guest: standard library only.
"""

from __future__ import annotations

import dis
import importlib
import inspect
from collections.abc import Awaitable, Callable
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    ParamSpec,
    Protocol,
    TypeVar,
    TypeVarTuple,
    overload,
)

from ._errors import BadArguments, HandlerNotFound, NotSpawned

if TYPE_CHECKING:
    from ._ref import Ref

__all__ = ["Atom", "Rejection", "Timer", "handler"]

F = TypeVar("F", bound=Callable[..., Any])
A = TypeVar("A", bound="Atom")
P = ParamSpec("P")
Ts = TypeVarTuple("Ts")

_HANDLER_MARK = "__radon_handler__"
_ANSWERS_MARK = "__radon_answers__"


class Rejection(Exception):
    """An exception that is an answer, not a crash: subclass it for business errors.

    A handler that raises a ``Rejection`` (``InsufficientFunds``, ``NotFound``...)
    refuses the message: the asker gets the exception, and the atom carries on
    with its state, its mailbox and its children untouched. No crash report is
    logged, no directive is asked for and the supervisor never hears of it, so
    no restart (and, under ``one_for_all``, no sibling restart) wipes any state.
    That is Erlang's ``{reply, {error, Reason}, State}`` and Akka's
    ``StatusReply.Error``, with Python's exceptions: raise it *before* changing
    the state, since what the handler changed before raising stays changed.

    A rejected tell has nobody to answer: it is logged (``atom.rejected``, level
    info) and dropped. For exception types you do not own (``KeyError``...),
    declare them per handler instead: ``@handler(raises=KeyError)``.
    """


ExceptionTypes = type[Exception] | tuple[type[Exception], ...]
"""What ``@handler(raises=...)`` takes: one exception class or a tuple of them."""


@overload
def handler(fn: F, /) -> F: ...
@overload
def handler(*, raises: ExceptionTypes) -> Callable[[F], F]: ...
def handler(fn: F | None = None, /, *, raises: ExceptionTypes = ()) -> F | Callable[[F], F]:
    """Mark a method of an :class:`Atom` subclass as callable by messages.

    Both ``async def`` and plain ``def`` methods can be handlers. Only marked
    methods can be reached through a :class:`~radon_actors.Ref`: every other
    method stays private to the atom. The function is returned unchanged, so
    ``Counter.incr`` keeps its type and can be passed to ``ref.ask``.

    ``@handler(raises=(KeyError, ValueError))`` declares the exceptions this
    handler raises *as answers*: like a :class:`Rejection`, they go to the asker
    and the atom carries on, where any other exception crashes the atom and its
    supervisor decides what happens (by default: a restart with fresh state).
    """
    answers = _exception_types(raises)
    if fn is None:

        def mark(f: F) -> F:
            return _mark(f, answers)

        return mark
    return _mark(fn, answers)


def _exception_types(raises: Any) -> tuple[type[Exception], ...]:
    types = raises if isinstance(raises, tuple) else (raises,)
    for t in types:
        if not (isinstance(t, type) and issubclass(t, Exception)):
            raise TypeError(
                f"@handler(raises=...) takes Exception subclasses (one, or a tuple), not {t!r}"
            )
    return types


def _mark(fn: F, answers: tuple[type[Exception], ...]) -> F:
    if not callable(fn) or isinstance(fn, (staticmethod, classmethod)):
        raise TypeError(f"@handler takes a plain method, not {fn!r}")
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise TypeError(
            f"@handler {fn.__qualname__} is a generator; handlers must return a value "
            "(use a plain def or an async def)"
        )
    setattr(fn, _HANDLER_MARK, True)
    if answers:
        setattr(fn, _ANSWERS_MARK, answers)
    return fn


def handler_name(h: Any) -> str:
    """The name a message carries for handler ``h`` (a name, or a handler function).

    Messages that cross a process or the sandbox boundary name their handler by
    ``str``: the receiving side looks it up in its own table.
    """
    if isinstance(h, str):
        return h
    name = getattr(h, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"a message names a handler by str or handler function, not {h!r}")
    return name


class SandboxOptions(Protocol):
    """What ``sandbox=`` takes besides a bool: a :class:`~radon_actors.SandboxConfig`.

    A protocol so that this module, which the guest imports, names no host-side type.
    """

    @property
    def fuel(self) -> int: ...

    @property
    def memory(self) -> int: ...

    @property
    def threaded(self) -> bool: ...


class Timer(Protocol):
    """A scheduled message to the atom itself (see :meth:`Atom.send_after`)."""

    def cancel(self) -> None:
        """Cancel the timer. A message it already queued but that has not run yet is
        dropped too, so nothing arrives after ``cancel()`` returns."""

    @property
    def active(self) -> bool:
        """True until the timer fires (one-shot) or is cancelled."""


class _AtomContext(Protocol):
    """What an atom needs from whichever runtime hosts it (native or guest)."""

    @property
    def ref(self) -> Ref[Any]: ...
    @property
    def log(self) -> Any: ...
    @property
    def key(self) -> str | None: ...
    def get(self, cls: type[Any], key: str) -> Ref[Any]: ...
    async def spawn(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        sandbox: bool | SandboxOptions | None = None,
    ) -> Ref[Any]: ...
    def stop(self) -> None: ...
    def send_after(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Timer: ...
    def send_every(
        self, interval: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Timer: ...
    async def remind(
        self, name: str, h: Any, args: tuple[Any, ...], due: float, period: float | None
    ) -> None: ...
    async def forget_reminder(self, name: str) -> bool: ...
    async def read_state(self, name: str) -> tuple[Any, str] | None: ...
    async def write_state(self, name: str, doc: Any, etag: str | None) -> str: ...
    async def clear_state(self, name: str, etag: str | None) -> str: ...
    def stash(self) -> None: ...
    def unstash_all(self) -> None: ...
    def watch(self, ref: Ref[Any], h: Any) -> None: ...
    def unwatch(self, ref: Ref[Any]) -> None: ...


class _Unspawned:
    """The context of an atom built directly: every use explains the mistake."""

    def __getattr__(self, name: str) -> Any:
        raise NotSpawned(
            "this atom was constructed directly; create atoms with "
            "`await system.spawn(Cls, ...)` (or `await self.spawn(Cls, ...)` in a handler)"
        )


_UNSPAWNED: Any = _Unspawned()


class Atom:
    """Base class of atoms: isolated, stateful objects that only talk by messages.

    Subclass it, keep state in ordinary attributes, and mark the methods that
    messages may call with :func:`handler`. The runtime runs one message at a time
    per atom (a *turn*): while a handler awaits, the atom's next message waits.

    Inside a handler the atom can use :attr:`ref`, :attr:`log`, :meth:`spawn`,
    :meth:`stop`, the timers :meth:`send_after` / :meth:`send_every`, and
    :meth:`stash` / :meth:`unstash_all`, death watch :meth:`watch` /
    :meth:`unwatch`, its :attr:`key`, on-demand atoms' Refs :meth:`on_demand`, and
    (an on-demand atom) the reminders
    :meth:`remind` / :meth:`forget_reminder`. The names of those members, and of
    ``on_start`` / ``on_stop``, are reserved.
    """

    # Installed by the runtime before ``__init__``; a class attribute so that an
    # atom built by hand gets a helpful error instead of an AttributeError.
    _radon_ctx: _AtomContext = _UNSPAWNED
    # The durable states the class declares (``radon_actors.state``).
    _radon_states: ClassVar[tuple[Any, ...]] = ()

    def on_start(self) -> Awaitable[None] | None:
        """Called once, before the first message (sync or ``async``).

        An exception here makes ``spawn`` raise :class:`~radon_actors.SpawnError`.
        """
        return None

    def on_stop(self) -> Awaitable[None] | None:
        """Called once when the atom stops, after its children have stopped."""
        return None

    @property
    def ref(self) -> Ref[Any]:
        """This atom's own :class:`~radon_actors.Ref`; safe to hand to others."""
        return self._radon_ctx.ref

    @property
    def key(self) -> str | None:
        """This atom's key: an on-demand atom's (``system.get(cls, key)``), else the
        name it was spawned with (None without one). Durable state is stored under it."""
        return self._radon_ctx.key

    @property
    def log(self) -> Any:
        """A structlog-style logger bound with this atom's ``atom_id``, ``atom_name``
        and ``atom_class`` (``bind``, ``debug`` ... ``critical``, ``exception``).
        Quiet until the application configures structlog or ``logging``."""
        return self._radon_ctx.log

    def on_demand(self, cls: type[A], key: str, /) -> Ref[A]:
        """The Ref of the on-demand atom ``cls`` with ``key``, as ``System.get``
        gives it; on a worker host, the same atom its system's ``get`` reaches.
        (Not ``get``: that is a common handler name.)"""
        ref: Ref[A] = self._radon_ctx.get(cls, key)
        return ref

    # Typed as ``System.spawn`` is (see there): with an option, the positional
    # arguments are the whole constructor call; without, the ParamSpec checks all.
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None,
        sandbox: bool | SandboxOptions | None = None,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(
        self,
        cls: Callable[[*Ts], A],
        /,
        *args: *Ts,
        name: str | None = None,
        sandbox: bool | SandboxOptions | None,
        **kwargs: Any,
    ) -> Ref[A]: ...
    @overload
    async def spawn(self, cls: Callable[P, A], /, *args: P.args, **kwargs: P.kwargs) -> Ref[A]: ...

    async def spawn(  # type: ignore[misc]  # the options are reserved beside P.kwargs
        self,
        cls: type[A],
        /,
        *args: Any,
        name: str | None = None,
        sandbox: bool | SandboxOptions | None = None,
        **kwargs: Any,
    ) -> Ref[A]:
        """Spawn a child atom built with ``cls(*args, **kwargs)``; it stops before
        this atom does.

        ``sandbox`` means what it means for ``System.spawn``: ``None`` (the default)
        follows the child class's ``sandbox`` attribute, ``True`` or a
        :class:`~radon_actors.SandboxConfig` runs the child in WebAssembly,
        ``False`` natively. A parent chooses per child because the class default is
        a guess about every use of the class, the parent knows this one. Inside a
        sandbox a parent can pass ``None``, ``True`` or ``False`` (the host's
        default limits apply; see docs/sandbox.md).

        ``name`` and ``sandbox`` are reserved (never passed to the constructor).
        Type checkers check the constructor arguments as for ``System.spawn``: all
        of them without options; with ``name`` or ``sandbox``, the positional
        ones as the complete call (constructor keywords beside them are not
        checked, and a required parameter given by keyword there is refused).
        """
        return await self._radon_ctx.spawn(cls, args, kwargs, name, sandbox)

    def stop(self) -> None:
        """Stop this atom once the current turn ends.

        Messages still queued are not run: asks fail with
        :class:`~radon_actors.AtomStopped` and tells go to the dead letters.
        """
        self._radon_ctx.stop()

    def send_after(self, delay: float, h: Any, /, *args: Any, **kwargs: Any) -> Timer:
        """Tell this atom ``h(*args, **kwargs)`` once, ``delay`` seconds from now."""
        return self._radon_ctx.send_after(delay, h, args, kwargs)

    def send_every(self, interval: float, h: Any, /, *args: Any, **kwargs: Any) -> Timer:
        """Tell this atom ``h(*args, **kwargs)`` every ``interval`` seconds (fixed
        rate; a tick that finds the mailbox full is skipped and logged)."""
        return self._radon_ctx.send_every(interval, h, args, kwargs)

    async def remind(
        self, name: str, h: Any, /, *args: Any, due: float, period: float | None = None
    ) -> None:
        """A reminder: tell this on-demand atom ``h(*args)`` ``due`` seconds from
        now (then every ``period`` seconds, if given), even if it was collected
        meanwhile or the process restarted (reminders are kept in the state
        store). Replaces this atom's reminder called ``name``, if any.

        Use a timer (:meth:`send_after`) for what need not outlive the
        activation: it costs nothing to store. See docs/durability.md.
        """
        await self._radon_ctx.remind(name, h, args, due, period)

    async def forget_reminder(self, name: str) -> bool:
        """Remove this atom's reminder ``name``; False if it had none of that name."""
        return await self._radon_ctx.forget_reminder(name)

    def stash(self) -> None:
        """Set the message being handled aside, unanswered, until :meth:`unstash_all`.

        Its asker keeps waiting. Typical use: an atom that is not ready yet stashes
        requests and releases them in their original order once it is.
        """
        self._radon_ctx.stash()

    def unstash_all(self) -> None:
        """Put every stashed message back at the head of the mailbox, in order."""
        self._radon_ctx.unstash_all()

    def watch(self, ref: Ref[Any], h: Any, /) -> None:
        """Death watch: have ``h(down)`` told to this atom when ``ref``'s atom crashes
        or stops.

        ``h`` is one of this atom's handlers taking one
        :class:`~radon_actors.Down` argument. It gets a notice per crash that the
        watched atom survived (``down.stopped`` False) and a last one when it stops
        (``down.stopped`` True, ``down.reason`` None for a normal stop). Watching an
        atom that is not running notifies at once; watching twice is watching once.
        """
        self._radon_ctx.watch(ref, h)

    def unwatch(self, ref: Ref[Any], /) -> None:
        """Stop watching ``ref`` (see :meth:`watch`); no notice arrives afterwards
        unless one was already queued."""
        self._radon_ctx.unwatch(ref)


class _Default:
    """Stands in for default values in argument-checking stubs."""

    def __repr__(self) -> str:
        return "__radon_default__"


class HandlerSpec:
    """One handler of one atom class, prepared for the message path.

    ``check`` is a compiled stub with the handler's exact parameter list and an
    empty body: calling it validates a message's arguments in well under a
    microsecond, at the sender, before anything is queued.
    """

    __slots__ = ("answers", "check", "fn", "is_async", "name", "never_suspends", "owner")

    def __init__(self, owner: type[Atom], name: str, fn: Callable[..., Any]) -> None:
        self.owner = owner
        self.name = name
        self.fn = fn
        # The exceptions that answer the asker instead of crashing the atom (an
        # isinstance check on the failure path only; see Rejection).
        self.answers: tuple[type[Exception], ...] = (
            Rejection,
            *getattr(fn, _ANSWERS_MARK, ()),
        )
        self.is_async = inspect.iscoroutinefunction(fn)
        # True for plain functions, and for ``async def`` bodies without a single
        # suspension point: both run to completion in one step, so the runtime may
        # run them as an inline turn (see runtime/_cell.py).
        self.never_suspends = not self.is_async or has_no_await(fn)
        self.check = _make_checker(name, fn)

    def validate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise :class:`BadArguments` if ``args``/``kwargs`` cannot bind."""
        check = self.check
        if check is None:
            return
        try:
            check(*args, **kwargs)
        except TypeError as exc:
            raise BadArguments(
                f"{self.owner.__name__}.{exc} (signature: {self.name}{self.signature()})"
            ) from None

    def signature(self) -> str:
        try:
            sig = inspect.signature(self.fn, eval_str=True)
        except Exception:
            try:
                sig = inspect.signature(self.fn)
            except (TypeError, ValueError):
                return "(...)"
        params = list(sig.parameters.values())[1:]
        return str(inspect.Signature(params))

    def __repr__(self) -> str:
        return f"<handler {self.owner.__name__}.{self.name}>"


# Opcodes through which a coroutine body can suspend (await, async for, async with).
_SUSPENDING_OPS = frozenset(
    {"GET_AWAITABLE", "GET_AITER", "GET_ANEXT", "BEFORE_ASYNC_WITH", "SEND", "YIELD_VALUE"}
)


def has_no_await(fn: Callable[..., Any]) -> bool:
    """True when ``fn`` (an ``async def``) cannot suspend: no await, async for
    or async with in its code, so the runtime may drive it to completion without
    a task (:func:`run_to_completion`)."""
    code = getattr(fn, "__code__", None)
    if not inspect.isfunction(fn) or code is None:
        return False  # a wrapper or a builtin: cannot tell, assume it suspends
    return not any(ins.opname in _SUSPENDING_OPS for ins in dis.get_instructions(code))


def import_atom_class(path: str) -> type[Atom]:
    """The Atom subclass a ``module:QualName`` path names, imported (how
    on-demand atoms' ids, reminders and sandbox grants name classes).

    Raises ``ImportError`` saying why when the path does not import or names
    something that is not an Atom subclass; callers say what it means to them.
    """
    module, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(f"cannot be imported on this host: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Atom)):
        raise ImportError("is not an Atom subclass")
    return obj


def run_to_completion(coro: Any) -> Any:
    """Run a coroutine that has no suspension point and return its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"{coro!r} suspended although it has no await")


def _make_checker(name: str, fn: Callable[..., Any]) -> Callable[..., None] | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise TypeError(f"handler {fn.__qualname__} must take `self` as its first parameter")
    default = _Default()
    stub_params = [
        p.replace(
            annotation=inspect.Parameter.empty,
            default=inspect.Parameter.empty if p.default is inspect.Parameter.empty else default,
        )
        for p in params[1:]
    ]
    text = str(inspect.Signature(stub_params))
    namespace: dict[str, Any] = {"__radon_default__": default}
    if not name.isidentifier():
        return None
    exec(f"def {name}{text}:\n    return None\n", namespace)
    checker: Callable[..., None] = namespace[name]
    return checker


def handler_table(cls: type[Atom]) -> dict[Any, HandlerSpec]:
    """The handlers of ``cls``, keyed both by name and by function object.

    Keys include the functions of overridden base-class handlers, mapped to the
    most derived override, so ``ref.ask(Base.method)`` dispatches virtually.
    Cached on the class.
    """
    cached = cls.__dict__.get("_radon_handlers")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    table: dict[Any, HandlerSpec] = {}
    functions: list[tuple[str, Callable[..., Any]]] = []
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            if inspect.isfunction(value) and getattr(value, _HANDLER_MARK, False):
                functions.append((attr, value))
    for attr, value in functions:
        final = inspect.getattr_static(cls, attr)
        if not getattr(final, _HANDLER_MARK, False):
            # A subclass overrode a handler with an unmarked method: not callable.
            table.pop(attr, None)
            continue
        spec = table.get(attr)
        if spec is None or spec.fn is not final:
            spec = HandlerSpec(cls, attr, final)
            table[attr] = spec
        table[value] = spec
    # Only names that still resolve to a marked method are handlers.
    cls._radon_handlers = table  # type: ignore[attr-defined]
    return table


def resolve_handler(cls: type[Atom], table: dict[Any, HandlerSpec], h: Any) -> HandlerSpec:
    """Slow path of a handler lookup: build a helpful error for ``h``."""
    try:
        spec = table.get(h)
    except TypeError:
        spec = None
    if spec is not None:
        return spec
    if "_radon_component" in cls.__dict__ and getattr(h, _HANDLER_MARK, False):
        # A component's class known by its manifest (no functions of its own):
        # a handler function of the program's copy of the class names it.
        spec = table.get(getattr(h, "__name__", None))
        if spec is not None:
            table[h] = spec
            return spec
    names = sorted({s.name for s in table.values()})
    listing = ", ".join(names) if names else "none"
    label = h if isinstance(h, str) else getattr(h, "__qualname__", repr(h))
    attr_name = h if isinstance(h, str) else getattr(h, "__name__", None)
    if isinstance(attr_name, str) and callable(getattr(cls, attr_name, None)):
        hint = f"{cls.__name__}.{attr_name} exists but is not marked @handler"
    else:
        hint = f"{cls.__name__} has no handler {label!r}"
    raise HandlerNotFound(f"{hint} (handlers: {listing})")
