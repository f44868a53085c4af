"""Locks by key that exist only while someone holds or waits for them.

Loading a component is done once per module (``_engine.load``, on worker
threads) and once per content hash (``_cache``, on trio): callers for the same
key wait for each other, callers for different keys do not. Keeping a lock per
key forever would grow with every module and every hash another host ever sent,
so a :class:`KeyedLocks` counts the users of each key's lock and drops it with
the last one; the loaded component itself is what stays (and it is checked again
under the lock, so a caller that finds no lock is never the second to load).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

L = TypeVar("L")


class KeyedLocks(Generic[L]):
    """A lock per key, made by ``factory`` on first use and dropped when unused.

    ``with table.holding(key) as lock:`` gives the key's lock without taking it
    (take it with ``with lock`` or ``async with lock``, whichever kind it is); the
    key counts as used until the ``with`` block is left.
    """

    __slots__ = ("_factory", "_guard", "_locks")

    def __init__(self, factory: Callable[[], L]) -> None:
        self._factory = factory
        # Guards the table itself (threads may share it); never held while waiting.
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[L, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextmanager
    def holding(self, key: str) -> Iterator[L]:
        with self._guard:
            lock, users = self._locks.get(key) or (self._factory(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            yield lock
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
