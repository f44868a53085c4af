"""Placement: hosts, location-transparent Refs across processes, live migration.

Use it through :class:`~radon_actors.System`: ``start_host``, ``connect_host``,
``spawn(..., host=...)`` and ``migrate``. See ``docs/placement.md``.
"""

from ._errors import (
    AuthenticationFailed,
    HostDown,
    MessageTooLarge,
    MigrationError,
    NoSuchHost,
    ProtocolError,
)
from ._node import make_node
from ._policy import HostInfo, LeastLoaded, PlacementPolicy, RoundRobin
from ._serve import serve_host

__all__ = [
    "AuthenticationFailed",
    "HostDown",
    "HostInfo",
    "LeastLoaded",
    "MessageTooLarge",
    "MigrationError",
    "NoSuchHost",
    "PlacementPolicy",
    "ProtocolError",
    "RoundRobin",
    "make_node",
    "serve_host",
]
