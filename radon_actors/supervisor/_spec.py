"""Child specs, restart types, strategies and the supervisor errors.

Plain data: nothing here needs trio.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, ItemsView, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVarTuple, overload

import attrs

from .._atom import Atom
from .._errors import RadonError
from ..runtime import Directive


class Directives(Protocol):
    """What ``directives=`` takes: a mapping of exception types, or their names,
    to directives. (A protocol over ``items()`` rather than ``Mapping``, whose key
    type is invariant: a ``dict`` of exception types alone is accepted as it is.)"""

    def items(self) -> ItemsView[type[BaseException] | str, Directive]:
        """The (key, directive) pairs."""
        ...


__all__ = [
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_SHUTDOWN",
    "DEFAULT_WITHIN",
    "ChildSpec",
    "Directives",
    "Escalated",
    "Restart",
    "RestartIntensityExceeded",
    "Strategy",
    "SupervisorError",
    "directive_table",
    "match_directive",
]

DEFAULT_MAX_RESTARTS = 3
"""Restarts a supervisor allows within :data:`DEFAULT_WITHIN` seconds (see docs/supervision.md)."""
DEFAULT_WITHIN = 5.0
DEFAULT_SHUTDOWN = 5.0
"""Seconds a worker's ``on_stop`` gets before it is cancelled (OTP's 5000 ms)."""

Ts = TypeVarTuple("Ts")


class Restart(enum.Enum):
    """When a supervisor restarts a child that ended (OTP's restart types)."""

    PERMANENT = "permanent"
    """Always restarted: after a failure and after a normal stop (``self.stop()``)."""
    TRANSIENT = "transient"
    """Restarted only after a failure; a normal stop is final and not a failure."""
    TEMPORARY = "temporary"
    """Never restarted, also not when a sibling's failure takes it down."""


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one of them fails."""

    ONE_FOR_ONE = "one_for_one"
    """Only the failed child."""
    ONE_FOR_ALL = "one_for_all"
    """Every child: all stop (in reverse start order), then all start (in order)."""
    REST_FOR_ONE = "rest_for_one"
    """The failed child and the children started after it."""
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"
    """A dynamic pool of identical children built from one template spec; each is
    restarted on its own, as in one-for-one."""


def _args(value: Iterable[Any]) -> tuple[Any, ...]:
    # A typed converter (``converter=tuple`` types ``args`` as ``Iterable[_T_co]``),
    # which also refuses the classic slip ``args="carol"`` (five arguments).
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"args must be a sequence of constructor arguments, not {type(value).__name__} "
            f"{value!r}; for one argument write args=({value!r},)"
        )
    return tuple(value)


def _kwargs(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(value)


def directive_table(
    value: Directives,
) -> dict[type[BaseException] | str, Directive]:
    """``directives=`` checked and copied: keys are exception types or names."""
    result = dict(value.items())
    for exc_type, directive in result.items():
        if isinstance(exc_type, str):
            if not exc_type:
                raise TypeError("a directives key that names a type must not be empty")
        elif not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise TypeError(
                f"directives keys must be exception types or their names, not {exc_type!r}"
            )
        if not isinstance(directive, Directive):
            label = exc_type if isinstance(exc_type, str) else exc_type.__name__
            raise TypeError(
                f"directives[{label}] must be a Directive "
                f"(RESUME, RESTART, STOP, ESCALATE), not {directive!r}"
            )
    return result


def _check_cls(instance: Any, attribute: Any, value: Any) -> None:
    if not (isinstance(value, type) and issubclass(value, Atom)):
        raise TypeError(f"ChildSpec takes an Atom subclass, not {value!r}")


def _check_shutdown(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None and not (isinstance(value, (int, float)) and value >= 0):
        raise ValueError(
            f"shutdown must be seconds >= 0 (0: on_stop is not run) or None (no limit), "
            f"not {value!r}"
        )


@attrs.frozen
class _ChildSpecFields:
    """The fields of :class:`ChildSpec`; attrs makes its initializer (the
    converters and validators above) and its repr, equality and immutability."""

    cls: type[Atom] = attrs.field(validator=_check_cls)
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    kwargs: dict[str, Any] = attrs.field(factory=dict, converter=_kwargs)
    name: str | None = None
    restart: Restart = attrs.field(
        default=Restart.PERMANENT, validator=attrs.validators.instance_of(Restart)
    )
    shutdown: float | None = attrs.field(default=DEFAULT_SHUTDOWN, validator=_check_shutdown)
    directives: dict[type[BaseException] | str, Directive] = attrs.field(
        factory=dict, converter=directive_table
    )
    mailbox_size: int | None = None
    sandbox: Any = None
    host: Any = None


# The fields live in an attrs base class, and ChildSpec adds only the typed
# constructor: type checkers take a class's constructor from a ``__new__`` in a
# subclass over an ``__init__`` in its base, while the attrs plugin keeps reading
# the base's generated ``__init__`` (so ``attrs.evolve`` stays checked). An
# overloaded ``__init__`` on the attrs class itself would be replaced by the
# plugin's, or (with ``init=False``) would hide the fields from ``evolve``.
class ChildSpec(_ChildSpecFields):
    """How a supervisor starts, restarts and stops one child.

    ``cls(*args, **kwargs)`` builds the child, and builds it again from scratch on
    every restart. ``name`` registers it system-wide (see ``System.lookup``) and is
    its id in the supervisor (default: the class name; ids must be unique per
    supervisor). ``shutdown`` is how long its ``on_stop`` may run before it is
    cancelled (``None``: no limit, the default for supervisors; ``0``: ``on_stop``
    is not run). ``directives`` maps exception types to what the supervisor does
    when the child raises one (the most specific type wins; default: restart);
    a key may also be a type's name, ``"module:QualName"`` or ``"QualName"``,
    which matches a sandboxed child's exception that crossed as data
    (``ForeignError.type_name``) as well as the same exception raised natively.
    ``sandbox`` runs the child's handlers in WebAssembly (``True`` or a
    ``SandboxConfig``; default ``None``: the class's ``sandbox`` attribute).
    ``host`` runs the child on another host (a host name or a placement policy,
    see docs/placement.md); this supervisor restarts it on a live host when
    that host goes down.

    Type checkers check the constructor arguments against ``cls.__init__`` when
    ``args`` is a tuple (or is left out) and ``kwargs`` is not given: the tuple
    must then be the complete positional call, ``ChildSpec(Account,
    args=("carol", 0))``. ``args`` given as a list, and any spec with ``kwargs``,
    are not checked (a list or a dict has no per-argument types to check). A
    ``simple_one_for_one`` template whose ``args`` are only the first arguments
    (``start_child`` appends the rest) is not a complete call: give them as a
    list.
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # One overload per form (see the class docstring); ``args`` has no
        # default in the checked form because a TypeVarTuple inferred from the
        # class alone (``args`` left out) mistypes keyword-only parameters.
        @overload
        def __new__(
            klass,
            cls: Callable[[], Atom],
            *,
            name: str | None = ...,
            restart: Restart = ...,
            shutdown: float | None = ...,
            directives: Directives = ...,
            mailbox_size: int | None = ...,
            sandbox: Any = ...,
            host: Any = ...,
        ) -> ChildSpec: ...
        @overload
        def __new__(
            klass,
            cls: Callable[[*Ts], Atom],
            args: tuple[*Ts],
            *,
            name: str | None = ...,
            restart: Restart = ...,
            shutdown: float | None = ...,
            directives: Directives = ...,
            mailbox_size: int | None = ...,
            sandbox: Any = ...,
            host: Any = ...,
        ) -> ChildSpec: ...
        @overload
        def __new__(
            klass,
            cls: type[Atom],
            args: list[Any],
            *,
            name: str | None = ...,
            restart: Restart = ...,
            shutdown: float | None = ...,
            directives: Directives = ...,
            mailbox_size: int | None = ...,
            sandbox: Any = ...,
            host: Any = ...,
        ) -> ChildSpec: ...
        @overload
        def __new__(
            klass,
            cls: type[Atom],
            args: Iterable[Any],
            kwargs: Mapping[str, Any],
            name: str | None = ...,
            restart: Restart = ...,
            shutdown: float | None = ...,
            directives: Directives = ...,
            mailbox_size: int | None = ...,
            sandbox: Any = ...,
            host: Any = ...,
        ) -> ChildSpec: ...
        @overload
        def __new__(
            klass,
            cls: type[Atom],
            *,
            kwargs: Mapping[str, Any],
            name: str | None = ...,
            restart: Restart = ...,
            shutdown: float | None = ...,
            directives: Directives = ...,
            mailbox_size: int | None = ...,
            sandbox: Any = ...,
            host: Any = ...,
        ) -> ChildSpec: ...
        def __new__(klass, *args: Any, **kwargs: Any) -> ChildSpec: ...

    @property
    def id(self) -> str:
        """The child's id in its supervisor: its name, else its class name."""
        return self.name if self.name is not None else self.cls.__name__


def match_directive(
    directives: Mapping[type[BaseException] | str, Directive], exc: BaseException
) -> Directive | None:
    """The directive of the most specific exception type in ``directives`` that ``exc`` is.

    A key may also name the exception's own type, as ``"module:QualName"`` or
    ``"QualName"``: what matches an exception that crossed the sandbox boundary
    as data (a :class:`~radon_actors.ForeignError`, by its ``type_name``) and
    the same exception raised natively alike. The exception's exact type wins,
    then its name, then its base types, most specific first.
    """
    if not directives:
        return None
    mro = type(exc).__mro__
    directive = directives.get(mro[0])
    if directive is not None:
        return directive
    name = getattr(exc, "type_name", None)
    if not isinstance(name, str):
        name = f"{mro[0].__module__}:{mro[0].__qualname__}"
    directive = directives.get(name)
    if directive is None:
        directive = directives.get(name.rpartition(":")[2])
    if directive is not None:
        return directive
    for klass in mro[1:]:
        directive = directives.get(klass)
        if directive is not None:
            return directive
    return None


class SupervisorError(RadonError):
    """A supervisor was asked something it cannot do (unknown child id, wrong call
    for its strategy...). The supervisor itself is unaffected."""


class RestartIntensityExceeded(RadonError):
    """A supervisor saw more than ``max_restarts`` restarts within ``within`` seconds.

    It stopped all its children and then failed with this error, so that its own
    parent decides what to do with it (escalation). The last child failure is the
    ``__cause__``. Raise the limits, or fix the failing child.
    """


class Escalated(RadonError):
    """A child's failure that its supervisor's directives say to ``ESCALATE``.

    The supervisor stopped all its children and failed with this error; the
    child's exception is the ``__cause__``.
    """
