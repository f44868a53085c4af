"""Sandboxed atoms reach on-demand atoms by key only as granted (radon:atom
0.6.0's ``on-demand``): the host grants classes through
``SandboxConfig(on_demand=[...])``; anything else, and any class or key the
guest makes up, is refused with ``SandboxDenied`` in the handler, and the atom
carries on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from cluster_helpers import cluster
from sandbox_atoms import Counter, Hostile, Teller, Wallet

from radon_actors import SandboxConfig, SandboxDenied, SQLiteStore, open_system

pytestmark = pytest.mark.usefixtures("sandbox_component")

GRANTED = SandboxConfig(on_demand=[Wallet])


async def test_a_granted_class_is_reached_by_key_as_system_get_reaches_it(
    tmp_path: Path,
) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        teller = await system.spawn(Teller, sandbox=GRANTED)
        assert await teller.ask(Teller.deposit, "ann", 5) == 5
        assert await teller.ask(Teller.deposit, "ann", 2) == 7
        assert await teller.ask(Teller.deposit, "bob", 1) == 1
        teller.tell(Teller.drop_in, "ann", 3)
        # The teller's tell reaches the wallet before its next ask does.
        assert await teller.ask(Teller.deposit, "ann", 0) == 10
        ann = system.get(Wallet, "ann")  # the same single activation, whoever asks
        assert await ann.ask(Wallet.add, 0) == 10
        assert await ann.ask(Wallet.owner) == "ann"
        handed = await teller.ask(Teller.wallet, "bob")
        assert handed.id == system.get(Wallet, "bob").id
        assert await handed.ask(Wallet.add, 1) == 2


async def test_without_a_grant_the_handler_gets_sandbox_denied(tmp_path: Path) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        for config in (True, SandboxConfig(on_demand=[Counter])):
            teller = await system.spawn(Teller, sandbox=config)
            with pytest.raises(SandboxDenied, match="may not reach on-demand atoms of"):
                await teller.ask(Teller.deposit, "ann", 5)
            with pytest.raises(SandboxDenied, match="SandboxConfig\\(on_demand="):
                await teller.ask(Teller.wallet, "ann")
        # Nothing was activated, and the atom is still serving.
        assert await system.get(Wallet, "ann").ask(Wallet.add, 0) == 0
        granted = await system.spawn(Teller, sandbox=GRANTED)
        assert await granted.ask(Teller.deposit, "ann", 1) == 1


async def test_names_and_keys_a_guest_makes_up_are_refused(tmp_path: Path) -> None:
    config = SandboxConfig(on_demand=[Wallet])
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        hostile = await system.spawn(Hostile, sandbox=config)
        wallet = "sandbox_atoms:Wallet"
        for class_name, key, expected in [
            ("os:system", "x", "may not reach on-demand atoms of"),
            ("sandbox_atoms:Counter", "x", "may not reach on-demand atoms of"),
            ("x" * 100_000, "k", "a class name of 100,000 characters"),
            (wallet, "", "1 to 4096 characters"),
            (wallet, "k" * 5000, "1 to 4096 characters"),
        ]:
            answer = await hostile.ask(Hostile.raw_on_demand, class_name, key)
            assert answer.startswith("{") and expected in answer, answer
            assert json.loads(answer)["$error"]["type"].endswith(":SandboxDenied")
        granted = await hostile.ask(Hostile.raw_on_demand, wallet, "k")
        assert granted.startswith("granted ")
        assert "$ref" in granted


async def test_the_quota_of_referenced_on_demand_atoms(tmp_path: Path) -> None:
    config = SandboxConfig(on_demand=[Wallet], max_on_demand=2)
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        teller = await system.spawn(Teller, sandbox=config)
        assert await teller.ask(Teller.deposit, "a", 1) == 1
        assert await teller.ask(Teller.deposit, "b", 1) == 1
        assert await teller.ask(Teller.deposit, "a", 1) == 2  # already referenced
        with pytest.raises(SandboxDenied, match="max_on_demand=2"):
            await teller.ask(Teller.deposit, "c", 1)


def test_the_grant_takes_atom_classes_or_their_names() -> None:
    for bad in (dict, "not a name", "os.system"):
        with pytest.raises(TypeError, match="takes Atom subclasses"):
            SandboxConfig(on_demand=[bad])
    with pytest.raises(TypeError, match="takes a list of atom classes"):
        SandboxConfig(on_demand=Wallet)  # type: ignore[arg-type]
    by_class = SandboxConfig(on_demand=[Wallet])
    assert by_class.on_demand == ("sandbox_atoms:Wallet",)
    assert by_class == SandboxConfig(on_demand=["sandbox_atoms:Wallet"])


async def test_a_granted_name_that_does_not_import_is_refused(tmp_path: Path) -> None:
    config = SandboxConfig(on_demand=["no_such_module:Wallet", "sandbox_atoms:Point"])
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        hostile = await system.spawn(Hostile, sandbox=config)
        answer = await hostile.ask(Hostile.raw_on_demand, "no_such_module:Wallet", "k")
        assert "cannot be imported on this host" in answer
        answer = await hostile.ask(Hostile.raw_on_demand, "sandbox_atoms:Point", "k")
        assert "is not an Atom subclass" in answer


async def test_a_held_on_demand_ref_survives_migration_and_reaches_across_hosts(
    tmp_path: Path,
) -> None:
    with trio.fail_after(120):
        async with cluster("w1", state_store=SQLiteStore(tmp_path / "s.db")) as system:
            teller = await system.spawn(Teller, sandbox=GRANTED, host="w1")
            # On a worker host, the key's atom is the one its system's get reaches.
            assert await teller.ask(Teller.deposit, "ann", 4) == 4
            await teller.ask(Teller.hold, "ann")
            await system.migrate(teller, to="local")
            assert await teller.ask(Teller.add_to_held, 1) == 5
            await system.migrate(teller, to="w1")
            assert await teller.ask(Teller.add_to_held, 1) == 6
            assert await system.get(Wallet, "ann").ask(Wallet.add, 0) == 6
