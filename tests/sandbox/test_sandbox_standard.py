"""The host's side of the radon:atom outcome encoding (docs/standard.md, *Outcomes*)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sandbox_atoms import Counter

from radon_actors import ForeignError, MessageNotPortable, open_system
from radon_actors.sandbox import _engine
from radon_actors.sandbox._errors import SandboxError
from radon_actors.sandbox._instance import GuestAtom
from radon_actors.sandbox._manifest import STANDARD
from radon_actors.sandbox._outcomes import SUSPENDED
from radon_actors.testing import cell_of

WIT = Path(_engine.__file__).parent / "wit" / "atom.wit"

pytestmark = pytest.mark.usefixtures("sandbox_component")


@pytest.fixture
async def guest() -> AsyncIterator[GuestAtom]:
    async with open_system() as system:
        ref = await system.spawn(Counter, sandbox=True)
        cell = cell_of(ref)
        assert cell is not None and isinstance(cell.instance, GuestAtom)
        yield cell.instance


async def test_done_outcome_reads_the_value_after_the_tag(guest: GuestAtom) -> None:
    assert guest.outcome('d{"x":[1,2]}') == {"x": [1, 2]}
    assert guest.outcome("dnull") is None
    assert guest.outcome('d{"$tuple":[1]}') == (1,)
    assert guest.outcome("s") is SUSPENDED


async def test_failed_outcome_raises_the_exception_it_describes(guest: GuestAtom) -> None:
    with pytest.raises(KeyError, match="missing"):
        raise guest.exception(
            'f{"$error":{"type":"builtins:KeyError","message":"x","args":["missing"]}}', 1
        )
    with pytest.raises(ForeignError, match="boom") as info:
        guest.outcome('f{"$error":{"type":"m:Boom","message":"boom","bases":["LookupError"]}}')
    assert isinstance(info.value, LookupError) and info.value.type_name == "m:Boom"


async def test_an_unreadable_outcome_is_refused(guest: GuestAtom) -> None:
    with pytest.raises(MessageNotPortable, match="returned a value the host refuses"):
        guest.outcome("done")
    with pytest.raises(SandboxError, match="its error is unreadable"):
        guest.outcome("f[")
    with pytest.raises(SandboxError, match="not an exception"):
        guest.outcome("f5")


@pytest.mark.parametrize("outcome", ["", "x", "D1", "?d"])
async def test_malformed_outcome_is_a_sandbox_error(guest: GuestAtom, outcome: str) -> None:
    with pytest.raises(SandboxError, match="malformed outcome"):
        guest.outcome(outcome)


def test_host_speaks_the_version_of_the_shipped_wit() -> None:
    text = WIT.read_text()
    match = re.search(r"^package radon:atom@([0-9.]+);", text, re.MULTILINE)
    assert match is not None
    assert match.group(1) == "0.6.0" == STANDARD
    assert f"radon:atom/guest@{match.group(1)}" == _engine.GUEST_INTERFACE
    assert f"radon:atom/host@{match.group(1)}" == _engine.HOST_INTERFACE
    # The exports the host looks up are the ones the WIT declares.
    for name in _engine._EXPORTS:
        assert re.search(rf"^\s*{name}: func\(", text, re.MULTILINE), name
