"""``AtomCell``: the runtime side of one atom.

A cell owns the atom's instance, its mailbox and the task that runs its turns.
It is also the *endpoint* behind the atom's Refs (``ask``/``tell``/``send``) and
the *context* the atom instance calls into (``self.spawn``, ``self.stop``...).
The cell outlives the instance: a restart swaps the instance under the same
cell, and a stopped cell stays as a dead end for the Refs that still point at it.

The message path, in order of cost:

* ``ask`` of a plain-``def`` handler on an idle atom runs the handler right away
  in the caller's task: no queue, no task switch. It is still a proper turn
  (nothing else can run in between, since the handler cannot await), FIFO holds
  because the mailbox is empty, and the caller's cancellation cannot interrupt it.
* any other ``ask`` queues ``(spec, args, kwargs, reply)`` and parks the caller
  with ``wait_task_rescheduled``; the atom's task reschedules it directly with the
  outcome. Two task switches per round trip, no channel objects.
* ``tell`` queues ``(spec, args, kwargs, None)`` and returns.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, NoReturn

import attrs
import outcome
import trio
from trio.lowlevel import (
    Abort,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    reschedule,
    wait_task_rescheduled,
)

from .._atom import (
    Atom,
    HandlerSpec,
    handler_table,
    has_no_await,
    resolve_handler,
    run_to_completion,
)
from .._errors import AskTimeout, AtomStopped, DeadlockError, SpawnError, WouldBlock
from .._logs import get_logger
from .._ref import Ref
from .._state import load_states
from ..mailbox import BUDGET, DeadLetter, Mailbox, budget
from . import _directory, _watch
from ._seams import (
    Away,
    CellState,
    Directive,
    InstanceRuntime,
    ParkedHook,
    ReplySlot,
    SupervisorHook,
)
from ._timers import TimerHandle

_NO_TIMERS: Any = frozenset()

StopCallback = Callable[["AtomCell", "BaseException | None"], None]

if TYPE_CHECKING:
    from ._system import System

__all__ = ["STASHED", "AtomCell", "Message", "Reply", "Taken", "default_decider"]

_log = get_logger("radon_actors")

# The children table of every atom that has none: most never do, and an empty
# dict of each one's own cost an idle atom 64 bytes and the cyclic collector
# one more object to visit in every full collection. Never written:
# System._new_cell gives a parent a dict of its own with its first child.
_NO_CHILDREN: Final[dict[str, AtomCell]] = {}

# Module-level names for the states: one global load on the hot path.
_STARTING = CellState.STARTING
_RUNNING = CellState.RUNNING
_STOPPING = CellState.STOPPING
_STOPPED = CellState.STOPPED


def _cannot_suspend(hook: Any, default: Any) -> bool:
    # A lifecycle hook (on_start, on_stop) that runs to completion without a
    # task: Atom's own, a plain function, or an ``async def`` without an await.
    return hook is default or (
        inspect.isfunction(hook) and (not inspect.iscoroutinefunction(hook) or has_no_await(hook))
    )


def default_decider(cell: AtomCell, exc: BaseException) -> Directive:
    """The decider of an atom nobody gave rules to: restart it."""
    return Directive.RESTART


class _Stashed:
    def __repr__(self) -> str:
        return "STASHED"


STASHED: Any = _Stashed()
"""What :meth:`AtomCell.inline_turn` returns when the handler stashed its message."""


Message = tuple[HandlerSpec, tuple[Any, ...], dict[str, Any], ReplySlot | None]
"""A queued message: its handler, arguments and reply slot (None for a tell)."""


@attrs.frozen
class Taken:
    """What :meth:`AtomCell.move_away` took out of a mailbox, lane by lane."""

    stashed: list[Message]
    user: list[Message]
    control: list[tuple[Any, ...]]

    def messages(self) -> list[Message]:
        """The stash, then the user lane: the order they would have run in."""
        return [*self.stashed, *self.user]


class Reply:
    """The :class:`ReplySlot` of a caller parked in this process: its task, or None
    once the caller has gone (cancelled or timed out), in which case the reply is
    dropped.

    The object is also the abort callback of the caller's wait, which saves a
    bound-method allocation per ask.
    """

    __slots__ = ("task",)

    def __init__(self, task: Task | None) -> None:
        self.task = task

    def __call__(self, _raise_cancel: Any) -> Abort:
        self.task = None
        return Abort.SUCCEEDED

    def deliver(self, result: outcome.Outcome[Any]) -> None:
        """Wake the parked caller with ``result`` (nothing if it has gone)."""
        task = self.task
        if task is not None:
            self.task = None
            reschedule(task, result)


class AtomCell:
    """One atom's runtime state; see the module docs."""

    __slots__ = (
        "_log",
        "_ref",
        "_self_stop",
        "_stash_current",
        "_stop_reason",
        "_stop_requested",
        "_stopped",
        "args",
        "away",
        "busy",
        "capacity",
        "children",
        "cls",
        "decider",
        "id",
        "idle_sweeps",
        "instance",
        "kwargs",
        "mailbox",
        "name",
        "on_crashed",
        "on_demand_key",
        "on_stopped",
        "parent",
        "parked",
        "restarts",
        "runtime",
        "shutdown_timeout",
        "state",
        "stop_hook",
        "supervisor",
        "system",
        "table",
        "task",
        "timers",
    )

    def __init__(
        self,
        system: System,
        cls: type[Atom],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        atom_id: str,
        name: str | None,
        parent: AtomCell | None,
        capacity: int,
    ) -> None:
        self.system = system
        self.cls = cls
        self.args = args
        self.kwargs = kwargs
        self.id = atom_id
        self.name = name
        # Set by durable for an on-demand atom's activation (``System.get``).
        self.on_demand_key: str | None = None
        self.parent = parent
        self.table = handler_table(cls)
        self.capacity = capacity  # its mailbox's bound
        # Made on first use (``opened``): an atom started inline (an on-demand
        # activation) that is only ever asked inline needs none, and a mailbox
        # is a quarter of the objects the cyclic collector walks per idle atom.
        self.mailbox: Mailbox | None = None
        self.instance: Any = None
        self.state = _STARTING
        self.busy = False
        # The task running the atom's turns; None while it has none (starting,
        # idle without one: ``go_idle``, elsewhere, stopped).
        self.task: Task | None = None
        self.idle_sweeps = 0  # the system's idle sweeps that found it waiting
        self.children: dict[str, AtomCell] = _NO_CHILDREN
        # Most atoms never set a timer: an empty set costs 216 bytes, so the
        # shared empty frozenset stands in until the first (add_timer).
        self.timers: set[TimerHandle] = _NO_TIMERS
        self._ref: Ref[Any] | None = None  # made on first use (``ref``)
        self._stopped: trio.Event | None = None  # made when first wanted (``stopped``)
        self.restarts = 0
        # How incarnations are made: None for a native atom (the fast, built-in
        # path); set by the system for another kind (a sandboxed atom's guest).
        self.runtime: InstanceRuntime | None = None
        # Where the atom is while it runs elsewhere (placement); None while it
        # runs here. The cell stays its directory entry either way.
        self.away: Away | None = None
        self.decider: Callable[[AtomCell, BaseException], Directive] = default_decider
        # Called with the cell and the reason when it has stopped for good:
        # ``stop_hook`` for the one owner that made it (an on-demand atom's
        # endpoint), then each of ``on_stopped`` (watchers, supervisors). The list
        # is made on the first ``add_stop_callback``: an idle on-demand atom holds
        # neither an empty list nor its hook in one, one object fewer for the
        # cyclic GC to walk at each full collection (docs/benchmarks.md).
        self.stop_hook: StopCallback | None = None
        self.on_stopped: list[StopCallback] | None = None
        # Failure-path plumbing (see radon_actors.supervisor): set by a supervisor
        # before the atom starts; None for atoms nobody supervises.
        self.supervisor: SupervisorHook | None = None
        self.parked: ParkedHook | None = None
        self.shutdown_timeout: float | None = None
        self.on_crashed: list[Callable[[AtomCell, BaseException], None]] | None = None
        self._self_stop = False
        self._stash_current = False
        self._stop_requested = False
        self._stop_reason: BaseException | None = None
        self._log: Any = None

    def __repr__(self) -> str:
        return f"<AtomCell {self.cls.__name__} {self.name or ''} {self.id}>"

    def add_stop_callback(self, callback: StopCallback) -> None:
        """Call ``callback(cell, reason)`` once the atom has stopped for good."""
        callbacks = self.on_stopped
        if callbacks is None:
            self.on_stopped = [callback]
        else:
            callbacks.append(callback)

    def remove_stop_callback(self, callback: StopCallback) -> bool:
        """Undo :meth:`add_stop_callback`; False if ``callback`` was not there."""
        callbacks = self.on_stopped
        if callbacks is None or callback not in callbacks:
            return False
        callbacks.remove(callback)
        return True

    def notify_stopped(self, reason: BaseException | None) -> None:
        """Run the stop hook and callbacks (the atom has stopped for good)."""
        hook = self.stop_hook
        if hook is not None:
            hook(self, reason)
        callbacks = self.on_stopped
        if callbacks is not None:
            for callback in callbacks:
                callback(self, reason)

    @property
    def stopped(self) -> trio.Event:
        """Set once the atom has stopped for good. Made on first use: an idle
        atom nobody waits for need not hold an Event (about 280 bytes)."""
        event = self._stopped
        if event is None:
            event = self._stopped = trio.Event()
        return event

    @property
    def ref(self) -> Ref[Any]:
        """The atom's Ref (made on first use: an on-demand atom's callers hold
        its endpoint's Ref, and an idle atom need not hold another)."""
        ref = self._ref
        if ref is None:
            ref = self._ref = Ref(self.id, self.name, self)
        return ref

    @property
    def log(self) -> Any:
        """The structlog logger bound with this atom's identity (made on first use)."""
        log = self._log
        if log is None:
            log = self._log = _log.bind(
                atom_id=self.id, atom_name=self.name, atom_class=self.cls.__name__
            )
        return log

    @property
    def via(self) -> str | None:
        """The location hint a Ref pickled here carries (see ``Ref.__reduce__``).

        This process's node id when it runs an atom that another process spawned
        (placed or migrated here), so a third host can send to it directly; None
        when this process is the atom's origin, where Refs route anyway. For an
        atom that runs elsewhere, where it runs (see :class:`Away`).
        """
        away = self.away
        if away is not None:
            return away.via
        prefix = self.system.prefix
        return None if self.id.rpartition(".")[0] == prefix else prefix

    # ------------------------------------------------------------------
    # Endpoint: what Refs call.
    # ------------------------------------------------------------------
    def spec_for(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HandlerSpec:
        """The handler ``h`` names, with ``args``/``kwargs`` checked against it.

        Raises ``HandlerNotFound`` or ``BadArguments`` at the caller.
        """
        try:
            spec = self.table[h]
        except (KeyError, TypeError):
            spec = resolve_handler(self.cls, self.table, h)
        check = spec.check
        if check is not None:
            try:
                check(*args, **kwargs)
            except TypeError:
                spec.validate(args, kwargs)
        return spec

    async def ask(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        spec = self.spec_for(h, args, kwargs)
        if (
            spec.never_suspends
            and self.state == _RUNNING
            and not self.busy
            and ((mailbox := self.mailbox) is None or not (mailbox.user or mailbox.control))
            and self.away is None
        ):
            # Inline turn: see the module docs for why this is a faithful turn.
            await checkpoint_if_cancelled()
            try:
                result = self.inline_turn(spec, args, kwargs)
            except Exception as exc:
                # A rejection leaves the atom idle, so the next ask is inline
                # again: count the turn, or a loop of refused asks never yields.
                # A crash does not (its failure waits in the control lane, so the
                # next ask is queued): it raises at once, so that the asker runs
                # before the supervisor acts on it (docs/supervision.md, step 1).
                if isinstance(exc, spec.answers):
                    b = budget
                    b.left -= 1
                    if b.left <= 0:
                        b.left = BUDGET
                        await cancel_shielded_checkpoint()
                raise
            if result is STASHED:
                # The handler set its message aside: it now waits in the stash
                # like any queued ask would.
                return await self._park_stashed(spec, args, kwargs, timeout)
            b = budget
            b.left -= 1
            if b.left <= 0:
                b.left = BUDGET
                await cancel_shielded_checkpoint()
            return result

        away = self.away
        if away is not None:
            return await away.ask(self, spec.name, args, kwargs, timeout)
        if self.state >= _STOPPING:
            raise AtomStopped(f"{self.label()} is not running (ask {spec.name!r})")
        task = current_task()
        if task is self.task:
            raise DeadlockError(
                f"{self.label()} asked itself {spec.name!r} from inside a handler; the reply "
                "could only come from the turn that waits for it"
            )
        reply = Reply(task)
        msg = (spec, args, kwargs, reply)
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.opened()
        if len(mailbox.user) < mailbox.capacity:
            queued = mailbox.put_nowait(msg)
        else:
            queued = await mailbox.put(msg)
        if not queued:
            if self.away is not None:
                # The atom moved away while we waited for room: follow it.
                return await self.ask(h, args, kwargs, timeout)
            raise AtomStopped(f"{self.label()} stopped before {spec.name!r} was queued")
        if timeout is None:
            return await wait_task_rescheduled(reply)
        with trio.move_on_after(timeout):
            return await wait_task_rescheduled(reply)
        raise AskTimeout(f"{self.label()} did not answer {spec.name!r} within {timeout} s")

    def ask_nowait(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """:meth:`ask`'s inline turn, or :class:`WouldBlock` with nothing done.

        No scheduling point: the caller runs the turn and gets its outcome, or
        learns at once that the ask would have to wait. A handler that stashes
        its message declines it: nothing is kept, as if it had never been sent
        (the caller asks again, as an unstash would have delivered it again).
        """
        spec = self.spec_for(h, args, kwargs)
        mailbox = self.mailbox
        if (
            not spec.never_suspends
            or self.state != _RUNNING
            or self.busy
            or (mailbox is not None and (mailbox.user or mailbox.control))
            or self.away is not None
        ):
            if self.state >= _STOPPING and self.away is None:
                raise AtomStopped(f"{self.label()} is not running (ask {spec.name!r})")
            raise WouldBlock(f"{self.label()} cannot answer {spec.name!r} {self._why_not(spec)}")
        result = self.inline_turn(spec, args, kwargs)
        if result is STASHED:
            raise WouldBlock(f"{self.label()} stashed {spec.name!r}: ask again later")
        return result

    def _why_not(self, spec: HandlerSpec) -> str:
        if not spec.never_suspends:
            return "without waiting (the handler may suspend)"
        if self.away is not None:
            return "here (it runs elsewhere)"
        if self.state != _RUNNING:
            return "yet (it is starting or restarting)"
        return "now (it is busy or has messages queued)"

    def inline_turn(self, spec: HandlerSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a handler that cannot suspend as a turn, now, in the calling task.

        The caller checked that the atom is running and idle (no turn, both lanes
        empty). Returns the result, or :data:`STASHED` if the handler stashed its
        message; raises the handler's exception after handing the failure to the
        atom's own task (so a restart never runs in the caller's task).
        """
        self.busy = True
        try:
            result = spec.fn(self.instance, *args, **kwargs)
            if spec.is_async:
                result = run_to_completion(result)
        except Exception as exc:
            self.busy = False
            self._stash_current = False
            if isinstance(exc, spec.answers):
                raise  # an answer (a Rejection), not a crash: the atom carries on
            self._note(exc, spec)
            mailbox = self.opened()
            if mailbox.put_control(("failed", exc, spec)):
                # Handled first, as a failure in a queued turn would be: before
                # a stop this turn requested.
                mailbox.control.rotate(1)
            raise
        self.busy = False
        if self._stash_current:
            self._stash_current = False
            return STASHED
        return result

    async def _park_stashed(
        self,
        spec: HandlerSpec,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        reply = Reply(current_task())
        self.opened().stash((spec, args, kwargs, reply))
        if timeout is None:
            return await wait_task_rescheduled(reply)
        with trio.move_on_after(timeout):
            return await wait_task_rescheduled(reply)
        raise AskTimeout(f"{self.label()} did not answer {spec.name!r} within {timeout} s")

    def tell(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        spec = self.spec_for(h, args, kwargs)
        mailbox = self.mailbox
        if mailbox is None:  # (tested here, not in a call: every tell passes)
            mailbox = self.opened()
        if not mailbox.put_nowait((spec, args, kwargs, None)):
            # A closed mailbox: the atom stopped, or runs elsewhere.
            away = self.away
            if away is not None:
                away.tell(self, spec.name, args, kwargs)
            else:
                self._dead_letter(spec, args, kwargs, "atom stopped")

    async def send(self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        spec = self.spec_for(h, args, kwargs)
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.opened()
        msg = (spec, args, kwargs, None)
        if len(mailbox.user) < mailbox.capacity and not mailbox.closed:
            await checkpoint_if_cancelled()
            mailbox.put_nowait(msg)
            b = budget
            b.left -= 1
            if b.left <= 0:
                b.left = BUDGET
                await cancel_shielded_checkpoint()
            return
        away = self.away
        if away is not None:
            await away.send(self, spec.name, args, kwargs)
            return
        if not await mailbox.put(msg):
            if self.away is not None:
                await self.send(h, args, kwargs)  # moved away meanwhile: see ask
                return
            self._dead_letter(spec, args, kwargs, "atom stopped")

    # ------------------------------------------------------------------
    # Delivery of messages that come from elsewhere (other hosts, forwarders,
    # queues replayed after a migration): one path, with a reply slot, that
    # never raises at the caller (there is none to raise at).
    # ------------------------------------------------------------------
    def queue_now(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: ReplySlot | None
    ) -> bool:
        """Queue the message if the atom runs, has room and the arguments fit the
        handler; False (nothing done) otherwise, and :meth:`post` says why."""
        spec = self.table.get(h)
        mailbox = self.mailbox
        if (
            spec is None
            or self.state >= _STOPPING
            or (mailbox is not None and (len(mailbox.user) >= mailbox.capacity or mailbox.closed))
        ):
            return False
        check = spec.check
        if check is not None:
            try:
                check(*args, **kwargs)
            except TypeError:
                return False
        self.opened().put_nowait((spec, args, kwargs, reply))
        return True

    def answer_now(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: ReplySlot
    ) -> bool:
        """Run an ask that came from elsewhere as an inline turn, if it can be one.

        The same fast path as a local :meth:`ask` (a handler that cannot suspend,
        an idle atom, empty lanes): the outcome goes to ``reply`` and the atom's
        task is not woken. False (nothing done) when it does not apply: then
        :meth:`post` queues it, or says what is wrong.
        """
        mailbox = self.mailbox
        if (
            self.state != _RUNNING
            or self.busy
            or (mailbox is not None and (mailbox.user or mailbox.control))
            or self.away is not None
        ):
            return False
        try:
            spec = self.spec_for(h, args, kwargs)
        except Exception:
            return False  # post reports it
        if not spec.never_suspends:
            return False
        try:
            result = self.inline_turn(spec, args, kwargs)
        except Exception as exc:
            reply.deliver(outcome.Error(exc))
            return True
        if result is STASHED:
            self.opened().stash((spec, args, kwargs, reply))
        else:
            reply.deliver(outcome.Value(result))
        return True

    def post(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: ReplySlot | None
    ) -> None:
        """Queue ``h(*args, **kwargs)`` without waiting; what goes wrong (unknown
        handler, bad arguments, stopped atom, full mailbox) goes to ``reply``, or
        to the dead letters for a tell."""
        if self.queue_now(h, args, kwargs, reply):
            return
        away = self.away
        if away is not None:
            away.post(self, h, args, kwargs, reply)
            return
        try:
            spec = self.spec_for(h, args, kwargs)
            if self.state >= _STOPPING:
                raise AtomStopped(f"{self.label()} is not running (message {spec.name!r})")
            if not self.opened().put_nowait((spec, args, kwargs, reply)):
                raise AtomStopped(f"{self.label()} stopped before {spec.name!r} was queued")
        except Exception as exc:
            self.fail_message(h, args, kwargs, reply, exc)

    async def post_when_room(
        self, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], reply: ReplySlot | None
    ) -> None:
        """:meth:`post`, waiting for room in the mailbox as a sender would."""
        try:
            spec = self.spec_for(h, args, kwargs)
        except Exception:
            self.post(h, args, kwargs, reply)  # reports the error
            return
        if not await self.opened().put((spec, args, kwargs, reply)):
            self.post(h, args, kwargs, reply)  # closed meanwhile: reports it

    def fail_message(
        self,
        h: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        reply: ReplySlot | None,
        exc: Exception,
    ) -> None:
        """A message that cannot be delivered: ``exc`` to its asker, or a dead letter."""
        if reply is not None:
            reply.deliver(outcome.Error(exc))
            return
        name = h if isinstance(h, str) else getattr(h, "__name__", repr(h))
        self.system.dead_letters.record(
            DeadLetter(self.id, self.name, name, args, kwargs, str(exc))
        )

    def _dead_letter(
        self, spec: HandlerSpec, args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
    ) -> None:
        self.system.dead_letters.record(
            DeadLetter(self.id, self.name, spec.name, args, kwargs, reason)
        )

    def label(self) -> str:
        """How error messages name this atom: class, name and id."""
        who = f"{self.name!r} " if self.name else ""
        return f"atom {self.cls.__name__} {who}({self.id})"

    def _note(self, exc: BaseException, spec: HandlerSpec) -> None:
        exc.add_note(f"raised in handler {self.cls.__name__}.{spec.name} of {self.label()}")

    # ------------------------------------------------------------------
    # Context: what the atom instance calls (see Atom).
    # ------------------------------------------------------------------
    async def spawn(
        self,
        cls: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str | None,
        sandbox: Any = None,
    ) -> Ref[Any]:
        return await self.system.spawn_cell(
            cls, args, kwargs, name=name, parent=self, sandbox=sandbox
        )

    def stop(self) -> None:
        # A stop the atom asks for itself is a *normal exit*: its supervisor may
        # restart it (a permanent child) or let it go (transient, temporary).
        if self._stop_requested or self.state >= _STOPPING:
            return
        if self.supervisor is not None and self.state == _RUNNING:
            self._self_stop = True
        self.request_stop()

    def watch(self, ref: Ref[Any], h: Any) -> None:
        _watch.watch(self, ref, h)

    def unwatch(self, ref: Ref[Any]) -> None:
        _watch.unwatch(self, ref)

    @property
    def key(self) -> str | None:
        """The atom's key: an on-demand atom's, else its name (``Atom.key``)."""
        key = self.on_demand_key
        return key if key is not None else self.name

    def get(self, cls: type[Any], key: str) -> Ref[Any]:
        return self.system.get(cls, key)

    async def remind(
        self, name: str, h: Any, args: tuple[Any, ...], due: float, period: float | None
    ) -> None:
        await self.system.durability().remind(self, name, h, args, due, period)

    async def forget_reminder(self, name: str) -> bool:
        return await self.system.durability().forget_reminder(self, name)

    async def read_state(self, name: str) -> tuple[Any, str] | None:
        return await self.system.durability().read_state(self, name)

    async def write_state(self, name: str, doc: Any, etag: str | None) -> str:
        return await self.system.durability().write_state(self, name, doc, etag)

    async def clear_state(self, name: str, etag: str | None) -> str:
        return await self.system.durability().clear_state(self, name, etag)

    def send_after(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TimerHandle:
        return self._timer(delay, h, args, kwargs, periodic=False)

    def send_every(
        self, interval: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> TimerHandle:
        return self._timer(interval, h, args, kwargs, periodic=True)

    def _timer(
        self, delay: float, h: Any, args: tuple[Any, ...], kwargs: dict[str, Any], periodic: bool
    ) -> TimerHandle:
        if not delay >= 0 or (periodic and delay <= 0):
            kind = "interval" if periodic else "delay"
            raise ValueError(f"timer {kind} must be a positive number of seconds, not {delay!r}")
        spec = self.spec_for(h, args, kwargs)
        timer = TimerHandle(self, (spec, args, kwargs), delay, periodic)
        if self.state < _STOPPING:
            self.add_timer(timer)
            self.system.start_soon(timer.run)
        else:
            timer.cancel()
        return timer

    def stash(self) -> None:
        if not self.busy:
            raise RuntimeError("stash() can only be called by a handler, during its turn")
        self._stash_current = True

    def unstash_all(self) -> None:
        mailbox = self.mailbox
        if mailbox is not None:  # (none yet: nothing was stashed)
            mailbox.unstash_all()

    # ------------------------------------------------------------------
    # The atom's task.
    # ------------------------------------------------------------------
    def request_stop(self, reason: BaseException | None = None) -> None:
        """Ask the atom to stop after its current turn (idempotent)."""
        away = self.away
        if away is not None:
            if not self._stop_requested:
                self._stop_requested = True
                self._stop_reason = reason
                away.request_stop(self, reason)
            return
        if self._stop_requested or self.state >= _STOPPING:
            # A stop from outside overrides a pending normal exit: no restart.
            self._self_stop = False
            return
        parked = self.parked
        mailbox = self.mailbox
        if parked is None and (
            mailbox is not None or self.task is not None or self.state != _RUNNING or self.busy
        ):
            # Made (if need be) before the flag is set, so that an idle atom's
            # new mailbox wakes it.
            mailbox = self.opened()
        self._stop_requested = True
        self._stop_reason = reason
        if parked is not None:
            # The atom's task is parked under its supervisor: wake it there.
            parked.stop_requested(reason)
        elif mailbox is None:
            # Idle, and it never needed a mailbox: its stop needs a task, not a
            # mailbox to carry it (a system closing on many such atoms would
            # otherwise make them all one, and the cyclic collector walk them).
            # What arrives meanwhile queues for that task (see ``opened``).
            self.system.start_soon(self.run_turns, _STOP)
        else:
            mailbox.put_control(_STOP)

    def report_failure(self, exc: BaseException) -> bool:
        """Fail the atom with ``exc`` from outside a handler (a child's escalation, a
        supervisor giving up): its failure path runs in its task, between turns.
        False if the atom has already stopped."""
        return self.opened().put_control(("failed", exc, _ESCALATION))

    def call_between_turns(self, fn: Callable[[], Awaitable[None]]) -> bool:
        """Run ``await fn()`` in the atom's task at its next turn boundary, before
        its next message (a snapshot, a supervisor's command). False if stopped."""
        return self.opened().put_control(("call", fn))

    @property
    def stop_requested(self) -> bool:
        """True once a stop was requested and not taken back (by a restart)."""
        return self._stop_requested

    @property
    def stop_requested_from_outside(self) -> bool:
        """True when a stop was requested by someone else than the atom itself."""
        return self._stop_requested and not self._self_stop

    def drop_self_stop(self) -> None:
        """Forget a stop the previous incarnation asked for itself (it was restarted)."""
        if self._self_stop:
            self._self_stop = False
            self._stop_requested = False
            control = self.opened().control
            for msg in [m for m in control if m[0] == "stop"]:
                control.remove(msg)

    def requeue_stop(self, reason: BaseException | None) -> None:
        """Queue a stop that arrived while the cell was parked, for its loop to see."""
        if self.state < _STOPPING:
            self._stop_reason = reason
            self.opened().put_control(_STOP)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The atom's task: start, run turns until stopped, stop."""
        self.task = current_task()
        self.busy = True
        try:
            await self.start_incarnation()
        except BaseException as exc:
            self._start_failed(exc)
        self._started()
        task_status.started()
        await self.run_turns()

    @staticmethod
    def starts_inline(cls: type[Atom]) -> bool:
        """True when ``cls`` can start without suspending (:meth:`start_inline`):
        no durable state to load, and an ``on_start`` that is a plain function
        or an ``async def`` without an await."""
        known = cls.__dict__.get("_radon_starts_inline")
        if known is None:
            known = not cls._radon_states and _cannot_suspend(cls.on_start, Atom.on_start)
            cls._radon_starts_inline = known  # type: ignore[attr-defined]  # cached on the class
        return bool(known)

    def start_inline(self) -> None:
        """Start the atom in the calling task, which must not be cancelled midway:
        it cannot be, since nothing here suspends (:meth:`starts_inline`). The
        atom then waits for its first message without a task (:meth:`go_idle`),
        unless the start queued messages already: then a task serves them."""
        self.busy = True
        try:
            cls = self.cls
            instance = cls.__new__(cls)
            instance._radon_ctx = self
            cls.__init__(instance, *self.args, **self.kwargs)
            self.instance = instance
            started = instance.on_start()
            if started is not None:
                run_to_completion(started)
        except Exception as exc:
            self._start_failed(exc)
        self._started()
        mailbox = self.mailbox
        if mailbox is not None and (mailbox.user or mailbox.control):
            # The start queued something (a tell to itself, a stop): as in a
            # task-started atom, its loop serves that right after the start.
            self.system.start_soon(self.run_turns)
        else:
            self.go_idle()

    @staticmethod
    def stops_inline(cls: type[Atom]) -> bool:
        """True when ``cls``'s ``on_stop`` cannot suspend (a plain function, or an
        ``async def`` without an await): see :meth:`stop_inline`."""
        known = cls.__dict__.get("_radon_stops_inline")
        if known is None:
            known = _cannot_suspend(cls.on_stop, Atom.on_stop)
            cls._radon_stops_inline = known  # type: ignore[attr-defined]  # cached on the class
        return bool(known)

    def stop_inline(self) -> bool:
        """Stop the atom for good in the calling task, without suspending, if it
        waits for messages without a task (:meth:`go_idle`) and nothing in its
        stop can suspend: native, no children, no supervisor, an ``on_stop``
        that cannot suspend (:meth:`stops_inline`). Returns False, with nothing
        done, otherwise (then :meth:`request_stop`, which gives it a task to
        stop in).

        The cheap collection of idle on-demand atoms: starting a task only to
        run a stop that cannot suspend costs more than the rest of the stop.
        """
        if (
            self.task is not None
            or self.state != _RUNNING
            or self.busy
            or self._stop_requested
            or self.away is not None
            or self.runtime is not None
            or self.supervisor is not None
            or self.parked is not None
            or self.children
        ):
            return False
        mailbox = self.mailbox
        if mailbox is not None and (
            mailbox.user or mailbox.control or mailbox.stashed or mailbox.closed
        ):
            return False
        if not self.stops_inline(self.cls):
            return False
        self._stop_requested = True
        self.state = _STOPPING
        self.busy = True
        # Closed before on_stop: a message it sends the atom is a dead letter at
        # once (as it would be once the stop ends), and wakes no task for it.
        # (None: one made from now on is made closed, see ``opened``.)
        if mailbox is not None:
            mailbox.close()
        self.cancel_timers()
        instance = self.instance
        timeout = self.shutdown_timeout
        if instance is not None and (timeout is None or timeout > 0):
            try:
                stopped = instance.on_stop()
                if stopped is not None:
                    run_to_completion(stopped)
            except Exception as exc:
                self.log.error("atom.on_stop_failed", error=repr(exc), exc_info=exc)
        self.finish(None)
        return True

    def _start_failed(self, exc: BaseException) -> NoReturn:
        self.state = _STOPPED
        if self.mailbox is not None:  # (else one made from now on is made closed)
            self.mailbox.close()
        self.forget()
        self.stopped.set()
        if isinstance(exc, Exception):
            self.log.error("atom.spawn_failed", error=repr(exc))
            raise SpawnError(f"{self.label()} failed to start: {exc!r}") from exc
        raise exc

    def _started(self) -> None:
        self.busy = False
        self.state = _RUNNING
        # Not through self.log: binding a logger for every atom costs an idle
        # atom about 500 bytes, and most never log anything else.
        _log.debug(
            "atom.spawned", atom_id=self.id, atom_name=self.name, atom_class=self.cls.__name__
        )

    async def run_turns(self, first: tuple[Any, ...] | None = None) -> None:
        """Serve turns in the calling task until the atom stops, or until it has
        been idle long enough to give its task up (the tail of :meth:`run`; also
        how an atom that came back into this process resumes, and what the
        first message to an idle atom without a task starts: :meth:`go_idle`).
        ``first``, a control message, is served before the mailbox's (the stop
        of an atom that has none: :meth:`request_stop`)."""
        self.task = current_task()
        system = self.system
        system.tasked(self)
        idle = False
        try:
            idle = await self._loop(first)
        finally:
            self.task = None
            system.untasked(self)
            if not idle and self.state != _STOPPED:
                # Cancelled (the system is being torn down): finish without awaiting.
                self.finish(self._stop_reason)

    def go_idle(self) -> None:
        """Let the atom wait for its next message without a task (an idle atom's
        task is most of its memory): the next message, user or control, starts
        one (:meth:`wake_idle`). Only while it runs here, with empty lanes, and
        outside a turn; its current task, if any, must end right after."""
        mailbox = self.mailbox
        if mailbox is not None:
            mailbox.idle(self)
        # else: the mailbox ``opened`` makes will wake it, being made idle

    def opened(self) -> Mailbox:
        """The atom's mailbox, made now if it has none yet (the first message
        that must queue, or anything that needs the mailbox itself).

        A mailbox made while the atom waits without a task is made idle on it
        (:meth:`go_idle`), so that its first message starts one, unless a task
        to stop it is already on its way (:meth:`request_stop`): messages then
        queue for that task, which refuses them once stopped. One made once the
        atom stops is made closed, so that what is sent to it is refused (a
        dead letter) as a stopped atom's messages always are."""
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.mailbox = Mailbox(self.capacity)
            state = self.state
            if state >= _STOPPING:
                mailbox.close()
            elif (
                state == _RUNNING
                and self.task is None
                and self.away is None
                and not self._stop_requested  # (a task to stop it is on its way)
            ):
                mailbox.idle(self)
        return mailbox

    def wake_idle(self) -> None:
        """What an idle mailbox calls on its first message: start the turns' task."""
        # Every cell of a system is finished when its nursery closes (see
        # run_system), so a cell that can receive a message still has a nursery
        # to start a task in.
        self.system.start_soon(self.run_turns)

    async def start_incarnation(self) -> None:
        """Build a fresh instance from the spawn arguments and run its ``on_start``.

        Runs in the cell's task (its first start, or a restart). Raises what the
        constructor or ``on_start`` raised; the cell's state is the caller's to set.
        An atom that runs elsewhere starts where its :class:`Away` puts it.
        """
        away = self.away
        if away is not None:
            await away.start_incarnation(self)
            return
        runtime = self.runtime
        if runtime is not None:
            self.instance = await runtime.start(self)
            return
        cls = self.cls
        instance = cls.__new__(cls)
        instance._radon_ctx = self
        cls.__init__(instance, *self.args, **self.kwargs)
        if cls._radon_states:
            await load_states(instance)  # durable state, loaded before on_start
        self.instance = instance
        await _maybe_await(instance.on_start())

    async def _loop(self, first: tuple[Any, ...] | None = None) -> bool:
        # True when the atom went idle and gives its task up (see System's
        # idle sweep); False when it stopped or moved away.
        if first is not None and await self._control(first):
            return False
        mailbox = self.opened()
        user = mailbox.user_lane()
        b = budget
        while True:
            control = mailbox.control  # made on first use (see Mailbox)
            if control:
                if await self._control(control.popleft()):
                    return False
                continue
            if not user:
                await mailbox.wait()
                if self.idle_sweeps > 1 and not user and not mailbox.control:
                    # The system's sweep found the atom idle twice in a row.
                    self.go_idle()
                    return True
                self.idle_sweeps = 0
                continue
            msg = user.popleft()
            mailbox.room_made()
            spec, args, kwargs, reply = msg
            if reply is not None and reply.task is None:
                continue  # the asker gave up before the turn began: withdrawn
            self.busy = True
            try:
                if spec.is_async:
                    result = await spec.fn(self.instance, *args, **kwargs)
                else:
                    result = spec.fn(self.instance, *args, **kwargs)
            except Exception as exc:
                self.busy = False
                self._stash_current = False
                if isinstance(exc, spec.answers):
                    # An answer (a Rejection), not a crash: the atom carries on.
                    if reply is not None:
                        reply.deliver(outcome.Error(exc))
                    else:
                        self.log.info("atom.rejected", handler=spec.name, reason=repr(exc))
                    b.left -= 1
                    if b.left <= 0:
                        b.left = BUDGET
                        await cancel_shielded_checkpoint()
                    continue
                self._note(exc, spec)
                if reply is not None:
                    reply.deliver(outcome.Error(exc))
                await self._failed(exc, spec)
                if self.state == _STOPPED:
                    return False
                continue
            except BaseException:
                # Cancelled mid-turn (the system is being torn down): the asker
                # must not be left waiting for a reply that will never come.
                if reply is not None:
                    reply.deliver(
                        outcome.Error(AtomStopped(f"{self.label()} was cancelled mid-turn"))
                    )
                raise
            self.busy = False
            if self._stash_current:
                self._stash_current = False
                mailbox.stash(msg)
            elif reply is not None:
                reply.deliver(outcome.Value(result))
            b.left -= 1
            if b.left <= 0:
                b.left = BUDGET
                await cancel_shielded_checkpoint()

    async def _control(self, msg: tuple[Any, ...]) -> bool:
        kind = msg[0]
        if kind == "stop":
            supervisor = self.supervisor
            if self._self_stop and supervisor is not None and self.state == _RUNNING:
                # A normal exit: the supervisor decides (restart types).
                self._self_stop = False
                self._stop_requested = False
                await supervisor.child_failed(self, None, Directive.STOP)
                return self.state == _STOPPED
            await self.shutdown(self._stop_reason)
            return True
        if kind == "failed":
            await self._failed(msg[1], msg[2])
            return self.state == _STOPPED
        if kind == "call":
            # Run a step of the failure path (a supervisor's) in this atom's task,
            # between turns.
            self.busy = True
            try:
                await msg[1]()
            finally:
                if self.state < _STOPPING:
                    self.busy = False
            return self.state == _STOPPED
        if kind == "migrate":
            # Live migration's hook, run at a turn boundary; it returns True when
            # the atom's loop must end here (the atom moved away).
            return bool(await msg[1](self))
        raise AssertionError(f"unknown control message {kind!r}")  # pragma: no cover

    async def _failed(self, exc: BaseException, spec: HandlerSpec) -> None:
        # The crash report, then the directive: applied here for an unsupervised
        # atom, handed to the supervisor otherwise. The failing message's asker
        # already has the exception; queued messages stay queued.
        self.busy = True
        directive = self.decider(self, exc)
        self.log.error(
            "atom.crashed",
            handler=spec.name,
            reason=repr(exc),
            directive=directive.value,
            restarts=self.restarts,
            exc_info=exc,
        )
        supervisor = self.supervisor
        if directive is Directive.RESUME:
            pass
        elif supervisor is not None:
            await supervisor.child_failed(self, exc, directive)
        elif directive is Directive.RESTART:
            await self.restart(exc)
        elif directive is Directive.STOP:
            await self.shutdown(exc)
        else:  # ESCALATE
            parent = self.parent
            await self.shutdown(exc)
            if parent is not None:
                parent.report_failure(exc)
        if self.state < _STOPPING:
            self.busy = False
            crashed = self.on_crashed
            if crashed:
                for callback in list(crashed):
                    callback(self, exc)

    async def restart(self, exc: BaseException) -> None:
        """Replace the instance in place (children and timers go, ``on_stop`` runs,
        a fresh incarnation starts); a failing start stops the atom."""
        self.busy = True
        try:
            await self.terminate_incarnation()
            self.restarts += 1
            try:
                await self.start_incarnation()
            except Exception as start_exc:
                self.log.error("atom.restart_failed", error=repr(start_exc), exc_info=start_exc)
                await self.shutdown(start_exc)
                return
            self.log.info("atom.restarted", restarts=self.restarts, reason=repr(exc))
        finally:
            self.busy = False

    async def terminate_incarnation(self) -> None:
        """End the current incarnation but not the atom: its children stop, its
        timers are cancelled and ``on_stop`` runs; the cell, its mailbox and its
        Refs stay (for a restart, or for :meth:`finish`)."""
        await self.stop_children()
        self.cancel_timers()
        await self.call_on_stop()

    async def stop_children(self) -> None:
        """Stop the atom's children, newest first, and wait for each."""
        children = list(reversed(self.children.values()))
        if getattr(self.instance, "_radon_stop_concurrently", False):
            # A pool (simple-one-for-one supervisor): all members stop at once.
            for child in children:
                child.request_stop()
        for child in children:
            child.request_stop()
            await child.stopped.wait()

    def cancel_timers(self) -> None:
        """Cancel every timer of the current incarnation."""
        for timer in list(self.timers):
            timer.cancel()

    def add_timer(self, timer: TimerHandle) -> None:
        """Keep ``timer`` with this incarnation's timers (see ``__init__``)."""
        timers = self.timers
        if timers is _NO_TIMERS:
            timers = self.timers = set()
        timers.add(timer)

    def drop_timer(self, timer: TimerHandle) -> None:
        """Forget ``timer`` (fired or cancelled), if this incarnation has it."""
        timers = self.timers
        if timers:
            timers.discard(timer)

    async def call_on_stop(self) -> None:
        """Run the instance's ``on_stop`` within the cell's shutdown timeout (errors
        logged); where the atom lives, if that is elsewhere."""
        away = self.away
        if away is not None:
            await away.call_on_stop(self)
            return
        instance = self.instance
        if instance is None:
            return
        timeout = self.shutdown_timeout
        try:
            if timeout is None:
                await _maybe_await(instance.on_stop())
            elif timeout <= 0:
                self.log.debug("atom.on_stop_skipped", reason="brutal kill (shutdown=0)")
            else:
                # The shutdown timeout: on_stop gets that long, then it is cancelled.
                with trio.move_on_after(timeout) as scope:
                    await _maybe_await(instance.on_stop())
                if scope.cancelled_caught:
                    self.log.warning("atom.shutdown_timeout", timeout=timeout)
        except Exception as exc:
            self.log.error("atom.on_stop_failed", error=repr(exc), exc_info=exc)

    async def shutdown(self, reason: BaseException | None) -> None:
        """Stop for good from the cell's task: children, timers, ``on_stop``, then
        :meth:`finish`. Does nothing once stopping."""
        if self.state >= _STOPPING:
            return
        self.state = _STOPPING
        self.busy = True
        await self.terminate_incarnation()
        self.finish(reason)

    def finish(self, reason: BaseException | None) -> None:
        """Close the mailbox, fail or dead-letter what is left, and tell the world.

        A cell whose atom ran elsewhere becomes a plain stopped cell; its
        :class:`Away` fails what it held, last."""
        away = self.away
        self.away = None
        self.state = _STOPPED
        self.busy = False
        self.cancel_timers()
        for child in list(self.children.values()):
            child.request_stop()
        mailbox = self.mailbox
        leftover = mailbox.close() if mailbox is not None else ()
        for spec, args, kwargs, reply in leftover:
            if reply is None:
                self._dead_letter(spec, args, kwargs, "atom stopped")
            else:
                reply.deliver(
                    outcome.Error(
                        AtomStopped(f"{self.label()} stopped before handling {spec.name!r}")
                    )
                )
        self.forget()
        self.instance = None
        # Not through self.log, which would bind a logger for an atom about to go.
        _log.debug(
            "atom.stopped",
            atom_id=self.id,
            atom_name=self.name,
            atom_class=self.cls.__name__,
            reason=None if reason is None else repr(reason),
        )
        self.stopped.set()
        self.notify_stopped(reason)
        if away is not None:
            away.finished(self)

    def move_away(self, away: Away) -> Taken:
        """The atom now runs elsewhere (or is on its way): ``away`` takes its
        messages from here on.

        Closes the mailbox (a closed mailbox is what sends the cell's senders,
        including those waiting for room, to ``away``) and returns what was in
        it; the caller passes that on, or gives it back to :meth:`come_back`,
        and sets the cell's state.
        """
        mailbox = self.opened()
        stashed = list(mailbox.stashed)
        user = list(mailbox.user)
        control = list(mailbox.control)
        mailbox.close()
        self.away = away
        return Taken(stashed, user, control)

    def come_back(
        self,
        taken: Taken | None = None,
        later: Iterable[tuple[Any, tuple[Any, ...], dict[str, Any], ReplySlot | None]] = (),
    ) -> None:
        """The atom runs in this process again: a restart that found no other
        host, or a move that was called off.

        The mailbox reopens without an :class:`Away`. What :meth:`move_away`
        took goes back where it was, and ``later`` (what arrived meanwhile, by
        handler or handler name) queues behind it, over the mailbox's bound if
        need be: every one of those messages was accepted once, and senders
        wait for room again until the atom has worked the lane down.
        """
        self.away = None
        if taken is None:
            self.opened().reopen()
        else:
            self.opened().reopen(taken.stashed, taken.user, taken.control)
        self.take_over(later)

    def take_over(
        self, messages: Iterable[tuple[Any, tuple[Any, ...], dict[str, Any], ReplySlot | None]]
    ) -> None:
        """Queue messages accepted elsewhere for this atom (by handler or handler
        name; a paused queue handed over after a move) behind what is queued,
        over the mailbox's bound if need be (see ``Mailbox.hand_over``), in order."""
        table = self.table
        queued = []
        for h, args, kwargs, reply in messages:
            spec = h if isinstance(h, HandlerSpec) else table.get(h)
            if spec is None:
                self.fail_message(
                    h, args, kwargs, reply, AtomStopped(f"{self.label()} has no handler {h!r}")
                )
            else:
                queued.append((spec, args, kwargs, reply))
        mailbox = self.opened()
        if mailbox.closed:  # stopped meanwhile: each message says so
            for spec, args, kwargs, reply in queued:
                self.post(spec.name, args, kwargs, reply)
        else:
            mailbox.hand_over(queued)

    def forget(self) -> None:
        """Leave the directory, the system's tables and the parent's children."""
        _directory.unregister(self)
        self.system.forget_cell(self)
        parent = self.parent
        if parent is not None and parent.children.get(self.id) is self:
            del parent.children[self.id]


# A HandlerSpec-like marker for failures escalated from a child.
class _Escalation:
    name = "<escalated from child>"


_ESCALATION: Any = _Escalation()

_STOP: tuple[str] = ("stop",)  # the control message of a requested stop


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if inspect.isawaitable(value):
        await value
