"""Sandboxed durable atoms (issue #19): a sandboxed atom keeps its declared
state in the system's store through the standard's state operations
(radon:atom 0.5.0), in the same stored form as a native one, so either kind of
incarnation reads what the other saved; the guest names only its own declared
states, and the host decides its type and key."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import cluster
from sandbox_atoms import Account, Counter, Reminding, SandboxedAccount

from radon_actors import (
    ChildSpec,
    ForeignError,
    MessageNotPortable,
    SandboxConfig,
    SandboxDenied,
    SpawnError,
    SQLiteStore,
    StateConflict,
    Supervisor,
    open_system,
)
from radon_actors.sandbox import _engine
from radon_actors.sandbox._manifest import read_manifest
from radon_actors.sandbox.host import content_hash

pytestmark = pytest.mark.usefixtures("sandbox_component")


def _stored(db: Path) -> dict[str, object]:
    with sqlite3.connect(db) as conn:
        (document,) = conn.execute(
            "SELECT document FROM radon_state WHERE atom_type = 'account'"
        ).fetchone()
    loaded: dict[str, object] = json.loads(document)
    return loaded


@pytest.mark.parametrize(("first", "second"), [(True, False), (False, True)])
async def test_native_and_sandboxed_incarnations_read_what_the_other_saved(
    tmp_path: Path, first: bool, second: bool
) -> None:
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        account = await system.spawn(Account, name="k", sandbox=first)
        assert await account.ask(Account.deposit, 5, "first") == 5
        assert await account.ask(Account.deposit, 1, save=False) == 6  # not saved
    assert _stored(db) == {
        "radon-state": 1,
        "version": 1,
        "fields": {"total": 5, "memos": ["first"], "payee": None},
    }
    async with open_system(state_store=SQLiteStore(db)) as system:
        account = await system.spawn(Account, name="k", sandbox=second)
        etag, exists, started_with, memos = await account.ask(Account.info)
        assert (etag, exists, started_with, memos) == ("1", True, 5, ["first"])
        assert await account.ask(Account.deposit, 2, "second") == 7
        assert await account.ask(Account.reload) == 7
        await account.ask(Account.clear)
        assert await account.ask(Account.info) == ["3", False, 5, []]


async def test_refs_in_a_sandboxed_state_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        counter = await system.spawn(Counter, 10, name="payee")
        account = await system.spawn(Account, name="r", sandbox=True)
        await account.ask(Account.set_payee, counter)
        stored = _stored(db)["fields"]
        assert isinstance(stored, dict)
        assert stored["payee"] == {"$ref": [None, counter.id, "payee"]}  # by atom id
        await system.stop(account)
        account = await system.spawn(Account, name="r", sandbox=True)
        assert await account.ask(Account.pay, 5) == 15  # the guest got a handle again


async def test_a_restarted_sandboxed_atom_comes_back_with_what_it_saved(
    tmp_path: Path,
) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        await system.spawn(Supervisor, [ChildSpec(Account, name="acct", sandbox=True)])
        account = system.lookup("acct")
        await account.ask(Account.deposit, 3, "kept")
        await account.ask(Account.deposit, 4, save=False)
        with pytest.raises(RuntimeError, match="crash"):
            await account.ask(Account.crash)
        await trio.testing.wait_all_tasks_blocked()
        account = system.lookup("acct")
        assert await account.ask(Account.info) == ["1", True, 3, ["kept"]]


async def test_a_stale_sandboxed_incarnation_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    async with (
        open_system(state_store=SQLiteStore(db)) as one,
        open_system(state_store=SQLiteStore(db)) as two,
    ):
        first = await one.spawn(Account, name="dup", sandbox=True)
        second = await two.spawn(Account, name="dup")
        await second.ask(Account.deposit, 1)  # the native one writes first
        with pytest.raises(StateConflict, match="written by another incarnation"):
            await first.ask(Account.deposit, 2)
        # The conflict failed the turn; the restart loads what the other wrote.
        await trio.testing.wait_all_tasks_blocked()
        assert await first.ask(Account.balance) == 1
    assert _stored(db)["fields"] == {"total": 1, "memos": [], "payee": None}


async def test_a_sandboxed_durable_atom_needs_a_key(tmp_path: Path) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        with pytest.raises(SpawnError, match="needs a key"):
            await system.spawn(Account, sandbox=True)


async def test_a_guest_reaches_only_its_own_declared_states(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    await store.write("account", "k", "secret", json.dumps({"pin": 1234}), None)
    async with open_system(state_store=store) as system:
        account = await system.spawn(Account, name="k", sandbox=True)
        with pytest.raises(SandboxDenied, match="has no durable state 'secret'"):
            await account.ask(Account.raw_read, "secret")
        assert await account.ask(Account.raw_read, "ledger") is None  # its own: allowed
        native = await system.spawn(Account, name="n")  # natively, no such check
        assert await native.ask(Account.raw_read, "secret") is None  # ("n" has none)


async def test_a_hostile_state_document_is_refused_within_the_atoms_limits(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    config = SandboxConfig(max_value=10_000)
    async with open_system(state_store=SQLiteStore(db)) as system:
        account = await system.spawn(Account, name="h", sandbox=config)
        await account.ask(Account.deposit, 1)
        with pytest.raises(MessageNotPortable, match="cannot leave the sandbox"):
            await account.ask(Account.raw_write, {"radon-state": 1, "junk": "x" * 20_000})
        # A document of the right size but the wrong shape is the guest's to
        # regret: the next load refuses it (a SpawnError), not the host.
        await account.ask(Account.raw_write, {"not": "a state"})
        await system.stop(account)
        with pytest.raises(SpawnError, match="not a radon-actors state document"):
            await system.spawn(Account, name="h", sandbox=True)


async def test_a_sandboxed_on_demand_atom_loads_its_state_and_keeps_its_reminder(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        account = system.get(SandboxedAccount, "od")
        assert await account.ask(Account.deposit, 7, "on demand") == 7
        activations = system.durability().activations  # type: ignore[attr-defined]
        cell = activations.active[account.id].cell
        assert cell is not None and cell.runtime is not None  # sandboxed
        await account.ask(Account.remind_me, 120.0)
        await trio.sleep(121)  # collected after 60 s idle, reactivated by the reminder
        assert await account.ask(Account.info) == ["2", True, 7, ["on demand", "reminded"]]
        assert await account.ask(Account.balance) == 107


async def test_a_sandboxed_durable_atom_migrates_and_saves_on_the_other_host(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    with trio.fail_after(120):
        async with cluster("w1", state_store=SQLiteStore(db)) as system:
            account = await system.spawn(Account, name="m", sandbox=True)
            await account.ask(Account.deposit, 2, "here")
            await system.migrate(account, to="w1")
            assert await account.ask(Account.deposit, 3, "there") == 5  # etag moved with it
    assert _stored(db)["fields"] == {"total": 5, "memos": ["here", "there"], "payee": None}


async def test_a_component_declares_its_states_and_a_host_runs_them_from_it(
    tmp_path: Path,
) -> None:
    loaded = _engine.load("sandbox_atoms")
    manifest = read_manifest(loaded)
    assert manifest.standard == "0.6.0"
    account = manifest.atom("sandbox_atoms:Account")
    assert (account.durable_type, account.states) == ("account", (("ledger", 1),))
    assert manifest.atom("sandbox_atoms:Counter").states == ()
    _h, path = await content_hash(loaded)
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        ref = await system.spawn_component(path, "Account", name="c")
        assert await ref.ask("deposit", 9, "from the component") == 9
        native = await system.spawn(Account, name="c2")
        await native.ask(Account.deposit, 1)
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT key, document FROM radon_state").fetchall())
    assert json.loads(rows["c"])["fields"]["memos"] == ["from the component"]


JS_ACCOUNT = Path(__file__).resolve().parents[1] / "atoms" / "js" / "account.js"


@pytest.fixture(scope="module")
def js_account() -> Path:
    """The JavaScript twin of Account, built once (cached on disk)."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: JavaScript atoms cannot be built here")
    from radon_actors.sandbox._jsbuild import build_js

    return build_js(JS_ACCOUNT).wasm


@pytest.mark.parametrize("javascript_first", [True, False])
async def test_javascript_and_python_incarnations_read_what_the_other_saved(
    tmp_path: Path, js_account: Path, javascript_first: bool
) -> None:
    db = tmp_path / "s.db"

    async def spawn(system: Any, javascript: bool) -> Any:
        if javascript:
            return await system.spawn_component(js_account, "Account", name="k")
        return await system.spawn(Account, name="k")

    async with open_system(state_store=SQLiteStore(db)) as system:
        account = await spawn(system, javascript_first)
        assert await account.ask("deposit", 5, "first") == 5
        assert await account.ask("deposit", 1, save=False) == 6  # a keyword; not saved
    fields = _stored(db).get("fields") or _stored(db).get("value")
    assert fields == {"total": 5, "memos": ["first"], "payee": None}
    async with open_system(state_store=SQLiteStore(db)) as system:
        account = await spawn(system, not javascript_first)
        assert await account.ask("info") == ["1", True, 5, ["first"]]
        assert await account.ask("deposit", 2, "second") == 7
        assert await account.ask("reload") == 7
        await account.ask("clear")
        assert await account.ask("info") == ["3", False, 5, []]


async def test_a_javascript_durable_atom_restarts_and_migrates_with_its_state(
    tmp_path: Path, js_account: Path
) -> None:
    db = tmp_path / "s.db"
    with trio.fail_after(120):
        async with cluster("w1", state_store=SQLiteStore(db)) as system:
            account = await system.spawn_component(js_account, "Account", name="m")
            await account.ask("deposit", 3, "kept")
            await account.ask("deposit", 4, "lost", False)
            with pytest.raises(ForeignError, match="crash"):
                await account.ask("crash")
            await trio.testing.wait_all_tasks_blocked()
            assert await account.ask("info") == ["1", True, 3, ["kept"]]  # restarted: saved only
            await system.migrate(account, to="w1")
            assert await account.ask("deposit", 2, "there") == 5  # the etag moved with it
    assert _stored(db)["value"] == {"total": 5, "memos": ["kept", "there"], "payee": None}


POLYGLOT_DOC = Path(__file__).resolve().parents[2] / "docs" / "polyglot.md"


async def test_the_documented_javascript_cart_keeps_its_items(
    tmp_path: Path, js_account: Path
) -> None:
    found = re.search(
        r"```js\n(import \{ Atom, state \}.*?)```", POLYGLOT_DOC.read_text(), re.DOTALL
    )
    assert found is not None
    source = tmp_path / "cart" / "cart.js"
    source.parent.mkdir()
    source.write_text(found.group(1))
    from radon_actors.sandbox._jsbuild import build_js

    wasm = (await trio.to_thread.run_sync(build_js, source)).wasm
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        cart = await system.spawn_component(wasm, "Cart", name="user-42")
        assert await cart.ask("add", "apple") == ["apple"]
    async with open_system(state_store=SQLiteStore(db)) as system:
        cart = await system.spawn_component(wasm, "Cart", name="user-42")
        assert await cart.ask("add", "pear") == ["apple", "pear"]


async def test_a_javascript_on_demand_atom_keeps_its_reminders(
    tmp_path: Path, js_account: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A component's atom is on demand like a Python class (``component_class``,
    then ``system.get``), and a JavaScript one stores reminders through the
    standard's ``remind``: one that reactivates it after collection, a periodic
    one, forgetting it, and bad arguments refused in the guest."""
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        cls = await system.component_class(js_account, "Account")
        account = system.get(cls, "od")
        assert await account.ask("deposit", 7, "on demand") == 7
        activations = system.durability().activations  # type: ignore[attr-defined]
        cell = activations.active[account.id].cell
        assert cell is not None and cell.runtime is not None  # sandboxed, by default
        await account.ask("remind_me", 1200.0)
        await trio.sleep(1300)  # collected after 900 s idle, reactivated by the reminder
        assert activations.active[account.id].cell is not cell
        assert await account.ask("info") == ["2", True, 7, ["on demand", "reminded"]]
        assert await account.ask("balance") == 107
        await account.ask("remind_me", 10.0, 10.0)  # replaces "later": every 10 s
        await trio.sleep(35)
        assert await account.ask("balance") == 407
        assert await account.ask("forget_me") is True
        await trio.sleep(100)
        assert await account.ask("balance") == 407
        assert await account.ask("forget_me") is False
        for kind, message in [
            ("due", "remind takes {due}"),
            ("name", "non-empty string"),
            ("period", "period is a finite number"),
        ]:
            with pytest.raises(ForeignError, match=re.escape(message)):
                await account.ask("bad_reminder", kind)


async def test_a_sandboxed_atom_keeps_at_most_its_quota_of_reminders(tmp_path: Path) -> None:
    """A hostile guest could store reminders without bound in the shared store,
    and have them fire as often as it liked: reminders now count against
    SandboxConfig.max_reminders, and a periodic one keeps min_timer_interval,
    as timers do."""
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        atom = system.get(Reminding, "r")
        granted, refusal = await atom.ask(Reminding.flood_reminders, 2_000, 0.001)
        assert granted == 0 and "min_timer_interval=0.01" in refusal
        granted, refusal = await atom.ask(Reminding.flood_reminders, 2_000, None)
        assert granted == 100 and "max_reminders" in refusal
        # Replacing a reminder it keeps is no new one; forgetting one makes room.
        assert await atom.ask(Reminding.flood_reminders, 100, 60.0) == (100, "")
        assert await atom.ask(Reminding.forget, "r7") is True
        assert await atom.ask(Reminding.flood_reminders, 8, None) == (8, "")
        granted, refusal = await atom.ask(Reminding.flood_reminders, 101, None)
        assert granted == 100 and "max_reminders" in refusal
        # Each reminder is stored with the others: its name and message stay small.
        assert "a name of 1 to 1,000 characters" in await atom.ask(Reminding.big_reminder, 1_001, 1)
        assert "at most 65,536" in await atom.ask(Reminding.big_reminder, 1, 70_000)
        assert await atom.ask(Reminding.forget, "r0") is True
        assert await atom.ask(Reminding.big_reminder, 1_000, 60_000) == ""


async def test_a_sandboxed_turn_writes_a_bounded_volume_of_state(tmp_path: Path) -> None:
    """A guest could make the host commit its largest state document (16 MiB)
    10,000 times in one turn, each commit holding the event loop: a turn's
    state writes are now bounded in volume (SandboxConfig.max_turn_bytes)."""
    db = tmp_path / "s.db"
    async with open_system(state_store=SQLiteStore(db)) as system:
        config = SandboxConfig(max_turn_bytes=4 * 1024 * 1024)
        account = await system.spawn(Account, name="big", sandbox=config)
        saved, refusal = await account.ask(Account.save_many, 100, 1024 * 1024)
        assert saved == 3 and "max_turn_bytes=4,194,304" in refusal
        # The quota is per turn: the next turn writes again.
        assert await account.ask(Account.save_many, 2, 1024 * 1024) == (2, "")
        assert await account.ask(Account.save_many, 50, 10) == (50, "")
