"""Errors of the placement layer (hosts, transport, migration).

Standard library only, so that ``radon_actors`` can re-export them lazily.
"""

from __future__ import annotations

from .._errors import RadonError

__all__ = [
    "AuthenticationFailed",
    "HostDown",
    "MessageTooLarge",
    "MigrationError",
    "NoSuchHost",
    "ProtocolError",
]


class HostDown(RadonError, ConnectionError):
    """The host an atom lives on died or stopped answering heartbeats.

    Asks in flight to its atoms fail with this error (their outcome is unknown:
    the handler may or may not have run). Spawn the atom again on a live host.
    """


class AuthenticationFailed(RadonError, PermissionError):
    """A peer did not prove it knows the cluster secret (or we could not prove it to
    the peer). Start every host of a cluster with the same ``--secret-file``."""


class ProtocolError(RadonError):
    """A peer spoke a different wire protocol version or sent a malformed frame.

    Run the same radon-actors version on every host of a cluster.
    """


class NoSuchHost(RadonError, LookupError):
    """No host of this name was started or connected (see ``System.hosts``)."""


class MigrationError(RadonError):
    """A live migration failed; the atom keeps running where it was."""


class MessageTooLarge(RadonError, ValueError):
    """A message to an atom on another host (or its reply) is over the size limit
    of one frame between hosts (about 256 MiB).

    Raised at the call site (``ask``, ``tell``, ``send``) before anything is sent,
    so the connection and every other message on it are unaffected; a reply that
    is too large reaches its asker as this error. Send less at once, or a
    reference to where the data is.
    """
