"""Membership: each member's record in the shared store, with a lease.

A member is alive while its record says so: the record holds its address and
the time its lease runs out, and the member renews it every third of the lease
with a conditional write (the store's revision check, as every durable write).
A member that closes clears its record, so the others take its keys at once;
one that dies stops renewing, and its keys wait out the lease (Orleans' and
Akka's membership do the same through their stores, with a failure detector
on top). Times are wall-clock seconds: members on several machines need
clocks in step to well under a lease.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from .._errors import StateConflict
from .._logs import get_logger

if TYPE_CHECKING:
    from ..durable import StateStore

__all__ = ["MemberRecord", "Membership", "RECORDS"]

_log = get_logger("radon_actors.cluster")

RECORDS = "$radon"
"""The atom type the cluster's records are stored under (the runtime's own)."""
_MEMBER = "$member"


@attrs.frozen
class MemberRecord:
    """What the store says of a member."""

    address: str
    name: str
    until: float
    """Wall-clock time its lease runs out."""
    tls: bool = False
    """Whether it listens with TLS (dial it with TLS)."""


def parse_member(document: str | None) -> MemberRecord | None:
    """A member record's document read back (None: cleared, or not one)."""
    if not document:
        return None
    try:
        fields = json.loads(document)
        until = float(fields["until"])
        if not math.isfinite(until):
            return None  # a lease that never runs out is no lease
        return MemberRecord(
            str(fields["address"]), str(fields["name"]), until, fields.get("tls") is True
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class Membership:
    """This member's record, kept alive; and the others', read on demand."""

    def __init__(
        self,
        store: StateStore,
        cluster: str,
        node_id: str,
        name: str,
        address: str,
        lease: float,
        tls: bool = False,
    ) -> None:
        self.store = store
        self.tls = tls
        self.cluster = cluster
        self.node_id = node_id
        self.name = name
        self.address = address
        self.lease = lease
        self.until = 0.0
        self._etag: str | None = None
        # Wall time from trio's clock (so a test's MockClock moves leases too).
        self._epoch0 = time.time()
        self._t0 = trio.current_time()

    def now(self) -> float:
        """Wall-clock seconds, as the records count them."""
        return self._epoch0 + (trio.current_time() - self._t0)

    def key(self, node_id: str) -> str:
        return f"cluster:{self.cluster}:member:{node_id}"

    def _document(self, until: float) -> str:
        fields: dict[str, object] = {"address": self.address, "name": self.name, "until": until}
        if self.tls:
            fields["tls"] = True
        return json.dumps(fields)

    async def register(self) -> None:
        """Write this member's record (over whatever an earlier write left)."""
        stored = await self.store.read(RECORDS, self.key(self.node_id), _MEMBER)
        until = self.now() + self.lease
        self._etag = await self.store.write(
            RECORDS,
            self.key(self.node_id),
            _MEMBER,
            self._document(until),
            None if stored is None else stored[1],
        )
        self.until = until
        _log.info("cluster.joined", cluster=self.cluster, member=self.name, address=self.address)

    async def keep(self, lost: Callable[[], Awaitable[None]]) -> None:
        """Renew the lease every third of it, forever. If it ran out before a
        renewal succeeded (the store unreachable, the process frozen), the
        others may have taken this member's keys: ``lost()`` gives up what runs
        here, and the member registers again."""
        while True:
            await trio.sleep(self.lease / 3)
            until = self.now() + self.lease
            try:
                if self.now() >= self.until:
                    raise StateConflict("the lease ran out before it was renewed")
                self._etag = await self.store.write(
                    RECORDS, self.key(self.node_id), _MEMBER, self._document(until), self._etag
                )
                self.until = until
            except Exception as exc:
                if not isinstance(exc, StateConflict) and self.now() < self.until:
                    _log.warning("cluster.lease_not_renewed", error=repr(exc))
                    continue
                _log.error("cluster.membership_lost", member=self.name, error=repr(exc))
                await lost()
                try:
                    await self.register()
                except Exception as again:
                    _log.error("cluster.register_failed", member=self.name, error=repr(again))

    async def lookup(self, node_id: str) -> MemberRecord | None:
        """The member ``node_id``'s record, if it has one that has not run out."""
        stored = await self.store.read(RECORDS, self.key(node_id), _MEMBER)
        record = parse_member(None if stored is None else stored[0])
        if record is None or record.until <= self.now():
            return None
        return record

    async def members(self) -> list[tuple[str, MemberRecord]]:
        """Every member of the cluster whose membership has not run out, by node
        id (one scan of the store's member records)."""
        head = f"cluster:{self.cluster}:member:"
        now = self.now()
        found = []
        for kind, key, document, _ in await self.store.scan(_MEMBER):
            if kind != RECORDS or not key.startswith(head):
                continue
            record = parse_member(document)
            if record is not None and record.until > now:
                found.append((key[len(head) :], record))
        return found

    async def leave(self) -> None:
        """Clear this member's record: the others take its keys at once."""
        if self._etag is None:
            return
        etag, self._etag = self._etag, None
        try:
            await self.store.clear(RECORDS, self.key(self.node_id), _MEMBER, etag)
        except Exception as exc:  # it runs out by itself
            _log.info("cluster.leave_not_recorded", member=self.name, error=repr(exc))
        _log.info("cluster.left", cluster=self.cluster, member=self.name)
