"""The public API: every name ``radon_actors`` (and its public ``bench``
subpackage) exports resolves and has a docstring that says what it is."""

from __future__ import annotations

import inspect

import pytest

import radon_actors
from radon_actors import bench


@pytest.mark.parametrize(
    ("module", "name"),
    [(radon_actors, n) for n in radon_actors.__all__] + [(bench, n) for n in bench.__all__],
)
def test_every_public_name_is_documented(module: object, name: str) -> None:
    obj = getattr(module, name)
    if isinstance(obj, (dict, tuple, frozenset)):  # a constant: documented where it is defined
        return
    # Its own docstring: inspect.getdoc would fall back to a base class's.
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else inspect.getdoc(obj)
    assert doc and len(doc) > 20, f"{module.__name__}.{name} has no docstring"  # type: ignore[attr-defined]
