"""Running a Nexmark query: the source, the sink, the stages, in a deployment.

Host-side (trio): the source generates events in the entry process, and the
sink collects the results there; the operator stages run where the mode says:

* ``local``: every stage in this process;
* ``hosts``: the partitions of every stage spread over worker hosts
  (``System.start_host``), round robin;
* ``sandboxed``: every stage in this process, inside the WebAssembly sandbox.

The stages' code is the same in every mode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import attrs

from radon_actors import Atom, Ref, System, handler

from ._dataflow import Key, route
from ._generator import NexmarkConfig, event, watermark
from ._queries import PLANS, Plan, QueryStage

__all__ = ["MODES", "Result", "Sink", "Source", "run_query"]

MODES = ("local", "hosts", "sandboxed")


class Source(Atom):
    """Generates events ``first`` to ``first + count - 1`` and sends them in
    batches, each followed by the generator's watermark, then the end."""

    def __init__(
        self,
        config: NexmarkConfig,
        count: int,
        batch: int,
        outputs: list[Ref[Any]],
        key: Key | None,
        events: Sequence[Any] | None = None,
    ) -> None:
        self.config = config
        self.count = count
        self.batch = batch
        self.outputs = outputs
        self.route = key
        self.events = events  # pre-generated (timestamp, event) pairs, if given

    @handler
    async def run(self) -> int:
        config, outputs, key = self.config, self.outputs, self.route
        events = self.events
        for start in range(0, self.count, self.batch):
            stop = min(start + self.batch, self.count)
            if events is not None:
                items = [events[i][1] for i in range(start, stop)]
            else:
                items = [event(config, i)[1] for i in range(start, stop)]
            await route(outputs, key, items, 0, start // self.batch)
            mark = watermark(config, stop - 1)
            for output in outputs:
                await output.send("mark", mark, 0)
        for output in outputs:
            await output.send("end", 0)
        return self.count


class Sink(Atom):
    """Collects a query's results (or only counts them) until every input ended."""

    mailbox_size = 256

    def __init__(self, inputs: int, keep: bool) -> None:
        self.inputs = inputs
        self.keep = keep
        self.items: list[Any] = []
        self.count = 0
        self.ended = 0
        self.watermark = -1

    @handler
    def batch(self, items: list[Any], source: int) -> None:
        self.count += len(items)
        if self.keep:
            self.items.extend(items)

    @handler
    def mark(self, watermark: int, source: int) -> None:
        self.watermark = max(self.watermark, watermark)

    @handler
    def end(self, source: int) -> None:
        self.ended += 1
        if self.ended == self.inputs:
            self.unstash_all()  # answer the waiting `results`

    @handler
    def results(self) -> tuple[int, list[Any]]:
        """The results once the stream ended (the asker waits until then)."""
        if self.ended < self.inputs:
            self.stash()
            return 0, []
        return self.count, self.items


@attrs.frozen
class Result:
    """One query run: its results (if kept), how many, and how fast."""

    query: int
    mode: str
    events: int
    results: list[Any]
    count: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


async def run_query(
    system: System,
    query: int,
    config: NexmarkConfig,
    events: int,
    *,
    mode: str = "local",
    parallelism: int = 2,
    batch: int = 256,
    hosts: Sequence[str] = (),
    keep: bool = True,
    pregenerated: Sequence[Any] | None = None,
) -> Result:
    """Run query ``query`` over events 0 to ``events - 1`` and return its results.

    ``hosts`` names the worker hosts the ``hosts`` mode spreads stages over
    (started already). ``pregenerated`` (the first ``events`` pairs of
    :func:`events`) makes the source send instead of generate.
    """
    if mode not in MODES:
        raise ValueError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
    if query not in PLANS:
        raise ValueError(f"query is one of {sorted(PLANS)}, not {query!r}")
    if mode == "hosts" and not hosts:
        raise ValueError("the hosts mode needs worker hosts: start some and name them")
    plan: Plan = PLANS[query]
    stages = plan.stages(config, parallelism)
    spawned: list[Ref[Any]] = []
    sink = await system.spawn(Sink, stages[-1].parallelism if stages else 1, keep)
    spawned.append(sink)
    outputs: list[Ref[Any]] = [sink]
    out_key: Key | None = None
    placed = 0
    try:
        for i in range(len(stages) - 1, -1, -1):
            stage = stages[i]
            inputs = stages[i - 1].parallelism if i > 0 else 1
            refs = []
            for index in range(stage.parallelism):
                options: dict[str, Any] = {}
                if mode == "hosts":
                    options["host"] = hosts[placed % len(hosts)]
                    placed += 1
                elif mode == "sandboxed":
                    options["sandbox"] = True
                operator = stage.operator()
                ref = await system.spawn(
                    QueryStage, operator, outputs, out_key, inputs, index, **options
                )
                refs.append(ref)
                spawned.append(ref)
            outputs = refs
            out_key = stage.key
        source = await system.spawn(Source, config, events, batch, outputs, out_key, pregenerated)
        spawned.append(source)
        started = time.perf_counter()
        await source.ask(Source.run)
        count, results = await sink.ask(Sink.results)
        seconds = time.perf_counter() - started
    finally:
        for ref in spawned:
            await system.stop(ref)
    return Result(query, mode, events, list(results), count, seconds)
