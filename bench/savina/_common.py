"""What the radon-actors and pykka versions of the Savina workloads share.

Everything here follows shamsimam/savina: ``PseudoRandom`` is its generator (so
Big picks the same neighbours in every implementation), ``perform_computation``
is the ``performComputation(37.2)`` of the Fork-Join benchmarks, and
``complement`` is ``ChameneosHelper.complement``.
"""

from __future__ import annotations

import math


class BenchmarkFailed(AssertionError):
    """A workload finished with a wrong result: the run is broken, not slow."""


def check(name: str, what: str, got: object, expected: object) -> None:
    """Fail loudly when a workload's result is not the one its definition implies."""
    if got != expected:
        raise BenchmarkFailed(f"{name}: {what} is {got!r}, expected {expected!r}")


class PseudoRandom:
    """Savina's ``PseudoRandom``: a 16-bit linear congruential generator."""

    __slots__ = ("value",)

    def __init__(self, value: int = 74755) -> None:
        self.value = value

    def next_long(self) -> int:
        self.value = ((self.value * 1309) + 13849) & 65535
        return self.value

    def next_int(self, exclusive_max: int | None = None) -> int:
        v = self.next_long()
        return v if exclusive_max is None else v % exclusive_max

    def next_double(self) -> float:
        return 1.0 / (self.next_long() + 1)


def perform_computation(theta: float) -> None:
    """Savina's ``performComputation``: a sine, squared, checked so it is not dead code."""
    sint = math.sin(theta)
    res = sint * sint
    if res <= 0:
        raise BenchmarkFailed(f"benchmark exited with unrealistic res value {res}")


# Chameneos colours, in Savina's order.
RED, YELLOW, BLUE, FADED = range(4)

_COMPLEMENT = {
    (RED, RED): RED,
    (RED, YELLOW): BLUE,
    (RED, BLUE): YELLOW,
    (YELLOW, RED): BLUE,
    (YELLOW, YELLOW): YELLOW,
    (YELLOW, BLUE): RED,
    (BLUE, RED): YELLOW,
    (BLUE, YELLOW): RED,
    (BLUE, BLUE): BLUE,
}


def complement(color: int, other: int) -> int:
    """``ChameneosHelper.complement``: the colour a chameneo takes after a meeting."""
    if color == FADED or other == FADED:
        return FADED
    return _COMPLEMENT[color, other]


def fib(n: int) -> int:
    """The reference value Savina's Fib actor tree must compute (fib(1) = fib(2) = 1)."""
    a, b = 1, 1
    for _ in range(n - 2):
        a, b = b, a + b
    return 1 if n <= 2 else b
