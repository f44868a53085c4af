"""Consistent hashing of keys onto shards."""

from __future__ import annotations

import bisect
import zlib

__all__ = ["Ring"]


class Ring:
    """Maps keys to shard indices with ``vnodes`` points per shard on a hash ring.

    Adding a shard moves only about 1/n of the keys, which is why the store uses a
    ring rather than ``hash(key) % n``. The hash is stable across processes
    (unlike Python's ``hash``), so every frontend agrees on where a key lives.
    """

    def __init__(self, shards: int, vnodes: int = 64) -> None:
        if shards < 1:
            raise ValueError("a ring needs at least one shard")
        points = sorted(
            (self._hash(f"shard-{s}-{v}".encode()), s) for s in range(shards) for v in range(vnodes)
        )
        self._bisect = bisect.bisect
        self._hashes = [h for h, _ in points]
        self._owners = [s for _, s in points]
        self.shards = shards

    @staticmethod
    def _hash(data: bytes) -> int:
        return zlib.crc32(data)

    def shard_of(self, key: bytes) -> int:
        i = self._bisect(self._hashes, zlib.crc32(key))
        return self._owners[i % len(self._owners)]
