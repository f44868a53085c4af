"""Benchmarking one's own atom: one handler, in every deployment, in one run.

What is measured, per deployment, on a fresh atom per run:

* the **ask round trip**: ``iterations`` sequential ``await ref.ask(handler,
  *args)`` after ``warmup`` untimed ones; p50/p90/p99 and the mean of the
  per-ask times, and asks per second (one asker, so ``1e6 / mean_us``);
* the **tell throughput**: ``messages`` ``await ref.send(handler, *args)`` (the
  sender waits when the mailbox is full, so nothing is dropped), then one ask
  as a barrier (one sender's messages arrive in order, so when it returns every
  tell has run); messages per second over the whole stream.

Deployments run interleaved run by run (so a burst of machine noise hits them
alike), each figure is the median over ``repeat`` runs, and the raw trio floor
(a memory-channel ping-pong between two tasks, and a one-way stream) is measured
in the same run: the ratios to it are what compare across machines.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
import trio

from .._atom import Atom, handler_name, handler_table
from .._errors import HandlerNotFound
from ._timing import (
    median_of,
    now_ns,
    percentiles,
    raw_channel_rtt,
    raw_channel_throughput,
    round_trips,
)

__all__ = ["DEPLOYMENTS", "Measurement", "Report", "measure", "run"]

DEPLOYMENTS: dict[str, str] = {
    "native": "native (this process)",
    "sandboxed": "sandboxed (WebAssembly, this process)",
    "worker": "on a worker host (other process, TCP)",
}
"""The deployments :func:`measure` knows, with the label its table prints."""

FLOOR = "floor"
_FLOOR_LABEL = "raw trio floor (memory channel)"
_WORKER = "bench-worker"

Progress = Callable[[str], None]


@attrs.frozen
class Measurement:
    """One deployment's figures: medians over the runs (the floor is one too)."""

    deployment: str
    """``"floor"``, or one of :data:`DEPLOYMENTS`."""
    label: str
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    asks_per_s: float
    """Sequential asks per second from one asker (``1e6 / mean_us``)."""
    tells_per_s: float | None
    """Throughput of ``await ref.send`` (``None`` when ``messages`` was 0)."""
    p50_ratio: float
    """p50 over the floor's p50 of the same run (1.0 for the floor)."""
    tells_ratio: float | None
    """tells_per_s over the floor's one-way throughput."""


@attrs.frozen
class Report:
    """What :func:`measure` found: one :class:`Measurement` per deployment that
    ran, the floor first, and why any other deployment could not run."""

    target: str
    """What was measured, as ``module.Class.handler(args)``."""
    iterations: int
    warmup: int
    repeat: int
    messages: int
    rows: tuple[Measurement, ...]
    failures: tuple[tuple[str, str], ...]
    """``(deployment, reason)`` for each deployment that failed."""
    machine: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        """True when every requested deployment was measured."""
        return not self.failures

    def get(self, deployment: str) -> Measurement | None:
        """The row of ``deployment`` (``"floor"``, ``"native"``...), if it ran."""
        return next((r for r in self.rows if r.deployment == deployment), None)

    def table(self) -> str:
        """The report as a terminal table."""
        lines = [
            f"{self.target}: median of {self.repeat} run(s) of {self.iterations:,} asks "
            f"(after {self.warmup:,} warm-up) and {self.messages:,} tells; "
            f"{self.machine['cpus']} CPUs, load {self.machine['load_average']}",
            f"{'deployment':40} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8} "
            f"{'asks/s':>9} {'p50 x':>6} {'tells/s':>10} {'tells x':>7}",
        ]
        for r in self.rows:
            tells = (
                f"{r.tells_per_s:10,.0f} {r.tells_ratio:7.2f}"
                if r.tells_per_s is not None and r.tells_ratio is not None
                else f"{'-':>10} {'-':>7}"
            )
            lines.append(
                f"{r.label:40} {r.p50_us:8.1f} {r.p90_us:8.1f} {r.p99_us:8.1f} "
                f"{r.mean_us:8.1f} {r.asks_per_s:9,.0f} {r.p50_ratio:6.2f} {tells}"
            )
        for deployment, reason in self.failures:
            lines.append(f"{DEPLOYMENTS.get(deployment, deployment):40} failed: {reason}")
        lines.append("x: ratio to the raw trio floor of the same run (lower p50 x is better)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``json.dump``)."""
        return attrs.asdict(self, recurse=True)


def _machine() -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": load,
    }


def _describe(atom: type[Atom], name: str, args: tuple[Any, ...], kw: Mapping[str, Any]) -> str:
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kw.items()]
    return f"{atom.__module__}.{atom.__qualname__}.{name}({', '.join(shown)})"


async def measure(
    atom: type[Atom],
    handler: str | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    init_args: Sequence[Any] = (),
    init_kwargs: Mapping[str, Any] | None = None,
    deployments: Sequence[str] = ("native",),
    iterations: int = 2_000,
    warmup: int | None = None,
    repeat: int = 3,
    messages: int = 10_000,
    progress: Progress | None = None,
) -> Report:
    """Measure ``atom``'s ``handler`` (a name, or the function: ``Counter.incr``)
    called with ``args``/``kwargs``, on atoms built with ``atom(*init_args,
    **init_kwargs)``, in each of ``deployments`` (see :data:`DEPLOYMENTS`) and
    on the raw trio floor, in one run. Call it from trio; :func:`run` is the
    same from synchronous code.

    ``warmup`` untimed asks precede each timed run (default: a tenth of
    ``iterations``, at least 10); ``repeat`` runs per deployment are interleaved
    and the medians reported; ``messages`` tells per run measure throughput (0
    skips it). ``progress`` gets a line per step (for a terminal; the library
    itself prints nothing). A ``"sandboxed"`` deployment needs the atom's class
    in an importable module, and its component is built before the timing starts
    (seconds the first time, cached after); a ``"worker"`` one starts a worker
    host (``System.start_host``) once and stops it at the end.

    Bad input (not an atom class, unknown handler or deployment, arguments that
    do not fit the handler, non-positive counts) raises before anything starts;
    a deployment that fails (its handler raises, its module cannot be sandboxed)
    is reported in :attr:`Report.failures` and the others still run.
    """
    if not (isinstance(atom, type) and issubclass(atom, Atom)):
        raise TypeError(f"measure() takes an Atom subclass, not {atom!r}")
    name = handler_name(handler)
    spec = handler_table(atom).get(name)
    if spec is None:
        known = sorted(k for k in handler_table(atom) if isinstance(k, str))
        raise HandlerNotFound(
            f"{atom.__qualname__} has no handler {name!r} (handlers: {', '.join(known)})"
        )
    args = tuple(args)
    kw = dict(kwargs or {})
    spec.validate(args, kw)
    unknown = [d for d in deployments if d not in DEPLOYMENTS]
    if unknown or not deployments:
        raise ValueError(
            f"unknown deployment(s) {unknown or list(deployments)}; choose from "
            f"{', '.join(DEPLOYMENTS)}"
        )
    if iterations < 1 or repeat < 1 or messages < 0 or (warmup is not None and warmup < 0):
        raise ValueError(
            "iterations and repeat must be at least 1, messages and warmup at least 0 "
            f"(got iterations={iterations}, repeat={repeat}, messages={messages}, "
            f"warmup={warmup})"
        )
    warm = max(10, iterations // 10) if warmup is None else warmup
    say = progress or (lambda _message: None)
    wanted = list(dict.fromkeys(deployments))
    init = (tuple(init_args), dict(init_kwargs or {}))
    bench = _Bench(atom, name, args, kw, init, iterations, warm, messages)
    report = await bench.run(wanted, repeat, say)
    return attrs.evolve(report, target=_describe(atom, name, args, kw))


def run(atom: type[Atom], handler: str | Callable[..., Any], **options: Any) -> Report:
    """:func:`measure` from synchronous code (runs trio for the duration)."""
    return trio.run(partial(measure, atom, handler, **options))


@attrs.define
class _Bench:
    atom: type[Atom]
    handler: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    init: tuple[tuple[Any, ...], dict[str, Any]]
    iterations: int
    warmup: int
    messages: int

    async def run(self, wanted: list[str], repeat: int, say: Progress) -> Report:
        from .. import open_system

        failures: dict[str, str] = {}
        rtts: dict[str, list[dict[str, float]]] = {d: [] for d in [FLOOR, *wanted]}
        tells: dict[str, list[float]] = {d: [] for d in [FLOOR, *wanted]}
        async with open_system() as system:
            live = [d for d in wanted if await self._prepare(system, d, say, failures)]
            for k in range(repeat):
                say(
                    f"run {k + 1} of {repeat}: {self.iterations:,} asks and "
                    f"{self.messages:,} tells on {', '.join([FLOOR, *live])}"
                )
                gc.collect()
                rtts[FLOOR].append(percentiles(await raw_channel_rtt(self.iterations, self.warmup)))
                if self.messages:
                    gc.collect()
                    tells[FLOOR].append(await raw_channel_throughput(self.messages))
                for d in list(live):
                    try:
                        rtt, tput = await self._one_run(system, d)
                    except Exception as exc:
                        failures[d] = f"{type(exc).__name__}: {exc}"
                        live.remove(d)
                        say(f"{d}: failed: {failures[d]}")
                        continue
                    rtts[d].append(percentiles(rtt))
                    if tput is not None:
                        tells[d].append(tput)
        rows = [self._row(d, rtts[d], tells[d]) for d in [FLOOR, *wanted] if d not in failures]
        floor = rows[0]
        rows = [
            attrs.evolve(
                r,
                p50_ratio=r.p50_us / floor.p50_us,
                tells_ratio=(
                    r.tells_per_s / floor.tells_per_s
                    if r.tells_per_s is not None and floor.tells_per_s
                    else None
                ),
            )
            for r in rows
        ]
        return Report(
            target="",
            iterations=self.iterations,
            warmup=self.warmup,
            repeat=repeat,
            messages=self.messages,
            rows=tuple(rows),
            failures=tuple((d, failures[d]) for d in wanted if d in failures),
            machine=_machine(),
        )

    async def _prepare(
        self, system: Any, deployment: str, say: Progress, failures: dict[str, str]
    ) -> bool:
        """Untimed set-up of a deployment; False (and why, in ``failures``) if it
        cannot run at all."""
        try:
            if deployment == "sandboxed":
                from ..sandbox import _engine

                module = self.atom.__module__
                say(f"sandboxed: loading the component of {module} (the first time builds it)")
                await trio.to_thread.run_sync(partial(_engine.load, module, progress=say))
            elif deployment == "worker":
                say("worker: starting a worker host")
                await system.start_host(_WORKER)
        except Exception as exc:
            failures[deployment] = f"{type(exc).__name__}: {exc}"
            say(f"{deployment}: cannot run: {failures[deployment]}")
            return False
        return True

    async def _one_run(self, system: Any, deployment: str) -> tuple[list[int], float | None]:
        init_args, init_kwargs = self.init
        # Explicit either way: a class whose ``sandbox`` attribute is True must
        # still run natively in the native and worker rows.
        options: dict[str, Any] = {"sandbox": deployment == "sandboxed"}
        if deployment == "worker":
            options["host"] = _WORKER
        gc.collect()
        ref = await system.spawn(self.atom, *init_args, **options, **init_kwargs)
        try:
            h, args, kwargs = self.handler, self.args, self.kwargs

            async def op(_i: int) -> Any:
                return await ref.ask(h, *args, **kwargs)

            rtt = await round_trips(op, self.iterations, self.warmup, check=_any_answer)
            tput = None
            if self.messages:
                gc.collect()
                t0 = now_ns()
                for _ in range(self.messages):
                    await ref.send(h, *args, **kwargs)
                await ref.ask(h, *args, **kwargs)  # the barrier: every tell ran
                tput = (self.messages + 1) / ((now_ns() - t0) / 1e9)
            return rtt, tput
        finally:
            with trio.CancelScope(shield=True):
                await system.stop(ref)

    def _row(
        self, deployment: str, rtts: list[dict[str, float]], tells: list[float]
    ) -> Measurement:
        m = median_of(rtts)
        tput = statistics.median(tells) if tells else None
        return Measurement(
            deployment=deployment,
            label=_FLOOR_LABEL if deployment == FLOOR else DEPLOYMENTS[deployment],
            p50_us=m["p50_us"],
            p90_us=m["p90_us"],
            p99_us=m["p99_us"],
            mean_us=m["mean_us"],
            asks_per_s=1e6 / m["mean_us"] if m["mean_us"] else float("inf"),
            tells_per_s=tput,
            p50_ratio=1.0,
            tells_ratio=None,
        )


def _any_answer(_i: int, _result: Any) -> None:
    """A user's handler answers what it likes: any answer counts (errors raise)."""
