"""Reminders: messages to on-demand atoms that are kept in the state store, so
they fire even if the atom was collected or the process restarted (Orleans'
reminders; timers stay the cheap, in-memory, per-activation kind).

``await self.remind("expire", Cart.expire, due=3600)`` in a handler of an
on-demand atom stores the reminder with the atom's other state (a state called
``$reminders`` of the atom's type and key: a document in the value format, with
the class's import path so a fresh process can activate it). One service per
system keeps them in a heap by due time and, when one is due, asks the atom
``h(*args)`` through ``system.get`` (activating it if need be), each delivery in
a task of its own so a slow handler holds up no other reminder.

* **At least once.** A one-shot reminder is removed from the store only after
  its ask returned; a process that dies in between delivers it again after its
  restart. A delivery whose ask fails (the handler raised, the activation
  failed) is retried after 1, 2, 4 ... up to 60 seconds, at most
  :data:`ATTEMPTS` times for a one-shot reminder (then it is dropped and
  logged); a periodic one just waits for its next tick.
* **No flood after downtime.** Ticks of a periodic reminder missed while the
  system was down are coalesced into one, delivered at start; the next is a
  period after it.
* **Time.** Due times are stored as wall-clock seconds (``time.time()``) and
  mapped to trio's clock when the service starts, so trio's ``MockClock``
  drives them in tests.

Every system opened with ``state_store=`` takes part from the start; with the
default store, from the first use of durability. Its worker hosts do not: an
activation there sets and forgets reminders through :class:`ReminderDesk`, an
on-demand daemon at the system's process.

* **One server per store: a lease.** Several systems may share a store (a
  Redis server, an SQLite file). One of them at a time serves its reminders:
  the one holding the store's reminder lease (a document under
  :data:`LEASE_STATE`, written with the store's revision check, valid
  :data:`LEASE_SECONDS` and renewed every third of that). The others stand by
  and take the lease when it is released (a system that closes lets it go) or
  runs out (a system that died). Any system sets and forgets reminders: each
  change is a read, modify and conditional write of the atom's reminders in
  the store, retried on a conflict, so changes from several systems merge;
  the holder reads the store again every :data:`RESCAN_SECONDS` for the
  reminders others set.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from .._atom import Atom, handler
from .._errors import StateConflict
from .._logs import get_logger
from .._state import atom_type
from ..runtime import lookup
from ..sandbox.values import host_form_value, read_host_form_value
from ._virtual import class_path, directory_of

if TYPE_CHECKING:
    from .._ref import Ref
    from ..runtime import AtomCell, System
    from ._durability import Durability

__all__ = ["ATTEMPTS", "STATE", "ReminderDesk", "Reminders"]

_log = get_logger("radon_actors.durable")

STATE = "$reminders"
"""The state name under which an atom's reminders are stored."""
ATTEMPTS = 10
"""Deliveries of a one-shot reminder tried before it is dropped."""
_FORMAT = 1
_MAX_BACKOFF = 60.0
_RETRIES = 10  # conditional writes of one change before giving up

LEASE_SECONDS = 10.0
"""How long a system's hold on a store's reminders lasts unless renewed."""
RESCAN_SECONDS = LEASE_SECONDS / 3
"""How often the holder renews its lease and reads the store's reminders again."""
LEASE_STATE = ("$radon", "reminders", "$lease")
"""Where the lease is stored: (atom type, key, state name)."""


@attrs.define
class _Reminder:
    handler: str
    args: tuple[Any, ...]
    due: float  # wall clock (time.time()): when it is next tried
    period: float | None
    version: int = 0  # changed on every change: a heap entry of an older one is stale
    attempts: int = 0
    saved_due: float = 0.0  # the due time as stored (``due`` moves on a retry)

    def same_as_stored(self, other: _Reminder) -> bool:
        return (self.handler, self.args, self.period, self.saved_due) == (
            other.handler,
            other.args,
            other.period,
            other.saved_due,
        )


@attrs.define
class _Atom:
    """One atom's reminders, as stored."""

    cls_path: str
    reminders: dict[str, _Reminder] = attrs.Factory(dict)
    etag: str | None = None
    adopted: int = 0  # when the holder took this version on (``Reminders._adopt``)


class Reminders:
    """The reminder service of one system (see the module docs)."""

    def __init__(self, system: System, durability: Durability) -> None:
        self.system = system
        self.durability = durability
        # What this system serves while it holds the lease (empty otherwise).
        self.atoms: dict[tuple[str, str], _Atom] = {}
        self._heap: list[tuple[float, int, str, str, str, int]] = []
        self._seq = itertools.count()
        # Stamps, in order: a reminder's version (a heap entry of a replaced one
        # is stale) and when an atom's reminders were adopted (``_load``).
        self._stamps = itertools.count(1)
        self._wake = trio.Event()
        self._loaded = trio.Event()
        self._t0 = trio.current_time()
        self._epoch0 = time.time()
        self.holding = False
        self._lease_etag: str | None = None
        self._lease_until = 0.0
        # The service's own scope (its loop and every delivery): cancelled, and
        # waited for, before the store closes (``stop``).
        self._scope = trio.CancelScope()
        self._finished = trio.Event()
        self._deliveries: trio.Nursery | None = None
        self._started = False

    async def stop(self) -> None:
        """Cancel the service and its deliveries, let the lease go, and wait
        until they are gone."""
        self._scope.cancel()
        if self._started:
            await self._finished.wait()
        else:
            await trio.lowlevel.checkpoint()  # it never ran (and will exit at once)

    # The wall clock, through trio's clock (so a MockClock drives reminders).
    def _now(self) -> float:
        return self._epoch0 + (trio.current_time() - self._t0)

    def _trio_time(self, wall: float) -> float:
        return self._t0 + (wall - self._epoch0)

    async def run(self) -> None:
        """Serve the store's reminders whenever this system holds its lease,
        until :meth:`stop`."""
        self._started = True
        try:
            with self._scope:
                while True:
                    await self._take_lease()
                    async with trio.open_nursery() as holding:
                        holding.start_soon(self._keep_lease, holding.cancel_scope)
                        async with trio.open_nursery() as self._deliveries:
                            await self._serve()
                    # The lease was lost (another system holds it now): what was
                    # loaded is its to serve.
                    self._let_go()
        finally:
            self._loaded.set()  # nobody waits for a load that will not come
            with trio.CancelScope(shield=True):
                await self._release_lease()
            self._finished.set()

    # ------------------------------------------------------------------
    # The lease
    # ------------------------------------------------------------------
    def _lease_document(self, until: float) -> str:
        return json.dumps({"holder": self.system.prefix, "until": until})

    async def _take_lease(self) -> None:
        """Wait until this system holds the store's reminder lease."""
        store = self.durability.store
        while True:
            try:
                stored = await store.read(*LEASE_STATE)
                lease = json.loads(stored[0]) if stored is not None and stored[0] else None
                now = self._now()
                if (
                    not isinstance(lease, dict)
                    or lease.get("holder") == self.system.prefix
                    or float(lease.get("until", 0)) <= now
                ):
                    until = now + LEASE_SECONDS
                    self._lease_etag = await store.write(
                        *LEASE_STATE,
                        self._lease_document(until),
                        None if stored is None else stored[1],
                    )
                    self._lease_until = until
                    self.holding = True
                    _log.info("durable.reminders_lease_taken", holder=self.system.prefix)
                    return
            except StateConflict:
                pass  # another system took it first
            except Exception as exc:
                _log.warning("durable.reminders_lease_unreadable", error=repr(exc))
            await trio.sleep(RESCAN_SECONDS)

    async def _keep_lease(self, holding: trio.CancelScope) -> None:
        """Renew the lease, and read the store's reminders again, every
        :data:`RESCAN_SECONDS`; on losing the lease, cancel ``holding``."""
        store = self.durability.store
        while True:
            await trio.sleep(RESCAN_SECONDS)
            until = self._now() + LEASE_SECONDS
            try:
                self._lease_etag = await store.write(
                    *LEASE_STATE, self._lease_document(until), self._lease_etag
                )
                self._lease_until = until
            except Exception as exc:
                if isinstance(exc, StateConflict) or self._now() >= self._lease_until:
                    _log.warning("durable.reminders_lease_lost", error=repr(exc))
                    self.holding = False
                    holding.cancel()
                    return
                _log.warning("durable.reminders_lease_not_renewed", error=repr(exc))
                continue
            await self._load()

    async def _release_lease(self) -> None:
        if not self.holding:
            return
        self.holding = False
        with trio.move_on_after(5):
            try:
                await self.durability.store.clear(*LEASE_STATE, self._lease_etag)
            except Exception as exc:  # it runs out by itself
                _log.info("durable.reminders_lease_kept", error=repr(exc))

    def _let_go(self) -> None:
        self.holding = False
        self.atoms.clear()
        self._heap.clear()
        self._loaded.set()  # a change waiting for the load goes to the store alone
        self._loaded = trio.Event()

    # ------------------------------------------------------------------
    # Serving
    # ------------------------------------------------------------------
    async def _serve(self) -> None:
        await self._load(first=True)
        self._loaded.set()
        _log.info("durable.reminders_loaded", reminders=len(self._heap))
        while True:
            self._wake = trio.Event()
            if self._heap:
                due = self._trio_time(self._heap[0][0])
                with trio.move_on_at(due):
                    await self._wake.wait()
            else:
                await self._wake.wait()
            now = self._now()
            while self._heap and self._heap[0][0] <= now:
                _, _, kind, key, name, version = heapq.heappop(self._heap)
                owner = self.atoms.get((kind, key))
                entry = None if owner is None else owner.reminders.get(name)
                if entry is None or entry.version != version:
                    continue  # changed or removed since it was scheduled
                assert self._deliveries is not None
                self._deliveries.start_soon(self._deliver, kind, key, name, entry)

    async def _load(self, *, first: bool = False) -> None:
        """Read every atom's reminders from the store and serve what changed
        (``first``: all of them, missed periodic ticks as one, now)."""
        began = next(self._stamps)
        try:
            found = await self.durability.store.scan(STATE)
        except Exception as exc:
            _log.error("durable.reminders_unloaded", error=repr(exc))
            return
        now = self._now()
        seen = set()
        for kind, key, document, etag in found:
            seen.add((kind, key))
            known = self.atoms.get((kind, key))
            if known is not None and (known.etag == etag or known.adopted > began):
                # Unchanged; or this system wrote it while the scan ran, and the
                # scan's copy may be the older one.
                continue
            try:
                atom = self._decode(document)
            except Exception as exc:
                _log.error("durable.reminder_unreadable", atom_type=kind, key=key, error=repr(exc))
                continue
            atom.etag = etag
            if first:
                for reminder in atom.reminders.values():
                    if reminder.period is not None and reminder.due < now:
                        reminder.due = now  # missed ticks: one, now
            self._adopt(kind, key, atom)
        for gone in [k for k, a in self.atoms.items() if k not in seen and a.adopted < began]:
            del self.atoms[gone]  # cleared by another system

    def _adopt(self, kind: str, key: str, atom: _Atom) -> None:
        """Serve ``atom`` as stored now: a reminder unchanged since it was
        scheduled keeps its schedule (and a delivery in flight its identity);
        a new or changed one is scheduled afresh; a removed one is dropped."""
        old = self.atoms.get((kind, key))
        for name, reminder in list(atom.reminders.items()):
            previous = None if old is None else old.reminders.get(name)
            if previous is not None and previous.same_as_stored(reminder):
                atom.reminders[name] = previous
            else:
                reminder.version = next(self._stamps)
                self._push(kind, key, name, reminder)
        atom.adopted = next(self._stamps)
        self.atoms[(kind, key)] = atom

    def _push(self, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        heapq.heappush(
            self._heap, (reminder.due, next(self._seq), kind, key, name, reminder.version)
        )
        self._wake.set()

    # ------------------------------------------------------------------
    # What atoms call
    # ------------------------------------------------------------------
    async def remind(
        self,
        cell: AtomCell,
        name: str,
        h: Any,
        args: tuple[Any, ...],
        due: float,
        period: float | None,
        limit: int | None = None,
    ) -> bool:
        """Store the reminder (checked here); False if ``limit`` refused it (see
        :meth:`set`)."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a reminder's name is a non-empty str, not {name!r}")
        if not isinstance(due, (int, float)) or due < 0:
            raise ValueError(f"a reminder's due time is seconds from now (>= 0), not {due!r}")
        if period is not None and (not isinstance(period, (int, float)) or period <= 0):
            raise ValueError(f"a reminder's period is a positive number of seconds, not {period!r}")
        handler = h if isinstance(h, str) else getattr(h, "__name__", None)
        if not isinstance(handler, str) or handler not in cell.table:
            raise TypeError(f"{h!r} is not a handler of {cell.cls.__qualname__}")
        kind, key = self._identity(cell)
        host_form_value(args)  # refuse what the store cannot keep, here
        path = class_path(cell.cls)
        if not self.serves:
            # A worker host: its system's process keeps the reminders.
            stored: bool = await self._desk().ask(
                ReminderDesk.set_reminder, kind, key, path, name, handler, args, due, period, limit
            )
            return stored
        return await self.set(
            kind, key, path, name, handler, tuple(args), float(due), period, limit
        )

    def _desk(self) -> Ref[ReminderDesk]:
        """The system process's :class:`ReminderDesk` (from a worker host)."""
        desk: Ref[ReminderDesk] = self.system.durability().get(ReminderDesk, "desk")
        return desk

    @property
    def serves(self) -> bool:
        """Whether this process takes part in serving the store's reminders (the
        system's own process does; its worker hosts go to it)."""
        return directory_of(self.system) == self.system.prefix

    async def set(
        self,
        kind: str,
        key: str,
        path: str,
        name: str,
        handler: str,
        args: tuple[Any, ...],
        due: float,
        period: float | None,
        limit: int | None = None,
    ) -> bool:
        """Store (and, holding the lease, schedule) a reminder (checked already:
        :meth:`remind`). With ``limit``, a reminder of a new name is not stored
        when the atom holds that many already (checked against what is stored,
        in the same conditional write): False."""
        at = self._now() + float(due)
        every = None if period is None else float(period)

        def change(atom: _Atom) -> bool:
            reminders = atom.reminders
            if limit is not None and name not in reminders and len(reminders) >= limit:
                return False
            reminders[name] = _Reminder(handler, tuple(args), at, every, saved_due=at)
            return True

        return bool(await self._update(kind, key, path, change))

    async def forget(self, cell: AtomCell, name: str) -> bool:
        kind, key = self._identity(cell)
        if not self.serves:
            forgotten: bool = await self._desk().ask(ReminderDesk.unset_reminder, kind, key, name)
            return forgotten
        return await self.unset(kind, key, name)

    async def unset(self, kind: str, key: str, name: str) -> bool:
        def change(atom: _Atom) -> bool:
            return atom.reminders.pop(name, None) is not None

        return bool(await self._update(kind, key, None, change))

    def _identity(self, cell: AtomCell) -> tuple[str, str]:
        key = cell.on_demand_key
        if key is None:
            raise TypeError(
                f"reminders are for on-demand atoms (system.get): {cell.label()} was spawned; "
                "use a timer (send_after, send_every), or make it an on-demand atom"
            )
        return atom_type(cell.cls), key

    # ------------------------------------------------------------------
    # Delivery
    # ------------------------------------------------------------------
    async def _deliver(self, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        # Whatever goes wrong here (the store unreachable, say) is logged: the
        # reminder service must not take the system down.
        try:
            await self._try_deliver(kind, key, name, reminder)
        except Exception as exc:
            _log.error("durable.reminder_error", reminder=name, key=key, error=repr(exc))

    async def _try_deliver(self, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        atom = self.atoms.get((kind, key))
        if atom is None:
            return
        cls = self.durability.activations.class_at(atom.cls_path)
        if cls is None:
            # Not importable, and not a class this process was given (a
            # component's, before ``system.component_class`` loads it again):
            # kept, and tried again a minute later.
            _log.error("durable.reminder_class_missing", cls=atom.cls_path, reminder=name)
            self._retry_in(_MAX_BACKOFF, kind, key, name, reminder)
            return
        version = reminder.version
        try:
            await self.system.get(cls, key).ask(reminder.handler, *reminder.args)
        except Exception as exc:
            if self._replaced(kind, key, name, reminder, version):
                return
            reminder.attempts += 1
            if reminder.period is None and reminder.attempts >= ATTEMPTS:
                _log.error("durable.reminder_dropped", reminder=name, key=key, error=repr(exc))
                await self._remove(kind, key, name, reminder)
                return
            backoff = min(2.0 ** (reminder.attempts - 1), _MAX_BACKOFF)
            _log.warning("durable.reminder_failed", reminder=name, key=key, error=repr(exc))
            if reminder.period is None or backoff < reminder.period:
                self._retry_in(backoff, kind, key, name, reminder)
                return
            await self._next_tick(kind, key, name, reminder)
            return
        if self._replaced(kind, key, name, reminder, version):
            return  # the handler replaced or removed it
        reminder.attempts = 0
        if reminder.period is None:
            await self._remove(kind, key, name, reminder)
            return
        await self._next_tick(kind, key, name, reminder)

    def _retry_in(self, delay: float, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        """Deliver ``reminder`` again ``delay`` seconds from now (in memory only:
        the stored due time stays, so a restart delivers it at once)."""
        reminder.version = next(self._stamps)
        reminder.due = self._now() + delay
        self._push(kind, key, name, reminder)

    def _replaced(self, kind: str, key: str, name: str, reminder: _Reminder, version: int) -> bool:
        atom = self.atoms.get((kind, key))
        current = None if atom is None else atom.reminders.get(name)
        return current is not reminder or reminder.version != version

    async def _remove(self, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        """Remove a delivered (or dropped) reminder, unless it changed meanwhile."""

        def change(atom: _Atom) -> None:
            stored = atom.reminders.get(name)
            if stored is not None and stored.same_as_stored(reminder):
                del atom.reminders[name]

        await self._update(kind, key, None, change)

    async def _next_tick(self, kind: str, key: str, name: str, reminder: _Reminder) -> None:
        assert reminder.period is not None
        now = self._now()
        due = reminder.due + reminder.period
        if due <= now:  # a slow delivery or missed ticks: one tick, a period from now
            due = now + reminder.period

        def change(atom: _Atom) -> None:
            stored = atom.reminders.get(name)
            if stored is not None and stored.same_as_stored(reminder):
                stored.due = stored.saved_due = due

        await self._update(kind, key, None, change)

    # ------------------------------------------------------------------
    # The stored form
    # ------------------------------------------------------------------
    async def _update(
        self, kind: str, key: str, path: str | None, change: Callable[[_Atom], Any]
    ) -> Any:
        """Apply ``change`` to the atom's reminders as stored now, and write
        them back if nobody wrote in between (else read and try again); the
        holder then serves what it wrote. ``path``: the atom's class, for an
        atom with no reminders stored yet (None: nothing to change then).
        Returns what ``change`` returned."""
        if self.holding:
            await self._loaded.wait()  # what is served is loaded first
        store = self.durability.store
        for _ in range(_RETRIES):
            stored = await store.read(kind, key, STATE)
            if stored is not None and stored[0] is not None:
                atom = self._decode(stored[0])
            elif path is not None:
                atom = _Atom(path)
            else:
                return None
            etag = None if stored is None else stored[1]
            result = change(atom)
            try:
                if atom.reminders:
                    atom.etag = await store.write(kind, key, STATE, self._encode(atom), etag)
                elif stored is not None and stored[0] is not None:
                    atom.etag = await store.clear(kind, key, STATE, etag)
                else:
                    return result  # nothing was stored, nothing is
            except StateConflict:
                continue  # another system (or delivery) wrote: read it again
            if self.holding:
                if atom.reminders:
                    self._adopt(kind, key, atom)
                else:
                    self.atoms.pop((kind, key), None)
            return result
        raise StateConflict(f"the reminders of {kind} {key!r} keep changing under this system")

    @staticmethod
    def _encode(atom: _Atom) -> str:
        return host_form_value(
            {
                "radon-reminders": _FORMAT,
                "class": atom.cls_path,
                "reminders": {
                    name: {
                        "handler": r.handler,
                        "args": list(r.args),
                        "due": r.saved_due,
                        "period": r.period,
                    }
                    for name, r in atom.reminders.items()
                },
            }
        )

    @staticmethod
    def _decode(document: str) -> _Atom:
        doc = read_host_form_value(document)
        if not isinstance(doc, dict) or doc.get("radon-reminders") != _FORMAT:
            raise ValueError("not a reminders document")
        atom = _Atom(str(doc["class"]))
        for name, r in doc["reminders"].items():
            period = r.get("period")
            due = float(r["due"])
            atom.reminders[str(name)] = _Reminder(
                str(r["handler"]),
                tuple(r.get("args") or ()),
                due,
                None if period is None else float(period),
                saved_due=due,
            )
        return atom


class ReminderDesk(Atom):
    """The reminder service's door for on-demand atoms activated on worker hosts
    (``activate_on``): an on-demand daemon at the system's process, which
    serves the store's reminders, that such an activation's ``remind`` and
    ``forget_reminder`` ask. Its handlers take the atom's identity explicitly."""

    durable_type = "$reminder-desk"
    daemon = True

    @handler
    async def set_reminder(
        self,
        kind: str,
        key: str,
        path: str,
        name: str,
        h: str,
        args: tuple[Any, ...],
        due: float,
        period: float | None,
        limit: int | None = None,
    ) -> bool:
        return await _served(self).set(
            kind, key, path, name, h, tuple(args), float(due), period, limit
        )

    @handler
    async def unset_reminder(self, kind: str, key: str, name: str) -> bool:
        return await _served(self).unset(kind, key, name)


def _served(desk: ReminderDesk) -> Reminders:
    cell = lookup(desk.ref.id)
    assert cell is not None
    durability = cast("Durability", cell.system.durability())
    return durability.reminders
