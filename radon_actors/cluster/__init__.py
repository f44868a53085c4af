"""Clusters: separate systems that share one directory of on-demand atoms.

An extension above the durable layer (the store, the directory) and placement
(connections between members): ``open_system(cluster=Cluster(...))`` joins a
system to a cluster; docs/cluster.md. ``Cluster`` is re-exported by
``radon_actors``; the modules here are private.
"""

from ._config import LEASE, Cluster
from ._member import Member, attach, membership

__all__ = ["LEASE", "Cluster", "Member", "attach", "membership"]
