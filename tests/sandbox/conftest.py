"""Fixtures shared by the sandbox test files."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sandbox_component() -> object:
    """The WebAssembly component of ``tests/atoms/sandbox_atoms.py``, built once per session.

    The first run on a machine builds and compiles it (about a minute on a busy
    2-core machine); later runs load it from the on-disk cache in milliseconds.
    """
    from radon_actors.sandbox import _engine

    return _engine.load("sandbox_atoms")
