"""Durable atoms on other hosts (issue #19): the system's store travels to the
worker hosts it starts, and `radon host --state-store URL` names one, so a
durable atom saves to the same store wherever it runs, and a host that dies
loses only what was not saved."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import cluster, count_when_arrived, kill_host, radon_host
from durable_atoms import Caller, Cart, Roaming, RoamingReminded, Visits

from radon_actors import RedisStore, SQLiteStore, System, open_system
from radon_actors.durable import store_from_url
from radon_actors.testing import node_of


def test_store_urls_name_the_providers(tmp_path: Path) -> None:
    store = store_from_url(f"sqlite://{tmp_path}/a.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "a.db"
    assert store_from_url(store.url).url == store.url  # a URL round-trips
    assert isinstance(store_from_url("redis://127.0.0.1:1/0"), RedisStore)
    with pytest.raises(ValueError, match="unknown state store URL"):
        store_from_url("postgres://x")
    with pytest.raises(ValueError, match="no file"):
        store_from_url("sqlite://")


async def test_a_durable_atom_on_a_killed_worker_comes_back_with_what_it_saved(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    with trio.fail_after(60):
        async with cluster("w1", state_store=store) as system:
            cart = await system.spawn(Cart, name="u1", host="w1")
            await cart.ask(Cart.add, "saved on w1")
            assert await cart.ask(Cart.add, "unsaved", save=False) == [
                "saved on w1",
                "unsaved",
            ]
            peer = node_of(system).peer_by_name("w1")
            kill_host(system, "w1")
            while peer.down is None:  # the loss is noticed (the connection resets)
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            # Its supervisor restarts it here (no other host is up), from the store.
            assert await cart.ask(Cart.items) == ["saved on w1"]


async def test_radon_host_keeps_durable_state_where_its_flag_says(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    db = tmp_path / "host-state.db"
    with trio.fail_after(60):
        async with radon_host(secret, "durable", "--state-store", f"sqlite://{db}") as (_, line):
            address = line.split()[1]
            async with open_system(state_store=SQLiteStore(tmp_path / "mine.db")) as system:
                await system.connect_host(address, secret_file=secret)
                cart = await system.spawn(Cart, name="remote", host="durable")
                await cart.ask(Cart.add, "kept there")
    with sqlite3.connect(db) as conn:
        (document,) = conn.execute(
            "SELECT document FROM radon_state WHERE atom_type != '$radon'"
        ).fetchone()
    assert json.loads(document)["fields"]["items"] == ["kept there"]


def test_radon_host_refuses_an_unknown_state_store(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    cmd = [sys.executable, "-m", "radon_actors._cli", "host", "--listen", "127.0.0.1:0"]
    done = subprocess.run(
        [*cmd, "--secret-file", str(secret), "--state-store", "postgres://db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown state store URL" in done.stderr


async def _race(system: System, *ask: Any) -> set[int]:
    """Callers on w1 and w2 ask ``Caller.<ask>`` at once; the activations they saw."""
    callers = [await system.spawn(Caller, host=h) for h in ("w1", "w2")]
    seen: set[int] = set()

    async def visit(caller: Any) -> None:
        seen.update(await caller.ask(*ask))

    async with trio.open_nursery() as nursery:
        for caller in callers:
            nursery.start_soon(visit, caller)
    return seen


async def test_an_on_demand_ref_reaches_one_activation_from_every_host(tmp_path: Path) -> None:
    # The Ref's id names its directory (this process): asks from two worker
    # hosts, racing, and from here all reach the same single activation.
    with trio.fail_after(60):
        async with cluster("w1", "w2", state_store=SQLiteStore(tmp_path / "s.db")) as system:
            ref = system.get(Visits, "shared")
            seen = await _race(system, Caller.visits, ref, 20)
            count, activation = await ref.ask(Visits.seen)
            assert count == 40  # every visit, once
            assert seen == {activation}  # one activation
            activations = system.durability().activations  # type: ignore[attr-defined]
            assert list(activations.active) == [ref.id]


async def test_get_on_worker_hosts_reaches_the_activation_at_the_systems_directory(
    tmp_path: Path,
) -> None:
    # Atoms on two worker hosts call self.get(Visits, key) on their own hosts:
    # the system's process is the directory, so there is one activation.
    with trio.fail_after(60):
        async with cluster("w1", "w2", state_store=SQLiteStore(tmp_path / "s.db")) as system:
            seen = await _race(system, Caller.visits_by_key, "by-key", 10)
            count, activation = await system.get(Visits, "by-key").ask(Visits.seen)
            assert count == 20
            assert seen == {activation}


async def test_an_on_demand_atom_runs_where_its_policy_says_and_outlives_its_host(
    tmp_path: Path,
) -> None:
    # activate_on places the activation (RoundRobin over w1 and w2); when its
    # host dies, the next message activates the atom on the other one, with
    # what it had saved.
    with trio.fail_after(60):
        async with cluster("w1", "w2", state_store=SQLiteStore(tmp_path / "s.db")) as system:
            ref = system.get(Roaming, "r")
            assert await ref.ask(Roaming.visit) == 1
            first = await ref.ask(Roaming.where)
            assert first != os.getpid()
            host = next(
                name
                for name in ("w1", "w2")
                if node_of(system).processes[node_of(system).names[name]].pid == first
            )
            peer = node_of(system).peer_by_name(host)
            kill_host(system, host)
            while peer.down is None:
                await trio.testing.wait_all_tasks_blocked(cushion=0.01)
            assert await ref.ask(Roaming.visit) == 2  # saved state, reactivated
            second = await ref.ask(Roaming.where)
            assert second not in (first, os.getpid())


async def test_an_activation_on_a_worker_sets_reminders_the_system_serves(
    tmp_path: Path,
) -> None:
    # Workers share the system's store but do not serve its reminders (each
    # would be delivered once per process): an activation on a worker asks the
    # system's process to keep them (ReminderDesk), which delivers each to the
    # atom where its policy places it. Before, it raised RuntimeError.
    with trio.fail_after(60):
        async with cluster("w1", state_store=SQLiteStore(tmp_path / "s.db")) as system:
            ref = system.get(RoamingReminded, "k")
            await ref.ask(RoamingReminded.schedule, 0.0)  # a one-shot, due now
            assert await count_when_arrived(ref, RoamingReminded.count, 1) == 1
            assert await ref.ask(RoamingReminded.forget) is False  # delivered, then removed
            await ref.ask(RoamingReminded.schedule, 0.01, 0.01)  # periodic
            assert await count_when_arrived(ref, RoamingReminded.count, 4) >= 4
            assert await ref.ask(RoamingReminded.forget) is True


async def test_starting_a_host_opens_no_state_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A system with no durable atom and no state_store leaves no store file
    # behind, here or on its worker (it used to create the default one).
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RADON_STATE", raising=False)
    with trio.fail_after(60):
        async with cluster("w1") as system:
            await system.spawn(Caller, host="w1")  # an atom without durable state
    assert not [p for p in os.listdir(tmp_path) if p.startswith("radon-state")]
