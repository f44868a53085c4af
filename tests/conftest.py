from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import structlog
import trio.testing

from radon_actors import System, open_system


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    # Library events are debug/info by default; keep test output readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@pytest.fixture
async def system() -> AsyncIterator[System]:
    async with open_system() as s:
        yield s


@pytest.fixture
def mock_clock() -> trio.testing.MockClock:
    """A MockClock that only moves when the test jumps it (pytest-trio uses any clock fixture)."""
    return trio.testing.MockClock()
