"""Randomized schedules of live migration under load: a short seeded set
(``bench/migration_stress.py`` has the generator, the checks and a long run)."""

from __future__ import annotations

from bench.migration_stress import make_schedule, run_many

# Seeds are fixed so that a failure names a schedule that can be replayed with
# ``python -m bench.migration_stress --seed N --schedules 1``.
CALM_SEEDS = range(12)
KILL_SEEDS = range(100, 102)


def test_schedules_cover_the_cases() -> None:
    schedules = [make_schedule(seed) for seed in range(200)]
    assert {s.mailbox for s in schedules} >= {1, 2, 1000}
    assert {s.how for sch in schedules for s in sch.senders} == {"tell", "send", "ask"}
    assert {s.where for sch in schedules for s in sch.senders} == {"local", "w1"}
    assert {to for sch in schedules for _, to in sch.moves} == {"local", "w1", "w2"}
    assert any(s.kill_after is not None for s in schedules)
    assert make_schedule(5) == make_schedule(5)  # a seed names one schedule


async def test_seeded_schedules_lose_duplicate_reorder_and_hang_nothing() -> None:
    results = await run_many(CALM_SEEDS, kill=False, bound=60.0)
    assert len(results) == len(CALM_SEEDS)
    assert sum(r.migrations_done for r in results) >= len(CALM_SEEDS)
    assert all(r.migrations_failed == 0 and r.asks_failed == 0 for r in results)


async def test_seeded_schedules_with_a_host_killed_end_and_duplicate_nothing() -> None:
    results = await run_many(KILL_SEEDS, kill=True, bound=60.0)
    assert [r.schedule.kill_after is not None for r in results] == [True] * len(KILL_SEEDS)
