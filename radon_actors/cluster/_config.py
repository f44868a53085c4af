"""``Cluster``: how a system joins a cluster of systems (its settings)."""

from __future__ import annotations

import os
import re
import ssl

import attrs

__all__ = ["Cluster", "LEASE"]

LEASE = 10.0
"""Seconds a member's membership lasts without renewal (renewed every third of
it): how long the keys of a member that died wait before another takes them."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _check_name(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"a cluster's name is 1 to 64 letters, digits, '-' or '_', not {value!r}")


def _stripped(value: object) -> object:
    # As a secret file is read (``read_secret``): members that read theirs from
    # files and a system given the bytes must agree on the secret.
    return value.strip() if isinstance(value, bytes) else value


def _check_secret(instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or len(value) < 16:
        raise ValueError(
            "a cluster's secret is at least 16 bytes (make one with "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`), and every member "
            "shares it"
        )


def _check_lease(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.1 <= value <= 3600:
        raise ValueError(f"a cluster's lease is 0.1 to 3600 seconds, not {value!r}")


def _check_address(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"listen is 'host:port' (port 0: any free one), not {value!r}")


@attrs.frozen
class Cluster:
    """Join the system to the cluster ``name``:
    ``open_system(cluster=Cluster("shop", secret=...))``.

    The members of a cluster are separate systems (processes, on any machines)
    that share one state store and one directory of on-demand atoms: every key
    is active in at most one member at a time, and a message sent from any
    member reaches it there (docs/cluster.md).
    """

    name: str = attrs.field(validator=_check_name)
    """The cluster's name; the ids of its on-demand atoms carry it."""
    secret: bytes = attrs.field(repr=False, converter=_stripped, validator=_check_secret)
    """The secret every member shares (at least 16 bytes, surrounding whitespace
    stripped, as from a secret file): members authenticate each other with it,
    as hosts do (docs/placement.md)."""
    listen: str = attrs.field(default="127.0.0.1:0", validator=_check_address)
    """Where this member listens for the others, ``host:port`` (port 0: any)."""
    advertise: str | None = None
    """The address the others reach this member at, ``host`` or ``host:port``
    (default: the listening address; a listener on ``0.0.0.0`` needs one)."""
    member: str | None = None
    """This member's name in logs and errors (default: ``member-<system id>``)."""
    lease: float = attrs.field(default=LEASE, validator=_check_lease)
    """Seconds a membership lasts unrenewed (:data:`LEASE`); every member of a
    cluster should use the same."""
    tls: ssl.SSLContext | None = attrs.field(default=None, repr=False, eq=False)
    """A server context: this member listens with TLS (its certificate must
    name the address it advertises), and says so in its membership record."""
    tls_client: ssl.SSLContext | None = attrs.field(default=None, repr=False, eq=False)
    """How this member checks the certificates of members that listen with TLS
    (default: the platform's trusted CAs, names checked)."""
    activates: bool = True
    """False: a *client* of the cluster, which sends to its keys and activates
    none (a web front end, say). It neither listens nor registers; a key that
    is active nowhere goes to a member chosen by the key (rendezvous hashing),
    which activates it. ``listen``, ``advertise`` and ``tls`` do not apply."""

    @classmethod
    def from_secret_file(
        cls,
        name: str,
        path: str | os.PathLike[str],
        *,
        listen: str = "127.0.0.1:0",
        advertise: str | None = None,
        member: str | None = None,
        lease: float = LEASE,
        tls: ssl.SSLContext | None = None,
        tls_client: ssl.SSLContext | None = None,
        activates: bool = True,
    ) -> Cluster:
        """The cluster ``name`` with the secret in the file ``path`` (refused if
        others can read it, as ``radon host --secret-file`` does)."""
        from ..placement import read_secret

        return cls(
            name, read_secret(path), listen, advertise, member, lease, tls, tls_client, activates
        )

    @property
    def prefix(self) -> str:
        """The id prefix of the cluster's on-demand atoms (their directory)."""
        return f"cluster-{self.name}"
