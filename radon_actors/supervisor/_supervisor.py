"""``Supervisor``: an atom that starts, watches, restarts and stops its children.

The semantics are OTP's (restart strategies, restart intensity, restart types,
shutdown order and timeouts) with Akka's per-exception directives; see
docs/supervision.md for each rule and how it compares.

How a failure travels: a child's handler raises; its asker gets the exception;
the child's cell asks its decider (built here from the child spec) for a
directive, logs the crash report, and, unless the directive is RESUME, parks its
task (see ``_parked``) and posts the failure to this supervisor's control lane.
The supervisor handles it in its own task, between its turns: it checks the
restart type and the restart intensity, then drives the children of the
strategy's group (terminate in reverse order, start in order, resume), or gives
up: stops every child and fails itself, so that *its* parent decides.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import attrs
import trio

from .._atom import Atom, handler
from .._ref import Ref
from ..runtime import AtomCell, CellState, Directive, SpawnRequest, System, default_decider
from ._parked import Parked
from ._spec import (
    DEFAULT_MAX_RESTARTS,
    DEFAULT_WITHIN,
    ChildSpec,
    Directives,
    Escalated,
    Restart,
    RestartIntensityExceeded,
    Strategy,
    SupervisorError,
    directive_table,
    match_directive,
)

__all__ = ["ChildInfo", "Supervisor", "root_decider", "start_root"]

_STOPPING = CellState.STOPPING


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec
    id: str
    cell: AtomCell | None = None
    dynamic: bool = False
    """Forgotten once stopped (pool members, atoms spawned with ``system.spawn``)."""


@attrs.frozen
class ChildInfo:
    """One child as :meth:`Supervisor.which_children` reports it."""

    id: str
    ref: Ref[Any] | None
    """None when the child is not running (terminated, its spec kept)."""
    cls: type[Atom]
    restart: Restart
    restarts: int
    """How many times this incarnation's cell was restarted in place."""


_ESCALATE_GIVE_UPS: dict[type[BaseException] | str, Directive] = {
    RestartIntensityExceeded: Directive.ESCALATE,
    Escalated: Directive.ESCALATE,
}


def _is_supervisor_failure(exc: BaseException) -> bool:
    return isinstance(exc, (RestartIntensityExceeded, Escalated))


def _alive(cell: AtomCell) -> bool:
    away = cell.away
    if away is not None:
        # A child on another host: its cell here forwards, and counts as
        # stopped after a migration although the atom runs on (placement).
        return away.placed_away(cell)
    return cell.state < _STOPPING


def root_decider(cell: AtomCell, exc: BaseException) -> Directive:
    """Decider of the system's root: its own handler errors only reach the caller;
    a give-up (intensity or escalation) stops the system."""
    return Directive.ESCALATE if _is_supervisor_failure(exc) else Directive.RESUME


def _plain_parent_decider(cell: AtomCell, exc: BaseException) -> Directive:
    return Directive.RESTART if _is_supervisor_failure(exc) else Directive.RESUME


class Supervisor(Atom):
    """An atom that owns children declared by :class:`ChildSpec` and keeps them alive.

    Children start in declaration order (``spawn`` returns once all have started)
    and stop in reverse order. When a child fails, the ``strategy`` chooses which
    children restart; more than ``max_restarts`` restarts within ``within`` seconds
    (``max_restarts=None``: no limit) make the supervisor stop all its children and
    fail with :class:`RestartIntensityExceeded`, which its own parent then handles.
    ``directives`` maps exception types (or their names, as in
    :class:`ChildSpec`) to directives for every child (a child spec's own
    ``directives`` win). Use :meth:`spec` to nest a supervisor.

    For ``Strategy.SIMPLE_ONE_FOR_ONE``, ``children`` is one template spec and no
    child starts with the supervisor: :meth:`start_child` adds pool members.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int | None = DEFAULT_MAX_RESTARTS,
        within: float = DEFAULT_WITHIN,
        directives: Directives | None = None,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, not {strategy!r}")
        if max_restarts is not None and not (isinstance(max_restarts, int) and max_restarts >= 0):
            raise ValueError(f"max_restarts must be an int >= 0 or None, not {max_restarts!r}")
        if not (isinstance(within, (int, float)) and within > 0):
            raise ValueError(f"within must be a positive number of seconds, not {within!r}")
        specs = list(children)
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"children must be ChildSpec objects, not {spec!r}")
        self._template: ChildSpec | None = None
        if strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            if len(specs) != 1:
                raise ValueError(
                    "a simple_one_for_one supervisor takes exactly one child spec, the "
                    f"template of its pool members (got {len(specs)})"
                )
            if specs[0].name is not None:
                raise ValueError(
                    "the template of a simple_one_for_one pool cannot have a name "
                    "(names are unique; members are told apart by their Ref)"
                )
            self._template = specs[0]
            specs = []
        ids = [spec.id for spec in specs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"child ids must be unique; give these children names: {dupes}")
        self._specs = specs
        self._strategy = strategy
        # Read by the runtime when this supervisor stops: a pool's members stop
        # concurrently (as in OTP), other children one by one in reverse order.
        self._radon_stop_concurrently = strategy is Strategy.SIMPLE_ONE_FOR_ONE
        self._max_restarts = max_restarts
        self._within = float(within)
        self._directives = directive_table(directives or {})
        # Children in start order (a dict used as an ordered set: a pool can hold
        # tens of thousands, so membership and removal must not be linear), and
        # each running child by its cell.
        self._children: dict[_Child, None] = {}
        self._by_cell: dict[AtomCell, _Child] = {}
        self._restart_times: deque[float] = deque()

    @classmethod
    def spec(
        cls,
        children: Sequence[ChildSpec] = (),
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int | None = DEFAULT_MAX_RESTARTS,
        within: float = DEFAULT_WITHIN,
        directives: Directives | None = None,
        name: str | None = None,
        restart: Restart = Restart.PERMANENT,
        shutdown: float | None = None,
    ) -> ChildSpec:
        """A :class:`ChildSpec` for a supervisor of this class (to nest it in a tree,
        or to give it to ``open_system(root=...)``). Supervisors get no shutdown
        limit by default, as in OTP: their children's own limits bound them."""
        return ChildSpec(
            cls,
            kwargs={
                "children": list(children),
                "strategy": strategy,
                "max_restarts": max_restarts,
                "within": within,
                "directives": directives,
            },
            name=name,
            restart=restart,
            shutdown=shutdown,
        )

    # ------------------------------------------------------------------
    # Lifecycle
    # ------------------------------------------------------------------
    @property
    def _cell(self) -> AtomCell:
        return cast(AtomCell, self._radon_ctx)

    async def on_start(self) -> None:
        cell = self._cell
        if cell.decider is default_decider:
            # Spawned by a plain atom: its own handlers' errors must not restart
            # the subtree either.
            cell.decider = _plain_parent_decider
        try:
            for spec in self._specs:
                await self._start(_Child(spec, spec.id))
        except BaseException:
            # OTP: a child that cannot start makes the supervisor fail to start,
            # after it stopped the children it had started (in reverse order).
            for child in reversed(self._children):
                if child.cell is not None:
                    child.cell.request_stop()
                    await child.cell.stopped.wait()
            raise

    async def _start(self, child: _Child) -> Ref[Any]:
        spec = child.spec
        me = self._cell

        def setup(cell: AtomCell) -> None:
            cell.supervisor = self
            cell.decider = functools.partial(self._decide, spec)
            cell.shutdown_timeout = spec.shutdown
            cell.add_stop_callback(self._child_stopped)
            child.cell = cell
            self._by_cell[cell] = child

        if child not in self._children:
            self._children[child] = None
        try:
            ref = await me.system.spawn_cell(
                spec.cls,
                spec.args,
                spec.kwargs,
                name=spec.name,
                parent=me,
                mailbox_size=spec.mailbox_size,
                setup=setup,
                sandbox=spec.sandbox,
                host=spec.host,
            )
        except BaseException:
            if child.cell is not None:
                self._by_cell.pop(child.cell, None)
            child.cell = None
            if child.dynamic:
                self._children.pop(child, None)
            raise
        if child.dynamic and child.id == "":
            child.id = ref.id
        self._order_cells(child)
        return ref

    def _order_cells(self, started: _Child) -> None:
        # The core stops an atom's children newest first; keep its table in the
        # order of our specs so that "reverse start order" means spec order.
        me = self._cell
        table = me.children
        cell = started.cell
        if (
            cell is not None
            and next(reversed(self._children)) is started
            and next(reversed(table), None) == cell.id
        ):
            return  # the common case (a child added last): already in order
        ordered = {c.cell.id: c.cell for c in self._children if c.cell is not None}
        if list(ordered) != list(table):
            rest = {k: v for k, v in table.items() if k not in ordered}
            me.children = {k: v for k, v in ordered.items() if k in table} | rest

    def _decide(self, spec: ChildSpec, cell: AtomCell, exc: BaseException) -> Directive:
        if isinstance(cell.instance, Supervisor) and not _is_supervisor_failure(exc):
            # A supervisor's own handlers (start_child...) report errors to their
            # caller; they never restart the subtree.
            return Directive.RESUME
        return (
            match_directive(spec.directives, exc)
            or match_directive(self._directives, exc)
            or Directive.RESTART
        )

    def _child_stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        child = self._by_cell.pop(cell, None)
        if child is not None and child.cell is cell:
            child.cell = None
            if child.dynamic or child.spec.restart is Restart.TEMPORARY:
                self._children.pop(child, None)

    def _find(self, cell: AtomCell) -> _Child | None:
        child = self._by_cell.get(cell)
        return child if child is not None and child.cell is cell else None

    # ------------------------------------------------------------------
    # The failure path (SupervisorHook)
    # ------------------------------------------------------------------
    async def child_failed(
        self, cell: AtomCell, exc: BaseException | None, directive: Directive
    ) -> None:
        """Called in the failing child's task: park it and let this supervisor decide."""
        parked = cell.parked
        if parked is None:
            parked = Parked(cell)
            notice = functools.partial(self._handle, cell, exc, directive, parked)
            me = self._cell
            if cell.stop_requested_from_outside:
                # Asked to stop (from outside) before it failed: it stops, and
                # whoever asked may be waiting for that (even this supervisor).
                parked.stop_requested(exc)
            elif me.state >= _STOPPING or not me.opened().put_control(("call", notice)):
                parked.stop_requested(exc)  # this supervisor is stopping: so does the child
        # else: the supervisor is already acting on this child (a sibling's
        # failure); this failure joins that handover.
        await parked.serve()

    async def _handle(
        self, cell: AtomCell, exc: BaseException | None, directive: Directive, parked: Parked
    ) -> None:
        if parked.done:
            return  # already handled with a sibling's failure
        child = self._find(cell)
        if child is None:
            await parked.request("finish", exc)
            return
        restart = child.spec.restart
        if exc is None:
            # A normal exit: only permanent children come back.
            if restart is Restart.PERMANENT:
                await self._restart(child, None, parked)
            else:
                await parked.request("finish", None)
            return
        if directive is Directive.ESCALATE:
            # A child supervisor's give-up travels up as itself (like Akka's
            # Escalate, which rethrows); any other error is wrapped.
            error = (
                exc
                if _is_supervisor_failure(exc)
                else Escalated(f"{cell.label()} failed with {exc!r}; its directive is ESCALATE")
            )
            await self._give_up(error, exc, {cell.id: parked})
        elif directive is Directive.STOP or restart is Restart.TEMPORARY:
            await parked.request("finish", exc)
        else:
            await self._restart(child, exc, parked)

    def _note_restart(self) -> bool:
        """Record one restart; False if that exceeds the restart intensity."""
        if self._max_restarts is None:
            return True
        now = trio.current_time()
        times = self._restart_times
        times.append(now)
        while times and now - times[0] >= self._within:
            times.popleft()
        return len(times) <= self._max_restarts

    def _group(self, child: _Child) -> list[_Child]:
        strategy = self._strategy
        if strategy is Strategy.ONE_FOR_ALL:
            group = list(self._children)
        elif strategy is Strategy.REST_FOR_ONE:
            children = list(self._children)
            group = children[children.index(child) :]
        else:
            group = [child]
        return [c for c in group if c.cell is not None and _alive(c.cell)]

    def _park(self, cell: AtomCell) -> Parked:
        parked = cast("Parked | None", cell.parked)
        if parked is None:
            parked = Parked(cell)
            away = cell.away
            if away is not None:
                # A child on another host (radon_actors.placement): its cell here
                # serves the handover in a task of its own.
                away.serve_parked(cell, parked)
            elif not cell.opened().put_control(("call", parked.serve)):
                parked.done = True
                cell.parked = None
        return parked

    async def _restart(self, failed: _Child, reason: BaseException | None, parked: Parked) -> None:
        me = self._cell
        if not self._note_restart():
            exceeded = RestartIntensityExceeded(
                f"{me.label()} saw more than {self._max_restarts} restarts within "
                f"{self._within} s (last: {failed.id}: {reason!r}); it stopped its children "
                "and gave up. Raise max_restarts/within or fix the failing child."
            )
            assert failed.cell is not None
            await self._give_up(exceeded, reason, {failed.cell.id: parked})
            return
        group = self._group(failed)
        me.log.info(
            "supervisor.restarting",
            child=failed.id,
            strategy=self._strategy.value,
            group=[c.id for c in group],
            reason=repr(reason),
        )
        handovers: dict[str, Parked] = {}
        for child in group:
            assert child.cell is not None
            handovers[child.id] = parked if child is failed else self._park(child.cell)
        # Stop in reverse start order; a temporary sibling is not restarted.
        for child in reversed(group):
            handover = handovers[child.id]
            if child is not failed and child.spec.restart is Restart.TEMPORARY:
                await handover.request("finish", None, timeout=child.spec.shutdown)
            else:
                # OTP waits `shutdown` for a child to terminate, then kills it. A
                # turn cannot be killed here: a child still in one after that
                # long restarts on its own once the turn ends (out of order).
                await handover.request("terminate", timeout=child.spec.shutdown)
        # Start again in start order; each resumes its kept mailbox at once.
        for child in group:
            handover = handovers[child.id]
            if handover.done:
                continue
            while True:
                start_error = await handover.request("start")
                if start_error is None:
                    break
                if self._max_restarts is None:
                    # Unlimited restarts must not retry a start that fails: stop it.
                    await handover.request("finish", start_error)
                    break
                if not self._note_restart():
                    gave_up = RestartIntensityExceeded(
                        f"{me.label()}: restarting {child.id} keeps failing ({start_error!r}); "
                        f"more than {self._max_restarts} restarts within {self._within} s"
                    )
                    await self._give_up(
                        gave_up, start_error, {c.cell.id: handovers[c.id] for c in group if c.cell}
                    )
                    return
            await handover.request("resume")

    async def _give_up(
        self, error: BaseException, cause: BaseException | None, handovers: dict[str, Parked]
    ) -> None:
        me = self._cell
        if error is not cause:
            error.__cause__ = cause
        me.log.error("supervisor.gave_up", reason=repr(error), cause=repr(cause))
        for child in reversed(list(self._children)):
            cell = child.cell
            if cell is None:
                continue
            handover = handovers.get(cell.id) or cell.parked
            if handover is not None and not handover.done:
                handover.stop_requested(cause if cell.id in handovers else None)
            else:
                cell.request_stop()
            timeout = child.spec.shutdown
            if timeout is not None:
                with trio.move_on_after(timeout):
                    await cell.stopped.wait()
                if not cell.stopped.is_set():
                    # Still in a turn (perhaps asking this supervisor): say so.
                    cell.log.warning(
                        "supervisor.child_unresponsive", command="stop", timeout=timeout
                    )
            await cell.stopped.wait()
        # Fail this supervisor itself, between turns: its parent decides.
        me.report_failure(error)

    # ------------------------------------------------------------------
    # Management API (handlers)
    # ------------------------------------------------------------------
    def radon_decide_own_failure(self, exc: BaseException) -> Directive:
        """Its own handlers' errors only reach their caller; a give-up escalates
        (``runtime.DecidesOwnFailures``, for a supervisor placed on another host)."""
        return root_decider(self._cell, exc)

    async def adopt(self, request: SpawnRequest) -> Ref[Any]:
        """Start an atom spawned with ``system.spawn`` as a dynamic, transient child.

        A supervisor spawned this way that gives up is not restarted: its failure
        escalates (see docs/supervision.md, "The system root")."""
        spec = ChildSpec(
            request.cls,
            args=request.args,
            kwargs=request.kwargs,
            name=request.name,
            restart=Restart.TRANSIENT,
            mailbox_size=request.mailbox_size,
            # Bounded by open_system(shutdown_timeout=...) as a whole, as before.
            shutdown=None,
            directives=_ESCALATE_GIVE_UPS,
            sandbox=request.sandbox,
            host=request.host,
        )
        return await self._start(_Child(spec, "", dynamic=True))

    @handler
    async def start_child(self, *args: Any, **kwargs: Any) -> Ref[Any]:
        """Start a child at runtime and return its Ref.

        One-for-one/all, rest-for-one: pass one :class:`ChildSpec` (it goes last in
        start order). Simple-one-for-one: pass extra arguments, appended to the
        template's ``args`` (keyword arguments update its ``kwargs``).
        """
        template = self._template
        if template is not None:
            spec = attrs.evolve(
                template, args=(*template.args, *args), kwargs={**template.kwargs, **kwargs}
            )
            return await self._start(_Child(spec, "", dynamic=True))
        if len(args) != 1 or kwargs or not isinstance(args[0], ChildSpec):
            raise SupervisorError(
                "start_child takes one ChildSpec on a "
                f"{self._strategy.value} supervisor (extra arguments are for "
                "simple_one_for_one pools)"
            )
        spec = args[0]
        if any(c.id == spec.id for c in self._children):
            raise SupervisorError(
                f"this supervisor already has a child {spec.id!r}; give the spec a unique name"
            )
        return await self._start(_Child(spec, spec.id))

    def _lookup(self, child: str | Ref[Any]) -> _Child:
        for c in self._children:
            if (isinstance(child, Ref) and c.cell is not None and c.cell.id == child.id) or (
                c.id == child
            ):
                return c
        ids = [c.id for c in self._children]
        raise SupervisorError(f"no child {child!r} in this supervisor (children: {ids})")

    @handler
    async def terminate_child(self, child: str | Ref[Any]) -> None:
        """Stop a child without restarting it. Its spec is kept (restart it with
        :meth:`restart_child`) unless it is temporary or a pool member."""
        found = self._lookup(child)
        cell = found.cell
        if cell is None:
            return
        cell.request_stop()
        await cell.stopped.wait()

    @handler
    async def restart_child(self, child_id: str) -> Ref[Any]:
        """Start the kept spec of a terminated child again, in its place in the order."""
        found = self._lookup(child_id)
        if found.cell is not None:
            raise SupervisorError(f"child {child_id!r} is running; terminate it first")
        return await self._start(found)

    @handler
    def delete_child(self, child_id: str) -> None:
        """Forget the spec of a terminated child."""
        found = self._lookup(child_id)
        if found.cell is not None:
            raise SupervisorError(f"child {child_id!r} is running; terminate it first")
        del self._children[found]

    @handler
    def which_children(self) -> list[ChildInfo]:
        """Every child, running or terminated, in start order."""
        return [
            ChildInfo(
                id=c.id,
                ref=None if c.cell is None else c.cell.ref,
                cls=c.spec.cls,
                restart=c.spec.restart,
                restarts=0 if c.cell is None else c.cell.restarts,
            )
            for c in self._children
        ]

    @handler
    def count_children(self) -> dict[str, int]:
        """``{"specs": ..., "active": ...}``: known children and running ones."""
        active = sum(1 for c in self._children if c.cell is not None)
        return {"specs": len(self._children), "active": active}


async def start_root(system: System, spec: ChildSpec | None) -> None:
    """Start ``system``'s root supervisor from ``open_system(root=spec)``.

    The supervision extension's entry (``runtime.Extensions.start_root``). The
    default root restarts without limit: see docs/supervision.md.
    """
    if spec is None:
        spec = ChildSpec(Supervisor, kwargs={"max_restarts": None})
    elif not (isinstance(spec, ChildSpec) and issubclass(spec.cls, Supervisor)):
        raise TypeError(
            f"root must be a Supervisor's ChildSpec (Supervisor.spec(...)), not {spec!r}"
        )

    def setup(cell: AtomCell) -> None:
        cell.decider = root_decider

    await system.spawn_cell(
        spec.cls,
        spec.args,
        spec.kwargs,
        name=spec.name,
        mailbox_size=spec.mailbox_size,
        setup=setup,
        root=True,
    )
