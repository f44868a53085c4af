from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

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


@pytest.fixture(scope="session")
def sandbox_component() -> object:
    """The WebAssembly component of ``tests/atoms/sandbox_atoms.py``, built once per session.

    The first run on a machine builds and compiles it (about a minute on a busy
    2-core machine); later runs load it from the on-disk cache in milliseconds.
    """
    from radon_actors.sandbox import _engine

    return _engine.load("sandbox_atoms")


@pytest.fixture(scope="session")
def js_component() -> Path:
    """The component of ``tests/atoms/js/polyglot.js`` (the JavaScript twin of
    ``sandbox_atoms.Polyglot``), built once per session (cached on disk)."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: JavaScript atoms cannot be built here")
    from radon_actors.sandbox._jsbuild import build_js

    return build_js(Path(__file__).parent / "atoms" / "js" / "polyglot.js").wasm
