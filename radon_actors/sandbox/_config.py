"""``SandboxConfig``: the limits and execution mode of one sandboxed atom."""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

__all__ = ["SandboxConfig"]


def _positive(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"SandboxConfig.{attribute.name} must be a positive int, not {value!r}")


def _positive_number(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ValueError(f"SandboxConfig.{attribute.name} must be a positive number, not {value!r}")


def _class_names(value: Iterable[type | str]) -> tuple[str, ...]:
    """Atom classes (or their ``"module:QualName"`` names) as names: a config
    crosses to worker hosts, which rebuild no class from it."""
    from .._atom import Atom  # the API layer; imported late, it imports this module
    from ._value import record_name

    if isinstance(value, (type, str)) or not isinstance(value, Iterable):
        raise TypeError(f"SandboxConfig.on_demand takes a list of atom classes, not {value!r}")
    names = []
    for cls in value:
        if isinstance(cls, type) and issubclass(cls, Atom):
            names.append(record_name(cls))
        elif isinstance(cls, str) and _CLASS_NAME.fullmatch(cls):
            names.append(cls)
        else:
            raise TypeError(
                "SandboxConfig.on_demand takes Atom subclasses (or their "
                f"'module:QualName' names), not {cls!r}"
            )
    return tuple(names)


_CLASS_NAME = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


@attrs.frozen
class SandboxConfig:
    """How a sandboxed atom runs: pass it as ``spawn(..., sandbox=SandboxConfig(...))``
    or set it as the class attribute ``sandbox``; ``sandbox=True`` means the defaults.

    The limits are what make a misbehaving atom harmless: a turn that runs past
    ``fuel`` or allocates past ``memory`` is stopped by WebAssembly and the atom
    crashes with :class:`~radon_actors.SandboxCrashed` (its supervisor restarts
    it by default); the host and the other atoms carry on.
    """

    fuel: int = attrs.field(default=1_000_000_000, validator=_positive)
    """CPU budget of one turn (from the start of a handler to its result, across
    suspensions), in WebAssembly fuel units: roughly one per instruction, a few
    billion a second; the default is a few hundred milliseconds of guest Python.
    Host work does not count. Raise it for atoms whose turns are long computations
    (and consider ``threaded``: a non-threaded turn holds up the trio thread)."""

    memory: int = attrs.field(default=256 * 1024 * 1024, validator=_positive)
    """Cap on the guest's linear memory, in bytes (the embedded CPython and its heap
    start at about 20 MiB)."""

    max_timers: int = attrs.field(default=100, validator=_positive)
    """Live timers the atom may hold at once (``send_after``/``send_every``);
    one more raises :class:`~radon_actors.SandboxDenied` in its handler."""

    min_timer_interval: float = attrs.field(default=0.01, validator=_positive_number)
    """Shortest period of a periodic timer or reminder, in seconds: a guest
    cannot make the host fire its timers or reminders faster than this."""

    max_turn_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive)
    """Characters one turn of the atom may hand the host, in the value format:
    its messages (tells, asks, sends, spawns' arguments, timers, reminders)
    and the durable state documents it writes, each at most ``max_value``.
    Past them, the operation raises :class:`~radon_actors.SandboxDenied` in the
    handler. ``max_sends`` bounds how many; this, how much: a queued message
    is held by the host, a state write is a commit it makes."""

    max_reminders: int = attrs.field(default=100, validator=_positive)
    """Reminders (``remind``) an on-demand sandboxed atom may keep in the state
    store at once; one more, of a new name, raises
    :class:`~radon_actors.SandboxDenied` in its handler. A periodic one's
    period is at least ``min_timer_interval``."""

    max_children: int = attrs.field(default=100, validator=_positive)
    """Live children the atom may have at once (each sandboxed child counts its
    own against its own quota)."""

    tree_memory: int = attrs.field(default=2 * 1024 * 1024 * 1024, validator=_positive)
    """Total of the memory caps of a sandboxed atom and every sandboxed atom
    below it that sandboxed atoms spawned (its *tree*), in bytes. Each live
    instance counts its full ``memory`` cap, so the tree can never hold more
    than this; a spawn that would pass it raises
    :class:`~radon_actors.SandboxDenied` in the spawning handler. Set on the
    atom that trusted code spawns (children inherit its config)."""

    max_descendants: int = attrs.field(default=1000, validator=_positive)
    """Live sandboxed atoms a tree may hold below its root, at every level
    (``max_children`` bounds each atom's own children)."""

    max_sends: int = attrs.field(default=10_000, validator=_positive)
    """Messages (tells, asks and spawns) and durable state or reminder
    operations one turn of the atom may make; one more raises
    :class:`~radon_actors.SandboxDenied` in the handler."""

    max_logs: int = attrs.field(default=100, validator=_positive)
    """Log events one turn may emit (``self.log``); the host drops the rest of
    the turn's events and logs one ``sandbox.log_quota`` warning instead."""

    max_value: int = attrs.field(default=16 * 1024 * 1024, validator=_positive)
    """Longest value the host reads from the guest, in characters of its text
    (a result, a message it sends, log fields, a snapshot). A longer one fails
    the turn, or the send, with :class:`~radon_actors.MessageNotPortable`
    before the host parses a byte of it."""

    max_depth: int = attrs.field(default=64, validator=_positive)
    """Deepest nesting of lists, dicts and other containers in a value the host
    reads from the guest."""

    max_items: int = attrs.field(default=1_000_000, validator=_positive)
    """Most items (container elements and members, counted over the whole
    value) in a value the host reads from the guest."""

    native_children: bool = False
    """Whether the atom may spawn children that run natively (``sandbox=False``
    from inside the sandbox). Off by default: a native child runs code of the
    guest's choosing outside the sandbox, so only a host that trusts the
    atom's choice of classes turns it on. Children spawned with the class
    default or ``sandbox=True`` run sandboxed with the parent's limits."""

    on_demand: tuple[str, ...] = attrs.field(default=(), converter=_class_names)
    """The on-demand atom classes the atom may reach by key
    (``self.on_demand(cls, key)``; docs/durability.md). None by default: an
    on-demand atom activates on its first message and keeps durable state, so
    reaching one is a capability the host grants, class by class, as it grants
    Refs. Give the classes (or their ``"module:QualName"`` names); the host
    that runs the atom imports a granted class when the atom first reaches it.
    Sandboxed children inherit the grant."""

    max_on_demand: int = attrs.field(default=100_000, validator=_positive)
    """Distinct on-demand atoms (class and key) the atom may hold references to,
    over the life of its instance (a restart starts again): each one is a
    reference the host keeps for it."""

    threaded: bool = False
    """Run the atom's turns on worker threads (``trio.to_thread`` with a limiter of
    one thread per core), so CPU-heavy sandboxed atoms run in parallel: wasmtime
    releases the GIL while WebAssembly runs. Costs a thread hand-off per call into
    the guest, so leave it off for atoms whose handlers are short."""
