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


# ----------------------------------------------------------------------
# Quiet until configured (issue #13): run as a user would, in a fresh process.
# ----------------------------------------------------------------------
_APP = """
import logging, sys, trio
import structlog
from radon_actors import Atom, handler, open_system

class Chatty(Atom):
    @handler
    def speak(self, word: str) -> None:
        self.log.info("said", word=word)

    @handler
    def crash(self) -> None:
        raise RuntimeError("bang")

SETUP

async def main() -> None:
    async with open_system() as system:
        c = await system.spawn(Chatty, name="chatty")
        await c.ask(Chatty.speak, "hello")
        try:
            await c.ask(Chatty.crash)
        except RuntimeError:
            pass
        if WORKER:
            await system.start_host("w1")
            w = await system.spawn(Chatty, name="far", host="w1")
            await w.ask(Chatty.speak, "from-w1")

trio.run(main)
"""


def _run_app(setup: str, *, worker: bool = False) -> tuple[str, str]:
    import subprocess
    import sys

    code = _APP.replace("SETUP", setup).replace("WORKER", str(worker))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return out.stdout, out.stderr


def test_the_library_prints_nothing_unless_logging_is_configured() -> None:
    stdout, stderr = _run_app("", worker=True)
    assert stdout == "" and stderr == ""  # not even the crash: nobody asked for logs


def test_standard_logging_shows_the_runtimes_events_at_its_level() -> None:
    _, stderr = _run_app("logging.basicConfig(level=logging.INFO, stream=sys.stderr)")
    assert "atom.spawned" not in stderr  # debug
    said = [line for line in stderr.splitlines() if ":said " in line]
    assert len(said) == 1 and "word='hello'" in said[0] and "atom_name='chatty'" in said[0]
    assert "atom.crashed" in stderr and "RuntimeError: bang" in stderr  # with its traceback
    _, debug = _run_app("logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)")
    assert "atom.spawned" in debug
    _, placement_only = _run_app(
        "logging.basicConfig(level=logging.ERROR, stream=sys.stderr)\n"
        "logging.getLogger('radon_actors').setLevel(logging.WARNING)"
    )
    assert "said" not in placement_only and "atom.crashed" in placement_only


def test_a_structlog_configuration_is_followed() -> None:
    stdout, _ = _run_app(
        "structlog.configure(processors=[structlog.processors.JSONRenderer()], "
        "wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))"
    )
    assert '"event": "said"' in stdout and '"atom_name": "chatty"' in stdout
    assert "atom.spawned" not in stdout


def test_worker_hosts_log_at_the_starting_processs_level() -> None:
    _, quiet = _run_app("", worker=True)
    assert "from-w1" not in quiet
    _, stderr = _run_app(
        "structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr), "
        "wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))",
        worker=True,
    )
    assert "from-w1" in stderr and "said" in stderr
    _, warning_only = _run_app(
        "structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr), "
        "wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))",
        worker=True,
    )
    assert "from-w1" not in warning_only
    _, stdlib = _run_app("logging.basicConfig(level=logging.INFO, stream=sys.stderr)", worker=True)
    assert "from-w1" in stdlib
