"""The journal: each shard's change sets in a radon-actors state store, so the
store survives a full restart, as Redis's append-only file (AOF) does.

``python -m examples.kvstore --data-dir DIR`` keeps it in an SQLite file in
``DIR`` (``SQLiteStore``, WAL mode, commits grouped across shards); any
:class:`~radon_actors.StateStore` works (``open_store(journal=...)``).

**What is journaled, and when.** A shard's primary journals every change set
(a write, a one-shard transaction, a two-phase commit, a ``FLUSHALL``) *before*
it applies it, replicates it and replies, in the same turn. So an acknowledged
write is in the journal; a change set the journal refused is not applied and
its client gets ``-MISCONF`` (Redis's answer when it cannot write its AOF).

**Layout.** One :class:`Journal` atom per shard, in the entry process, writes
under atom type ``kvstore.journal`` and the shard's index as key:

* ``snapshot``: the whole table as of change set ``seq``;
* ``aof:0`` ... ``aof:<ring - 1>``: change set ``n`` goes to slot ``n % ring``.

Replay reads the snapshot, then slots ``seq + 1``, ``seq + 2`` ... as long as
each holds the change set with the expected number (an older one is from the
ring's previous lap). The primary writes a snapshot every ``ring / 2`` change
sets (it has the table; the journal keeps no copy of it), so the ring never
overwrites a change set that no snapshot covers; should snapshots keep failing,
appends are refused once the ring is full, never dropped.

**One writer.** Every write names the revision it read (the store's ETag), and
change sets must follow one another: a second journal incarnation, or a deposed
primary that still writes, is refused instead of overwriting.

**Failover.** A primary that died after journaling a change set and before
replicating it leaves the journal one change set ahead of its backups. The
promoted backup compares (``position``) and, if so, reads the shard back from
the journal before it serves (``Shard.promote``): the retried write is then
answered from its journaled outcome, applied once.

The stored documents are JSON: bytes as Latin-1 text (one character per byte),
replies tagged by their RESP type.
"""

from __future__ import annotations

import json
from typing import Any

from radon_actors import Atom, StateConflict, StateStore, handler

from ._commands import OK, Entry
from ._resp import Error, Map, Reply, Simple, Verbatim

__all__ = ["ATOM_TYPE", "Journal", "JournalError", "check_layout"]

ATOM_TYPE = "kvstore.journal"
DEFAULT_RING = 4096


class JournalError(Exception):
    """The journal did not take a change set: the store failed, or the change
    set does not follow the last one (another writer). Nothing was written."""


class Journal(Atom):
    """One shard's journal (see the module docs)."""

    def __init__(self, shard: int, store: StateStore, ring: int = DEFAULT_RING) -> None:
        if ring < 2:
            raise ValueError("a journal's ring needs at least 2 slots")
        self.store = store
        self.ring = ring
        self.shard_key = str(shard)
        self.last: int | None = None  # the last change set journaled (None: read it first)
        self.covered = 0  # the change set the snapshot is of
        self.etags: dict[str, str | None] = {}  # revision of each document, as last seen

    @handler(raises=JournalError)
    async def recover(self) -> tuple[int, dict[bytes, Entry], dict[str, Reply]]:
        """Read the shard back: the number of its last change set, its table, and
        the outcomes of the writes in the ring (so retries are answered)."""
        try:
            return await self._replay()
        except Exception as exc:
            raise JournalError(
                f"the journal of shard {self.shard_key} cannot be read: {exc}"
            ) from exc

    @handler(raises=JournalError)
    async def position(self) -> int:
        """The number of the last change set journaled."""
        if self.last is None:
            await self.recover()
        assert self.last is not None
        return self.last

    @handler(raises=JournalError)
    async def append(
        self, seq: int, op: str, wid: str, reply: Reply, changes: dict[bytes, Entry | None]
    ) -> bool:
        """Journal change set ``seq`` (``op``: ``apply`` or ``clear``) with its
        write id and reply; True when the shard should send a snapshot now."""
        last = await self.position()
        if seq != last + 1:
            raise JournalError(
                f"change set {seq} of shard {self.shard_key} does not follow the journal's last, "
                f"{last} (another primary wrote, or this one fell behind)"
            )
        if seq - self.covered > self.ring:
            raise JournalError(
                f"the journal of shard {self.shard_key} is full: no snapshot since change set "
                f"{self.covered} could be written"
            )
        document = json.dumps(
            {
                "seq": seq,
                "op": op,
                "wid": wid,
                "reply": _reply_out(reply),
                "changes": [[_text(k), _entry_out(e)] for k, e in changes.items()],
            },
            separators=(",", ":"),
        )
        await self._write(f"aof:{seq % self.ring}", document)
        self.last = seq
        return seq - self.covered >= self.ring // 2

    @handler(raises=JournalError)
    async def snapshot(self, seq: int, data: dict[bytes, Entry]) -> None:
        """Store the whole table as of change set ``seq``."""
        rows = [[_text(k), _text(v), expires] for k, (v, expires) in data.items()]
        document = json.dumps({"seq": seq, "data": rows}, separators=(",", ":"))
        await self._write("snapshot", document)
        self.covered = seq
        if self.last is None or self.last < seq:
            self.last = seq  # the journal had fallen behind the shard: it is level now

    # ------------------------------------------------------------------
    async def _replay(self) -> tuple[int, dict[bytes, Entry], dict[str, Reply]]:
        store, key = self.store, self.shard_key
        data: dict[bytes, Entry] = {}
        outcomes: dict[str, Reply] = {}
        seq = 0
        found = await store.read(ATOM_TYPE, key, "snapshot")
        self.etags["snapshot"] = None if found is None else found[1]
        if found is not None and found[0] is not None:
            document = json.loads(found[0])
            seq = document["seq"]
            data = {_bytes(k): (_bytes(v), expires) for k, v, expires in document["data"]}
        self.covered = seq
        for _ in range(self.ring):
            name = f"aof:{(seq + 1) % self.ring}"
            found = await store.read(ATOM_TYPE, key, name)
            self.etags[name] = None if found is None else found[1]
            if found is None or found[0] is None:
                break
            record = json.loads(found[0])
            if record["seq"] != seq + 1:
                break  # the ring's previous lap: the end
            if record["op"] == "clear":
                data.clear()
            else:
                for k, entry in record["changes"]:
                    if entry is None:
                        data.pop(_bytes(k), None)
                    else:
                        data[_bytes(k)] = (_bytes(entry[0]), entry[1])
            outcomes[record["wid"]] = _reply_in(record["reply"])
            seq += 1
        self.last = seq
        return seq, data, outcomes

    async def _write(self, name: str, document: str) -> None:
        store, key = self.store, self.shard_key
        if name not in self.etags:
            found = await store.read(ATOM_TYPE, key, name)
            self.etags[name] = None if found is None else found[1]
        try:
            self.etags[name] = await store.write(ATOM_TYPE, key, name, document, self.etags[name])
        except StateConflict as exc:
            # Another writer: forget what we knew, and read it again next time.
            self.etags.pop(name, None)
            self.last = None
            raise JournalError(f"the journal of shard {key} was written by another: {exc}") from exc
        except Exception as exc:
            # The outcome is unknown (a failed commit may still have landed):
            # read the revision and the position again before the next write.
            self.etags.pop(name, None)
            self.last = None
            raise JournalError(f"the journal of shard {key} cannot be written: {exc}") from exc


async def check_layout(store: StateStore, shards: int) -> None:
    """Refuse to open a journal written by a store with another number of shards
    (its keys would be looked for in the wrong shards); record it the first time."""
    found = await store.read(ATOM_TYPE, "layout", "shards")
    if found is not None and found[0] is not None:
        written = json.loads(found[0])["shards"]
        if written != shards:
            raise ValueError(
                f"the journal was written by a store with {written} shards; start it "
                f"with --shards {written} (or use another --data-dir)"
            )
        return
    etag = None if found is None else found[1]
    await store.write(ATOM_TYPE, "layout", "shards", json.dumps({"shards": shards}), etag)


def _text(b: bytes) -> str:
    return b.decode("latin-1")


def _bytes(s: str) -> bytes:
    return s.encode("latin-1")


def _entry_out(entry: Entry | None) -> list[Any] | None:
    return None if entry is None else [_text(entry[0]), entry[1]]


def _reply_out(reply: Reply) -> Any:
    """A reply as JSON: bytes as text, the other RESP types tagged."""
    if reply is None or (isinstance(reply, int) and not isinstance(reply, bool)):
        return reply
    if isinstance(reply, Verbatim):
        return {"=": _text(reply)}
    if isinstance(reply, bytes):
        return _text(reply)
    if isinstance(reply, Error):
        return {"-": str(reply)}
    if isinstance(reply, Simple):
        return {"+": str(reply)}
    if isinstance(reply, Map):
        return {"%": [[_reply_out(k), _reply_out(v)] for k, v in reply.items()]}
    if isinstance(reply, list):
        return [_reply_out(r) for r in reply]
    raise TypeError(f"a reply of type {type(reply).__name__} cannot be journaled")


def _reply_in(value: Any) -> Reply:
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return _bytes(value)
    if isinstance(value, list):
        return [_reply_in(v) for v in value]
    ((tag, inner),) = value.items()
    if tag == "+":
        return OK if inner == "OK" else Simple(inner)
    if tag == "-":
        return Error(inner)
    if tag == "=":
        return Verbatim(_bytes(inner))
    return Map((_reply_in(k), _reply_in(v)) for k, v in inner)
