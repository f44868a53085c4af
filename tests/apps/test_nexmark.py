"""Nexmark on atoms (issue #17): every query's dataflow gives its reference
answer, as a multiset, in every deployment mode; a fast source never fills
memory; the command line runs, checks and refuses bad input."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from cluster_helpers import cluster

from examples.nexmark._generator import NexmarkConfig, events
from examples.nexmark._oracle import QUERIES
from examples.nexmark._queries import PLANS, Pass, QueryStage
from examples.nexmark._run import Source, run_query
from radon_actors import Atom, handler, open_system
from radon_actors.testing import cell_of

ROOT = Path(__file__).resolve().parents[2]
# 100 events per second of event time: 3,000 events span 30 s, several 10 s
# windows (at Beam's default rate they would all fall in one).
CONFIG = NexmarkConfig(first_event_rate=100, next_event_rate=100)
COUNT = 3_000
EVENTS = list(events(CONFIG, COUNT))


def as_multiset(items: list[Any]) -> collections.Counter[str]:
    return collections.Counter(map(repr, items))


def expected(query: int) -> collections.Counter[str]:
    return as_multiset(list(QUERIES[query](EVENTS, CONFIG)))


@pytest.mark.parametrize("query", sorted(PLANS))
async def test_each_query_equals_its_reference_in_one_process(query: int) -> None:
    async with open_system() as system:
        result = await run_query(system, query, CONFIG, COUNT, parallelism=3, batch=64)
    assert result.count == len(result.results)
    assert as_multiset(result.results) == expected(query)
    assert result.results or query in (2, 3)  # Q2 and Q3 select rarely


async def test_every_query_equals_its_reference_with_stages_on_worker_hosts() -> None:
    with trio.fail_after(300):
        async with cluster("w1", "w2") as system:
            for query in sorted(PLANS):
                result = await run_query(
                    system, query, CONFIG, COUNT, mode="hosts", hosts=["w1", "w2"], batch=128
                )
                assert as_multiset(result.results) == expected(query), query


async def test_every_query_equals_its_reference_with_sandboxed_stages() -> None:
    with trio.fail_after(600):
        async with open_system() as system:
            for query in sorted(PLANS):
                result = await run_query(system, query, CONFIG, COUNT, mode="sandboxed", batch=128)
                assert as_multiset(result.results) == expected(query), query


class Gate(Atom):
    """A sink that holds its turn until released: everything upstream backs up."""

    mailbox_size = 8

    def __init__(self) -> None:
        self.opened = trio.Event()
        self.count = 0
        self.ended = False

    @handler
    async def batch(self, items: list[Any], source: int) -> None:
        await self.opened.wait()
        self.count += len(items)

    @handler
    def mark(self, watermark: int, source: int) -> None:
        pass

    @handler
    def end(self, source: int) -> None:
        self.ended = True

    @handler
    def total(self) -> int:
        return self.count


async def test_a_fast_source_waits_for_a_slow_stage() -> None:
    """With the sink stuck, every mailbox fills to its bound and the source
    waits: memory does not grow with the stream. Released, nothing is lost."""
    config = NexmarkConfig()
    pairs = list(events(config, 20_000))
    async with open_system() as system:
        gate = await system.spawn(Gate)
        stage = await system.spawn(QueryStage, Pass(), [gate], None, 1, 0)
        source = await system.spawn(Source, config, len(pairs), 16, [stage], None, pairs)
        sent: list[int] = []

        async def run() -> None:
            sent.append(await source.ask(Source.run))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(run)
            await trio.testing.wait_all_tasks_blocked()
            stage_cell, gate_cell = cell_of(stage), cell_of(gate)
            assert stage_cell is not None and gate_cell is not None
            assert sent == []  # the source is waiting for room
            assert len(gate_cell.mailbox.user) == Gate.mailbox_size
            assert len(stage_cell.mailbox.user) == QueryStage.mailbox_size
            gate_cell.instance.opened.set()  # its mailbox is full: no message gets in
        assert sent == [len(pairs)]
        await trio.testing.wait_all_tasks_blocked()  # the stage forwards the rest
        assert await gate.ask(Gate.total) == len(pairs)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.nexmark", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_command_line_runs_and_checks_a_query() -> None:
    done = run_cli("--query", "5", "--events", "3000", "--rate", "100", "--check", "--show", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("query 5 (hot items), local: 3000 events -> ")
    assert lines[1].startswith("  AuctionCount(")
    assert lines[-1].startswith("check: the ") and "equal the reference" in lines[-1]
    # The rate moves the windows: at the default rate these events fit in one.
    fast = run_cli("--query", "5", "--events", "3000", "--check")
    assert fast.returncode == 0, fast.stderr
    assert int(fast.stdout.split(" -> ")[1].split()[0]) < int(lines[0].split(" -> ")[1].split()[0])
    hosts = run_cli("--query", "8", "--events", "2000", "--mode", "hosts", "--hosts", "1")
    assert hosts.returncode == 0, hosts.stderr
    assert "query 8 (monitor new users), hosts: 2000 events -> " in hosts.stdout


def test_the_command_line_refuses_bad_input() -> None:
    assert run_cli("--query", "9").returncode == 2
    bad = run_cli("--query", "1", "--batch", "0")
    assert bad.returncode == 2 and "positive number" in bad.stderr


@pytest.mark.parametrize("query", [3, 8])
async def test_joins_hold_for_any_partitioning(query: int) -> None:
    """The joins meet both sides in one partition whatever the count."""
    async with open_system() as system:
        for parallelism in (1, 4):
            result = await run_query(system, query, CONFIG, COUNT, parallelism=parallelism)
            assert as_multiset(result.results) == expected(query)
