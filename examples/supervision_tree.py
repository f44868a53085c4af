"""A small supervision tree with a flaky worker: restarts, a resume, an escalation.

    root (the system's root supervisor, one_for_one, 2 restarts / 10 s)
    ├── ledger     a permanent worker that keeps a count; never fails
    ├── workers    a rest_for_one supervisor, 2 restarts / 10 s
    │   ├── flaky  fails on bad jobs (ValueError -> restart, KeyError -> resume)
    │   └── audit  started after flaky, so it restarts with it (rest_for_one)
    └── monitor    watches flaky and logs every Down notice

Run it with ``python examples/supervision_tree.py`` and read the log: the first
bad jobs restart `flaky` (and `audit` after it), a KeyError only resumes it, and
the third restart within 10 s makes `workers` give up: it stops its children
and escalates to the root, which restarts the whole `workers` subtree. A
restarted atom keeps its Ref; the subtree rebuilt after the escalation has new
atoms, so the loop looks `flaky` up by name (names are the stable handle), and
the monitor is told to follow the current `flaky` before each job (watching is
idempotent, so that is free while `flaky` stays the same atom).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
import trio

from radon_actors import (
    Atom,
    ChildSpec,
    Directive,
    Down,
    Strategy,
    Supervisor,
    handler,
    open_system,
)


def _drop_tracebacks(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.pop("exc_info", None)  # keep the demo's output to one line per event
    return event


log = structlog.get_logger("example")


class Ledger(Atom):
    def __init__(self) -> None:
        self.done = 0

    @handler
    def record(self) -> int:
        self.done += 1
        return self.done


class Flaky(Atom):
    """Does jobs; a job named "bad" breaks it, "missing" is an ordinary error."""

    def __init__(self) -> None:
        self.jobs = 0

    @handler
    def work(self, job: str) -> int:
        if job == "bad":
            raise ValueError(f"cannot do job {job!r}")
        if job == "missing":
            raise KeyError(job)
        self.jobs += 1
        return self.jobs


class Audit(Atom):
    def on_start(self) -> None:
        self.log.info("audit.started")


class Monitor(Atom):
    @handler
    def follow(self, ref: Any) -> None:
        self.watch(ref, Monitor.on_down)

    @handler
    def on_down(self, down: Down) -> None:
        what = "stopped" if down.stopped else "crashed and was kept"
        self.log.info("monitor.down", watched=down.ref.name, what=what, reason=repr(down.reason))


async def main() -> None:
    workers = Supervisor.spec(
        [
            ChildSpec(
                Flaky,
                name="flaky",
                directives={ValueError: Directive.RESTART, KeyError: Directive.RESUME},
            ),
            ChildSpec(Audit, name="audit"),
        ],
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=2,
        within=10,
        name="workers",
    )
    root = Supervisor.spec(
        [ChildSpec(Ledger, name="ledger"), workers, ChildSpec(Monitor, name="monitor")],
        max_restarts=2,
        within=10,
    )
    async with open_system(root=root) as system:
        ledger, monitor = system.lookup("ledger"), system.lookup("monitor")
        for job in ["a", "b", "bad", "c", "missing", "d", "bad", "e", "bad", "f", "bad", "g"]:
            flaky = system.lookup("flaky")
            await monitor.ask(Monitor.follow, flaky)
            try:
                n = await flaky.ask(Flaky.work, job)
                await ledger.ask(Ledger.record)
                log.info("job.done", job=job, jobs_in_this_incarnation=n)
            except (ValueError, KeyError) as exc:
                log.warning("job.failed", job=job, error=repr(exc))
            await trio.sleep(0.01)  # let the supervisors act before the next job
        children = await system.root.ask(Supervisor.which_children)
        for info in children:
            log.info("root.child", id=info.id, restarts=info.restarts)
        log.info("ledger.total", done=await ledger.ask(Ledger.record) - 1)


if __name__ == "__main__":
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _drop_tracebacks,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    try:
        trio.run(main)
    except* KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: the system stopped its atoms on the way out
