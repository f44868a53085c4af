"""Fixtures shared by the supervision tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from supervisor_atoms import EVENTS


@pytest.fixture(autouse=True)
def _clear_events() -> Iterator[None]:
    EVENTS.clear()
    yield
    EVENTS.clear()
