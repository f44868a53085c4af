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

Every system opened with ``state_store=`` serves its store's reminders from
the start; with the default store, from the first use of durability. Its
worker hosts do not (each would deliver them once more): an activation there
sets and forgets reminders through :class:`ReminderDesk`, an on-demand daemon
at the system's process. Two systems serving one store would both deliver
them (at least once, twice): serve a store's reminders from one system.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from .._atom import Atom, handler
from .._errors import StateConflict
from .._logs import get_logger
from .._state import atom_type
from ..runtime import lookup
from ..sandbox.values import host_form_value, read_host_form_value
from ._virtual import class_path, directory_of, import_atom_class

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


@attrs.define
class _Reminder:
    handler: str
    args: tuple[Any, ...]
    due: float  # wall clock (time.time())
    period: float | None
    version: int = 0  # bumped on every change: a heap entry of an older one is stale
    attempts: int = 0


@attrs.define
class _Atom:
    """One atom's reminders, as stored."""

    cls_path: str
    reminders: dict[str, _Reminder] = attrs.Factory(dict)
    etag: str | None = None


class Reminders:
    """The reminder service of one system (see the module docs)."""

    def __init__(self, system: System, durability: Durability) -> None:
        self.system = system
        self.durability = durability
        self.atoms: dict[tuple[str, str], _Atom] = {}
        self._heap: list[tuple[float, int, str, str, str, int]] = []
        self._seq = itertools.count()
        self._wake = trio.Event()
        self._loaded = trio.Event()
        self._t0 = 0.0
        self._epoch0 = 0.0
        # The service's own scope (its loop and every delivery): cancelled, and
        # waited for, before the store closes (``stop``).
        self._scope = trio.CancelScope()
        self._finished = trio.Event()
        self._deliveries: trio.Nursery | None = None
        self._started = False

    async def stop(self) -> None:
        """Cancel the service and its deliveries, and wait until they are gone."""
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
        """Load the store's reminders, then deliver them as they fall due, until
        :meth:`stop`."""
        self._started = True
        try:
            with self._scope:
                async with trio.open_nursery() as self._deliveries:
                    await self._serve()
        finally:
            self._loaded.set()  # nobody waits for a load that will not come
            self._finished.set()

    async def _serve(self) -> None:
        self._t0 = trio.current_time()
        self._epoch0 = time.time()
        try:
            found = await self.durability.store.scan(STATE)
        except Exception as exc:
            _log.error("durable.reminders_unloaded", error=repr(exc))
            found = []
        now = self._now()
        for kind, key, document, etag in found:
            try:
                atom = self._decode(document)
            except Exception as exc:
                _log.error("durable.reminder_unreadable", atom_type=kind, key=key, error=repr(exc))
                continue
            atom.etag = etag
            self.atoms[(kind, key)] = atom
            for name, reminder in atom.reminders.items():
                if reminder.period is not None and reminder.due < now:
                    reminder.due = now  # missed ticks: one, now
                self._push(kind, key, name, reminder)
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
    ) -> None:
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
            await self._desk().ask(
                ReminderDesk.set_reminder, kind, key, path, name, handler, args, due, period
            )
            return
        await self.set(kind, key, path, name, handler, tuple(args), float(due), period)

    def _desk(self) -> Ref[ReminderDesk]:
        """The system process's :class:`ReminderDesk` (from a worker host)."""
        desk: Ref[ReminderDesk] = self.system.durability().get(ReminderDesk, "desk")
        return desk

    @property
    def serves(self) -> bool:
        """Whether this process serves the store's reminders (the system's own
        process does; its worker hosts go to it)."""
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
    ) -> None:
        """Store and schedule a reminder (checked already: :meth:`remind`)."""
        await self._loaded.wait()
        atom = self.atoms.get((kind, key))
        if atom is None:
            atom = self.atoms[(kind, key)] = _Atom(path)
        old = atom.reminders.get(name)
        reminder = _Reminder(
            handler,
            tuple(args),
            self._now() + float(due),
            None if period is None else float(period),
            version=0 if old is None else old.version + 1,
        )
        atom.reminders[name] = reminder
        await self._save(kind, key, atom)
        self._push(kind, key, name, reminder)

    async def forget(self, cell: AtomCell, name: str) -> bool:
        kind, key = self._identity(cell)
        if not self.serves:
            forgotten: bool = await self._desk().ask(ReminderDesk.unset_reminder, kind, key, name)
            return forgotten
        return await self.unset(kind, key, name)

    async def unset(self, kind: str, key: str, name: str) -> bool:
        """Remove a reminder; False if there was none."""
        await self._loaded.wait()
        atom = self.atoms.get((kind, key))
        if atom is None or name not in atom.reminders:
            return False
        del atom.reminders[name]
        await self._save(kind, key, atom)
        return True

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
        cls = import_atom_class(atom.cls_path)
        if cls is None:
            _log.error("durable.reminder_class_missing", cls=atom.cls_path, reminder=name)
            return
        version = reminder.version
        try:
            await self.system.get(cls, key).ask(reminder.handler, *reminder.args)
        except Exception as exc:
            if atom.reminders.get(name) is not reminder or reminder.version != version:
                return  # replaced or removed meanwhile
            reminder.attempts += 1
            if reminder.period is None and reminder.attempts >= ATTEMPTS:
                _log.error("durable.reminder_dropped", reminder=name, key=key, error=repr(exc))
                del atom.reminders[name]
                await self._save(kind, key, atom)
                return
            backoff = min(2.0 ** (reminder.attempts - 1), _MAX_BACKOFF)
            _log.warning("durable.reminder_failed", reminder=name, key=key, error=repr(exc))
            if reminder.period is None or backoff < reminder.period:
                reminder.version += 1
                reminder.due = self._now() + backoff
                self._push(kind, key, name, reminder)
                return
            await self._next_tick(kind, key, name, atom, reminder)
            return
        if atom.reminders.get(name) is not reminder or reminder.version != version:
            return  # the handler replaced or removed it
        reminder.attempts = 0
        if reminder.period is None:
            del atom.reminders[name]
            await self._save(kind, key, atom)
            return
        await self._next_tick(kind, key, name, atom, reminder)

    async def _next_tick(
        self, kind: str, key: str, name: str, atom: _Atom, reminder: _Reminder
    ) -> None:
        assert reminder.period is not None
        now = self._now()
        due = reminder.due + reminder.period
        if due <= now:  # a slow delivery or missed ticks: one tick, a period from now
            due = now + reminder.period
        reminder.due = due
        reminder.version += 1
        await self._save(kind, key, atom)
        self._push(kind, key, name, reminder)

    # ------------------------------------------------------------------
    # The stored form
    # ------------------------------------------------------------------
    async def _save(self, kind: str, key: str, atom: _Atom) -> None:
        store = self.durability.store
        for _ in range(3):
            try:
                if atom.reminders:
                    atom.etag = await store.write(kind, key, STATE, self._encode(atom), atom.etag)
                else:
                    atom.etag = await store.clear(kind, key, STATE, atom.etag)
                return
            except StateConflict:
                # Another system wrote this atom's reminders: ours win (one
                # service per store is the documented set-up); take its etag.
                stored = await store.read(kind, key, STATE)
                atom.etag = None if stored is None else stored[1]
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
                        "due": r.due,
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
            atom.reminders[str(name)] = _Reminder(
                str(r["handler"]),
                tuple(r.get("args") or ()),
                float(r["due"]),
                None if period is None else float(period),
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
    ) -> None:
        await _served(self).set(kind, key, path, name, h, tuple(args), float(due), period)

    @handler
    async def unset_reminder(self, kind: str, key: str, name: str) -> bool:
        return await _served(self).unset(kind, key, name)


def _served(desk: ReminderDesk) -> Reminders:
    cell = lookup(desk.ref.id)
    assert cell is not None
    durability = cast("Durability", cell.system.durability())
    return durability.reminders
