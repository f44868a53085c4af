"""``java.util.Random`` and the bits of Java arithmetic the Nexmark generator relies on.

Beam's Nexmark generator seeds a fresh ``java.util.Random`` with each event's id
and draws every field from it, so reproducing Beam's events means reproducing
that generator bit for bit: the 48-bit linear congruential generator of
``java.util.Random`` (Knuth, TAOCP vol. 2, 3.2.1), the seed scrambling of
``setSeed``, ``next(bits)`` and the methods built on it. Their algorithms are
part of ``java.util.Random``'s specification (and unchanged since Java 1.2), so
the values below are Java's on every JDK.

Also here: Java's integer division and remainder (both truncate towards zero,
Python's floor) and ``Math.round`` (ties towards positive infinity), which the
generator and the queries' averages use.

Differences from ``java.util.Random``: only the methods the generator needs
(no ``nextFloat``, ``nextGaussian``, ``nextBytes``, streams); a seed may be any
Python ``int`` (it is reduced modulo 2**64 and then to 48 bits, as a Java
``long`` would be); not thread-safe (Java's uses an ``AtomicLong``).
"""

from __future__ import annotations

import math

__all__ = ["JavaRandom", "java_div", "java_rem", "java_round"]

_MULTIPLIER = 0x5DEECE66D
_ADDEND = 0xB
_MASK = (1 << 48) - 1
_DOUBLE_UNIT = 1.0 / (1 << 53)


def _int32(value: int) -> int:
    """``value`` wrapped to a Java ``int`` (two's complement, 32 bits)."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _int64(value: int) -> int:
    """``value`` wrapped to a Java ``long`` (two's complement, 64 bits)."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def java_div(a: int, b: int) -> int:
    """Java's ``a / b`` on integers: the quotient truncated towards zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def java_rem(a: int, b: int) -> int:
    """Java's ``a % b`` on integers: the remainder takes the sign of ``a``."""
    return a - b * java_div(a, b)


def java_round(x: float) -> int:
    """Java's ``Math.round(double)``: the closest integer, ties towards positive infinity.

    Exactly ``floor(x + 0.5)`` computed without the rounding error of the
    addition (``x - floor(x)`` is exact), as Java 7 and later do. Java
    saturates at ``Long.MIN_VALUE``/``MAX_VALUE`` and maps NaN to 0; the
    generator never reaches those, and neither does this (NaN and infinities
    raise ``ValueError``/``OverflowError`` as ``math.floor`` does).
    """
    whole = math.floor(x)
    return whole + 1 if x - whole >= 0.5 else whole


class JavaRandom:
    """``java.util.Random``: same seed, same sequence as on the JVM."""

    __slots__ = ("_seed",)

    def __init__(self, seed: int) -> None:
        self._seed = 0
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """``setSeed(long)``: scramble the seed with the multiplier, keep 48 bits."""
        self._seed = (_int64(seed) ^ _MULTIPLIER) & _MASK

    def next(self, bits: int) -> int:
        """``next(int bits)``: advance the LCG and return its top ``bits`` bits (as a Java int)."""
        self._seed = (self._seed * _MULTIPLIER + _ADDEND) & _MASK
        return _int32(self._seed >> (48 - bits))

    def next_int(self, bound: int | None = None) -> int:
        """``nextInt()`` (any int) or ``nextInt(bound)`` (uniform in ``[0, bound)``).

        With a bound: a power of two takes the high bits of one draw (the low
        bits of an LCG are weak); any other bound rejects the draws that would
        make ``u % bound`` biased, detected as Java does by the int overflow of
        ``u - r + (bound - 1)``.
        """
        if bound is None:
            return self.next(32)
        if not 0 < bound < 1 << 31:
            raise ValueError(f"bound must be a positive Java int, not {bound}")
        r = self.next(31)
        m = bound - 1
        if bound & m == 0:
            return (bound * r) >> 31
        u = r
        r = u % bound
        while u - r + m >= 1 << 31:  # overflows a Java int: u is in the biased tail
            u = self.next(31)
            r = u % bound
        return r

    def next_long(self) -> int:
        """``nextLong()``: two 32-bit draws, the first as the (signed) high half."""
        high = self.next(32)
        return _int64((high << 32) + self.next(32))

    def next_double(self) -> float:
        """``nextDouble()``: 53 random bits (26 then 27) scaled into ``[0, 1)``."""
        high = self.next(26)
        return ((high << 27) + self.next(27)) * _DOUBLE_UNIT

    def next_boolean(self) -> bool:
        """``nextBoolean()``: one random bit."""
        return self.next(1) != 0
