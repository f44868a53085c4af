"""Placement policies: which host a new atom goes to when ``spawn`` is given one.

A policy is any object with ``async def choose(self, hosts, cls) -> str``; it
gets the live hosts (:class:`HostInfo`, this process included, as ``"local"``)
and returns a host name. Pass it as ``system.spawn(Cls, host=policy)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from ._errors import NoSuchHost
from ._frames import Load

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["HostInfo", "LeastLoaded", "PlacementPolicy", "RoundRobin"]


@attrs.frozen
class HostInfo:
    """A live host, as a placement policy sees it."""

    name: str
    """Its name (``"local"`` for this process)."""
    address: str | None
    """Where it listens (None for a process that does not listen)."""
    _node: Any = attrs.field(repr=False, eq=False)
    _node_id: str = attrs.field(repr=False)

    async def load(self) -> int:
        """How many top-level atoms run there now (asks the host)."""
        node: Node = self._node
        if self._node_id == node.node_id:
            return node.system.load()
        result: int = await node.request(node.live_peer(self._node_id), Load("load", 0))
        return result


class PlacementPolicy(Protocol):
    """Chooses a host for a new atom."""

    async def choose(self, hosts: Sequence[HostInfo], cls: type[Any]) -> str: ...


class RoundRobin:
    """Each new atom goes to the next host in turn (optionally only ``among`` some)."""

    def __init__(self, among: Sequence[str] | None = None) -> None:
        self._among = list(among) if among is not None else None
        self._next = 0

    async def choose(self, hosts: Sequence[HostInfo], cls: type[Any]) -> str:
        names = [h.name for h in hosts if self._among is None or h.name in self._among]
        if not names:
            raise NoSuchHost(f"no live host to place {cls.__name__} on (among {self._among})")
        name = names[self._next % len(names)]
        self._next += 1
        return name


class LeastLoaded:
    """Each new atom goes to the host running the fewest top-level atoms."""

    def __init__(self, among: Sequence[str] | None = None) -> None:
        self._among = list(among) if among is not None else None

    async def choose(self, hosts: Sequence[HostInfo], cls: type[Any]) -> str:
        best: tuple[int, str] | None = None
        for host in hosts:
            if self._among is not None and host.name not in self._among:
                continue
            load = await host.load()
            if best is None or load < best[0]:
                best = (load, host.name)
        if best is None:
            raise NoSuchHost(f"no live host to place {cls.__name__} on (among {self._among})")
        return best[1]
