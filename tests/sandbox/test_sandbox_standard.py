"""The host's side of the radon:atom outcome encoding (docs/standard.md, *Outcomes*)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from radon_actors.sandbox import _codec, _engine, _instance
from radon_actors.sandbox._errors import SandboxError

WIT = Path(_engine.__file__).parent / "wit" / "atom.wit"


def _settle(outcome: str) -> Any:
    # A d/f/malformed outcome never touches the guest, so no instance is needed.
    return _instance.GuestAtom._settle(cast(Any, None), outcome)


async def test_done_outcome_decodes_the_payload_after_the_tag() -> None:
    assert await _settle("d" + _codec.enc({"x": [1, 2]})) == {"x": [1, 2]}
    assert await _settle("d" + _codec.enc(None)) is None


async def test_failed_outcome_raises_the_encoded_exception() -> None:
    with pytest.raises(KeyError, match="missing"):
        await _settle("f" + _codec.enc(KeyError("missing")))


async def test_undecodable_done_payload_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="cannot decode"):
        await _settle("done")


@pytest.mark.parametrize("outcome", ["", "x", "D" + _codec.enc(1), "?d"])
async def test_malformed_outcome_is_a_sandbox_error(outcome: str) -> None:
    with pytest.raises(SandboxError, match="malformed outcome"):
        await _settle(outcome)


def test_host_speaks_the_version_of_the_shipped_wit() -> None:
    text = WIT.read_text()
    match = re.search(r"^package radon:atom@([0-9.]+);", text, re.MULTILINE)
    assert match is not None
    assert f"radon:atom/guest@{match.group(1)}" == _engine.GUEST_INTERFACE
    assert f"radon:atom/host@{match.group(1)}" == _engine.HOST_INTERFACE
    # The exports the host looks up are the ones the WIT declares.
    for name in _engine._EXPORTS:
        assert re.search(rf"^\s*{name}: func\(", text, re.MULTILINE), name
