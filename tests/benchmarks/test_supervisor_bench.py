"""bench/supervision.py still runs (no timings asserted: see the script)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "supervision.py"


@pytest.fixture
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_bench_supervision", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_supervision_bench_smoke(bench: ModuleType) -> None:
    result = await bench.run(20, 1)
    assert set(result["cases"]) == {label for label, _ in bench.CASES}
    for case in result["cases"].values():
        assert case["p50_us"] > 0
