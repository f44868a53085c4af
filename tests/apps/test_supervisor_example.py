"""examples/supervision_tree.py shows restarts, a resume and an escalation."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import structlog
import structlog.testing
import trio.testing

_SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "supervision_tree.py"


@pytest.fixture
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_supervision_tree_example", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def _info_logs() -> Iterator[None]:
    # The example reports at info level; a suite may filter that out globally.
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("_info_logs")
async def test_supervision_tree_example_restarts_resumes_and_escalates(
    example: ModuleType, autojump_clock: trio.testing.MockClock
) -> None:
    with structlog.testing.capture_logs() as logs:
        await example.main()
    events = [e["event"] for e in logs]
    assert events.count("supervisor.gave_up") == 1  # `workers` escalated once
    directives = [e["directive"] for e in logs if e["event"] == "atom.crashed"]
    assert "resume" in directives
    assert directives.count("restart") >= 4  # three flaky crashes + workers' give-up
    (workers,) = [e for e in logs if e["event"] == "root.child" and e["id"] == "workers"]
    assert workers["restarts"] == 1  # the root restarted the subtree
    assert "monitor.down" in events
