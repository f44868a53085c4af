"""Logging goes through structlog, bound with the atom's identity."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from radon_actors import Atom, System, handler


class Chatty(Atom):
    @handler
    def speak(self, word: str) -> None:
        self.log.info("said", word=word)

    @handler
    def crash(self) -> None:
        raise RuntimeError("bang")


@pytest.fixture(autouse=True)
def _all_levels() -> Iterator[None]:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


async def test_lifecycle_and_crash_events_carry_atom_identity(system: System) -> None:
    with capture_logs() as logs:
        c = await system.spawn(Chatty, name="chatty")
        await c.ask(Chatty.speak, "hello")
        with pytest.raises(RuntimeError):
            await c.ask(Chatty.crash)
        await c.ask(Chatty.speak, "again")  # after the restart
        await system.stop(c)
    by_event: dict[str, dict[str, object]] = {}
    for entry in logs:
        by_event.setdefault(entry["event"], entry)
    for event in ("atom.spawned", "said", "atom.crashed", "atom.restarted", "atom.stopped"):
        assert by_event[event]["atom_id"] == c.id
        assert by_event[event]["atom_name"] == "chatty"
    crash = by_event["atom.crashed"]
    assert crash["log_level"] == "error"
    assert crash["handler"] == "crash" and "bang" in str(crash["reason"])
    assert crash["restarts"] == 0 and crash["directive"] == "restart"
    assert by_event["said"]["word"] == "hello"


async def test_dead_letters_are_logged(system: System) -> None:
    c = await system.spawn(Chatty, name="gone")
    await system.stop(c)
    with capture_logs() as logs:
        c.tell(Chatty.speak, "anyone?")
    (letter,) = [e for e in logs if e["event"] == "dead_letter"]
    assert letter["atom_name"] == "gone" and letter["handler"] == "speak"
