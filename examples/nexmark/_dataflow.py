"""Dataflows of atoms: a source, partitioned operator stages, and watermarks.

A query is a pipeline of *stages*. Each stage is ``parallelism`` partitions,
each a :class:`Stage` atom running one :class:`Operator` (plain, deterministic
Python: what to do with an item, and what to emit when event time passes a
point). Items travel in batches (one message carries many events, as Flink's
network buffers do); a stage routes its output to the next stage's partitions
by the next stage's key. Event time moves by *watermarks*: the source sends
one after each batch to every partition of the first stage; a partition's
watermark is the least of its inputs', and when it advances the operator closes
what it can (windows, auctions) and the watermark goes on to every partition
downstream. Messages from one sender to one receiver arrive in order, so a
watermark never overtakes the batches sent before it.

Every send waits for room (``Ref.send``), and mailboxes are bounded, so a fast
source slows to the pace of the slowest stage instead of filling memory.

This module runs in every deployment: natively, on worker hosts and inside the
WebAssembly sandbox, so it imports only the standard library and
``radon_actors`` (operators and key functions cross as records and by name).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from radon_actors import Atom, Ref, handler

__all__ = ["END_OF_TIME", "Operator", "Stage", "partition_of", "route"]

END_OF_TIME = 2**62
"""The watermark that closes everything (end of the stream)."""

Key = Callable[[Any], Any]


class Operator:
    """What one partition of a stage does. Subclasses are dataclasses (their
    fields are the query's parameters; they cross to wherever the stage runs)
    and keep their working state in attributes made by :meth:`open`."""

    def open(self) -> None:
        """Make the working state (called once, where the stage runs)."""

    def process(self, item: Any, out: list[Any]) -> None:
        """Handle one item, appending what it produces to ``out``."""
        out.append(item)

    def advance(self, watermark: int, out: list[Any]) -> None:
        """Event time reached ``watermark``: close what ends at or before it."""


def partition_of(key: Any, partitions: int) -> int:
    """The partition a key goes to: stable across processes and languages
    (Python's own ``hash`` of a string is salted per process)."""
    if partitions == 1:
        return 0
    if type(key) is int:
        return key % partitions
    return zlib.crc32(str(key).encode()) % partitions


async def route(
    outputs: list[Ref[Any]], key: Key | None, items: list[Any], sender: int, turn: int
) -> None:
    """Send ``items`` on to the next stage's partitions: all to its only one;
    with no key, the whole batch to partition ``turn`` (round robin); else each
    item to its key's partition."""
    n = len(outputs)
    if n == 1:
        await outputs[0].send("batch", items, sender)
        return
    if key is None:
        await outputs[turn % n].send("batch", items, sender)
        return
    parts: list[list[Any]] = [[] for _ in outputs]
    for item in items:
        parts[partition_of(key(item), n)].append(item)
    for output, part in zip(outputs, parts, strict=True):
        if part:
            await output.send("batch", part, sender)


class Stage(Atom):
    """One partition of a stage: batches and watermarks in, batches and
    watermarks out to the next stage's partitions."""

    mailbox_size = 64

    def __init__(
        self,
        operator: Operator,
        outputs: list[Ref[Any]],
        key: Key | None,
        inputs: int,
        index: int,
    ) -> None:
        self.operator = operator
        self.outputs = outputs
        self.route = key  # the next stage's partitioning key (None: round robin)
        self.inputs = inputs
        self.index = index
        self.marks = [-1] * inputs
        self.watermark = -1
        self.ended = 0
        self.turn = 0
        operator.open()

    @handler
    async def batch(self, items: list[Any], source: int) -> None:
        out: list[Any] = []
        process = self.operator.process
        for item in items:
            process(item, out)
        if out:
            self.turn += 1
            await route(self.outputs, self.route, out, self.index, self.turn)

    @handler
    async def mark(self, watermark: int, source: int) -> None:
        marks = self.marks
        if watermark <= marks[source]:
            return
        marks[source] = watermark
        low = min(marks)
        if low > self.watermark:
            await self._advance(low)

    @handler
    async def end(self, source: int) -> None:
        self.ended += 1
        if self.ended < self.inputs:
            return
        await self._advance(END_OF_TIME)
        for output in self.outputs:
            await output.send("end", self.index)

    async def _advance(self, watermark: int) -> None:
        self.watermark = watermark
        out: list[Any] = []
        self.operator.advance(watermark, out)
        if out:
            self.turn += 1
            await route(self.outputs, self.route, out, self.index, self.turn)
        for output in self.outputs:
            await output.send("mark", watermark, self.index)
