"""The sandbox boundary against a hostile guest (issue #15, docs/sandbox.md).

Each test plays one escape that worked against radon:atom 0.3.0, with a guest
that writes raw text where the guest runtime would write a value (as a
component built by an attacker could), and checks that it is contained: no
code runs on the host, the victim is untouched, and the host refuses the text
before it parses it.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import structlog
from sandbox_atoms import Counter, Hostile

from radon_actors import (
    ForeignError,
    MessageNotPortable,
    SandboxDenied,
    SandboxError,
    open_system,
)
from radon_actors.sandbox import _value
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")


class _Marker:
    """Unpickling this writes a file: proof that host code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (Path(self.path), "host code ran"))


def _pickle_text(marker: Path) -> str:
    """What a 0.3.0 guest could return: a pickle whose loading runs host code."""
    return pickle.dumps(((_Marker(str(marker)),), {}), 5).decode("latin-1")


def _marshal_bomb() -> str:
    # A marshal list header claiming 2**31 - 1 items: 5 bytes that made the
    # 0.3.0 host allocate gigabytes and stall its loop for seconds.
    return "[\xff\xff\xff\x7f"


async def test_a_pickled_result_runs_nothing_on_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    async with open_system() as system:
        ref = await system.spawn(Hostile, sandbox=True)
        with pytest.raises(MessageNotPortable, match="returned a value the host refuses"):
            await ref.ask(Hostile.raw_result, _pickle_text(marker))
        with pytest.raises(MessageNotPortable, match="returned a value the host refuses"):
            await ref.ask(Hostile.raw_result, _marshal_bomb())
    assert not marker.exists()


async def test_a_pickled_exception_runs_nothing_on_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    async with open_system() as system:
        ref = await system.spawn(Hostile, sandbox=True)
        with pytest.raises(SandboxError, match="its error is unreadable"):
            await ref.ask(Hostile.raw_failure, _pickle_text(marker))
        # A well-formed $error naming a host class builds no host class either.
        body = f'{{"$error":{{"type":"pathlib:Path","message":"x","args":["{marker}"]}}}}'
        with pytest.raises(ForeignError) as info:
            await ref.ask(Hostile.raw_failure, body)
        assert info.value.type_name == "pathlib:Path"
    assert not marker.exists()


async def test_pickled_tells_logs_and_timers_run_nothing_on_the_host(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    text = _pickle_text(marker)
    async with open_system() as system:
        ref = await system.spawn(Hostile, sandbox=True)
        refused = await ref.ask(Hostile.raw_tell, 0, text)
        assert "sent a message the host refuses" in refused
        with structlog.testing.capture_logs() as logs:
            assert await ref.ask(Hostile.raw_log, text) == "logged"
        assert [e.get("fields") for e in logs if e["event"] == "hostile.log"] == ["<unreadable>"]
        assert "sent a message the host refuses" in await ref.ask(Hostile.raw_timer, text)
        assert "a handler name of 10,000,000 characters" in await ref.ask(
            Hostile.long_handler_tell, 10_000_000
        )
        assert await ref.ask(Hostile.ok) == 1  # the guest carries on
    assert not marker.exists()


@pytest.mark.parametrize(
    "class_name",
    [
        "os:system",
        "builtins:eval",
        "subprocess:Popen",
        "radon_actors.supervisor._supervisor:Supervisor",
        "tests_not_loaded_anywhere:Atom",
        "sandbox_atoms:Boom",  # the component's, but not an atom
    ],
)
async def test_a_spawn_request_builds_no_class_the_component_does_not_own(
    class_name: str,
) -> None:
    async with open_system() as system:
        ref = await system.spawn(Hostile, sandbox=True)
        with pytest.raises(SandboxDenied, match="atom classes of its own component only"):
            await ref.ask(Hostile.raw_spawn, class_name)
        assert cell_of(ref) is not None and not cell_of(ref).children  # type: ignore[union-attr]


async def test_a_guest_reaches_only_the_atoms_it_was_given() -> None:
    async with open_system() as system:
        victim = await system.spawn(Counter, 5)
        boxed_victim = await system.spawn(Counter, 7, sandbox=True)
        ref = await system.spawn(Hostile, sandbox=True)
        # By id: the guest knows ids (its own, ones it was told), but an id is
        # no capability.
        # ... nor is the root supervisor's (0.3.0 let a guest terminate its children).
        for target in (victim, boxed_victim, system.root):
            with pytest.raises(MessageNotPortable, match="never given a reference"):
                await ref.ask(Hostile.forged_ask, target.id)
        # By a handle number it was never granted.
        for handle in (1, 2, 99, 2**31):
            assert "which it was never given" in await ref.ask(Hostile.forged_tell, handle)
        assert await victim.ask(Counter.get) == 5
        assert await boxed_victim.ask(Counter.get) == 7


async def test_the_host_refuses_oversized_values_before_parsing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[int] = []
    real = _value.Reader.__init__

    def spying_init(self: _value.Reader, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        scan = self._scan

        def spy(text: str, start: int) -> Any:
            parsed.append(len(text))
            return scan(text, start)

        self._scan = spy

    monkeypatch.setattr(_value.Reader, "__init__", spying_init)
    async with open_system() as system:
        ref = await system.spawn(Hostile, sandbox=True)
        bombs = [
            ("[" * 100_000 + "]" * 100_000, "nests deeper than the 64 levels"),
            ("[" + "[]," * 2_000_000 + "[]]", "more than the 1,000,000 items"),
            ('"' + "x" * (17 * 1024 * 1024) + '"', "longer than the reader allows"),
        ]
        for text, refusal in bombs:
            with pytest.raises(MessageNotPortable, match=refusal):
                await ref.ask(Hostile.raw_result, text)
        assert parsed and max(parsed) < 1000  # only small values reached the parser
        assert await ref.ask(Hostile.ok) == 1


def _hostile_texts(seed: int, n: int) -> list[str]:
    """Malformed and adversarial values: random JSON with tags in wrong shapes,
    cut texts, huge numbers, deep nests, bytes as text."""
    import json
    import random

    rng = random.Random(seed)
    tags = [
        "$int", "$float", "$tuple", "$set", "$frozenset", "$bytes", "$map", "$kw",
        "$opaque", "$record", "$typed", "$error", "$ref", "$global", "$x", "a",
    ]  # fmt: skip

    def tree(depth: int) -> Any:
        roll = rng.random()
        if depth > 4 or roll < 0.3:
            return rng.choice([None, True, 0, -1, 2**70, 1.5, "", "x", "\ud800", "$ref"])
        if roll < 0.6:
            return [tree(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(tags): tree(depth + 1) for _ in range(rng.randrange(1, 3))}

    texts = []
    for _ in range(n):
        text = json.dumps(tree(0))
        kind = rng.random()
        if kind < 0.15:
            text = text[: rng.randrange(len(text) + 1)]  # cut short
        elif kind < 0.25:
            text = "".join(chr(rng.randrange(256)) for _ in range(rng.randrange(1, 40)))
        texts.append(text)
    return texts


async def test_a_fuzzed_guest_gets_errors_and_the_host_keeps_serving(tmp_path: Path) -> None:
    # 600 hostile values through the result, the failure, the tell and the log
    # paths of one guest: every one ends in a typed error (or a value), the
    # guest's atom keeps answering, and a bystander is untouched.
    async with open_system() as system:
        bystander = await system.spawn(Counter, 1)
        ref = await system.spawn(Hostile, sandbox=True)
        outcomes: dict[str, int] = {}
        strange: list[BaseException] = []
        for i, text in enumerate(_hostile_texts(seed=15, n=150)):
            for route in (Hostile.raw_result, Hostile.raw_failure):
                try:
                    await ref.ask(route, text)
                    outcomes["value"] = outcomes.get("value", 0) + 1
                except Exception as exc:
                    outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                    # Typed errors only: the boundary's, or what a well-formed
                    # $error names (a built-in exception, a ForeignError).
                    typed = (SandboxError, MessageNotPortable, ForeignError)
                    if not isinstance(exc, typed) and type(exc).__module__ != "builtins":
                        strange.append(exc)
            assert isinstance(await ref.ask(Hostile.raw_tell, 0, text), str)
            assert await ref.ask(Hostile.raw_log, text) == "logged"
            if i % 50 == 0:
                assert await bystander.ask(Counter.get) == 1
        assert strange == []
        assert await ref.ask(Hostile.ok) >= 1
        assert await bystander.ask(Counter.incr) == 2
        assert outcomes.get("MessageNotPortable", 0) > 50  # most are refused as values
