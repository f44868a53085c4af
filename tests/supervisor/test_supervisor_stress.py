"""Random concurrent failures, stops and management calls never hang anything.

Hypothesis drives batches of operations that run *concurrently* against a
supervisor with random strategy, restart types and directives. Invariants: every
operation returns (an answer or one of the expected errors) on a MockClock long
before a generous timeout, and the system always shuts down.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from supervisor_atoms import EVENTS, Boom, Fatal, Worker

from radon_actors import (
    Atom,
    AtomStopped,
    ChildSpec,
    Directive,
    Down,
    Escalated,
    NoSuchAtom,
    Ref,
    Restart,
    RestartIntensityExceeded,
    SpawnError,
    Strategy,
    Supervisor,
    SupervisorError,
    handler,
    open_system,
)
from radon_actors.runtime import _directory

EXPECTED = (Boom, Fatal, AtomStopped, SupervisorError, NoSuchAtom, SpawnError)
OPS = [
    "incr",
    "fail",
    "afail",
    "fatal",
    "quit",
    "stop",
    "terminate",
    "restart_child",
    "stop_sup",
    "watch",
    "break",
]

# Labels whose next starts fail, and how many times.
BROKEN: dict[str, int] = {}


class StressWorker(Worker):
    def on_start(self) -> None:
        super().on_start()
        left = BROKEN.get(self.label, 0)
        if left:
            BROKEN[self.label] = left - 1
            raise Boom("cannot start")


class Watcher(Atom):
    def __init__(self) -> None:
        self.downs: list[Down] = []

    @handler
    def watch_it(self, ref: Ref[Any]) -> None:
        self.watch(ref, Watcher.on_down)

    @handler
    def on_down(self, down: Down) -> None:
        self.downs.append(down)


LABELS = ["c0", "c1", "c2", "d0", "d1"]


async def _op(system: Any, watcher: Any, name: str, i: int) -> None:
    label = LABELS[i]
    try:
        sup = system.lookup("sup")
        if name == "break":
            BROKEN[label] = 2
            return
        if name == "stop_sup":
            await system.stop(sup)
            return
        if name == "terminate":
            await sup.ask(Supervisor.terminate_child, label)
            return
        if name == "restart_child":
            await sup.ask(Supervisor.restart_child, label)
            return
        ref = system.lookup(label)
        if name == "incr":
            await ref.ask(Worker.incr)
        elif name == "fail":
            await ref.ask(Worker.fail, Boom())
        elif name == "afail":
            await ref.ask(Worker.afail, Boom())
        elif name == "fatal":
            await ref.ask(Worker.fail, Fatal())
        elif name == "watch":
            await watcher.ask(Watcher.watch_it, ref)
        elif name == "quit":
            await ref.ask(Worker.quit)
        else:
            await system.stop(ref)
    except EXPECTED:
        pass


async def _scenario(
    strategy: Strategy,
    restarts: list[Restart],
    resume: list[bool],
    max_restarts: int | None,
    nested: bool,
    batches: list[list[tuple[str, int]]],
) -> None:
    BROKEN.clear()
    specs = [
        ChildSpec(
            StressWorker,
            args=(f"c{i}",),
            name=f"c{i}",
            restart=r,
            directives={Boom: Directive.RESUME, Fatal: Directive.ESCALATE}
            if res
            else {Fatal: Directive.STOP},
        )
        for i, (r, res) in enumerate(zip(restarts, resume, strict=True))
    ]
    if nested:  # a one-for-all supervisor of d0, d1 as the last child
        inner = [ChildSpec(StressWorker, args=(d,), name=d) for d in ("d0", "d1")]
        specs.append(
            Supervisor.spec(inner, strategy=Strategy.ONE_FOR_ALL, max_restarts=1, name="inner")
        )
    system_ref: Any = None
    sup = Supervisor.spec(specs, strategy=strategy, max_restarts=max_restarts, name="sup")
    try:
        async with open_system(root=Supervisor.spec([sup], max_restarts=2)) as system:
            system_ref = system
            watcher = await system.spawn(Watcher)
            for batch in batches:
                with trio.fail_after(10_000):  # a hang shows as TooSlowError
                    async with trio.open_nursery() as nursery:
                        for name, i in batch:
                            nursery.start_soon(_op, system, watcher, name, i)
                    await trio.testing.wait_all_tasks_blocked()
                for label in LABELS:  # whatever runs answers
                    try:
                        ref = system.lookup(label)
                    except NoSuchAtom:
                        continue
                    with trio.fail_after(10_000), contextlib.suppress(AtomStopped):
                        await ref.ask(Worker.get)
    except (RestartIntensityExceeded, Escalated):
        pass  # the supervisor gave up and took the system down: allowed
    # Every atom of the system has stopped: no cell is left behind.
    leftovers = [c for c in _directory._cells.values() if c.system is system_ref]
    assert leftovers == []


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    strategy=st.sampled_from([Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]),
    kinds=st.lists(
        st.tuples(st.sampled_from(list(Restart)), st.booleans()), min_size=1, max_size=3
    ),
    max_restarts=st.sampled_from([None, 0, 2]),
    nested=st.booleans(),
    batches=st.lists(
        st.lists(
            st.tuples(st.sampled_from(OPS), st.integers(0, len(LABELS) - 1)),
            min_size=1,
            max_size=4,
        ),
        max_size=5,
    ),
)
def test_concurrent_failures_and_stops_never_hang(
    strategy: Strategy,
    kinds: list[tuple[Restart, bool]],
    max_restarts: int | None,
    nested: bool,
    batches: list[list[tuple[str, int]]],
) -> None:
    EVENTS.clear()
    restarts = [k for k, _ in kinds]
    resume = [r for _, r in kinds]
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(_scenario, strategy, restarts, resume, max_restarts, nested, batches, clock=clock)


def test_stress_scenario_can_fail() -> None:
    # The harness itself bites: an unexpected error escapes.
    async def boom() -> None:
        await _op(object(), None, "incr", 0)

    with pytest.raises(AttributeError):
        trio.run(boom)
