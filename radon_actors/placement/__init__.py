"""Placement: hosts, location-transparent Refs across processes, live migration.

Use it through :class:`~radon_actors.System`: ``start_host``, ``connect_host``,
``spawn(..., host=...)`` and ``migrate``. See ``docs/placement.md``.
"""

from ._endpoints import RemoteEndpoint
from ._errors import (
    AuthenticationFailed,
    HostDown,
    MessageTooLarge,
    MigrationError,
    NoSuchHost,
    ProtocolError,
)
from ._hosts import read_secret
from ._node import Node, make_node
from ._policy import HostInfo, LeastLoaded, PlacementPolicy, RoundRobin
from ._serve import advertised, serve_host
from ._transport import Peer

__all__ = [
    "AuthenticationFailed",
    "HostDown",
    "HostInfo",
    "LeastLoaded",
    "MessageTooLarge",
    "MigrationError",
    "NoSuchHost",
    "Node",
    "Peer",
    "PlacementPolicy",
    "ProtocolError",
    "RemoteEndpoint",
    "RoundRobin",
    "advertised",
    "make_node",
    "read_secret",
    "serve_host",
]
