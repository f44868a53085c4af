"""The frames hosts exchange: one type per kind.

On the wire a frame is a pickled plain tuple ``(kind, ...fields)``; pickle
writes and reads an exact ``tuple`` much faster than any class instance. In the
code each kind has a type of its own, checked by mypy:

* The three per-message kinds, ``tell``, ``ask`` and ``reply`` (a frame per
  message sent across hosts), are typed tuples (:data:`Tell`, :data:`Ask`,
  :data:`Reply`: ``tuple[Literal["tell"], ...]``), built and unpacked as plain
  tuples. Measured on the cross-process path, a class here costs every message
  a Python-level constructor at the sender and a conversion at the reader (a
  ``NamedTuple``: about 0.5 us each way, a fifth of ``bench/placement.py``'s
  tell throughput; an attrs class more).
* Every other kind is a :class:`~typing.NamedTuple` whose first field is its
  kind, so its handler reads named fields. The dispatch table turns the
  decoded tuple into the class (``tuple.__new__``) before calling the handler;
  a sender passes the instance, and ``_wire.encode`` pickles its plain tuple.

:data:`CLASSES` lists the kinds that are classes; what every kind does is in
the one dispatch table (``_dispatch.frame_table``). All hosts of a cluster
should run the same version: a request of a kind this version does not know is
refused with an error reply, any other unknown frame is logged.

Two families:

* messages, one way: ``hello`` (first on each connection), ``ping``
  (heartbeat), ``tell``, ``ask`` (its reply comes as ``reply``), ``cancel`` (the
  asker gave up), ``peers``, ``watch``/``down`` (death watch), ``atom_stopped``,
  ``shutdown``, and ``undecodable`` (made by the reader for a frame that does
  not unpickle here; it never travels);
* requests (:data:`Request`), whose second field is the request id: the
  receiver runs their handler in a task of its own and sends its outcome back as
  a ``reply`` with that id.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple, TypeAlias

__all__ = [
    "CLASSES",
    "Activate",
    "Ask",
    "Stopped",
    "Cancel",
    "Credit",
    "ChildFailed",
    "CodeDone",
    "CodeHas",
    "CodePart",
    "Down",
    "Emigrate",
    "Frame",
    "Hello",
    "Load",
    "Migrate",
    "Peers",
    "Ping",
    "Reply",
    "Request",
    "Retire",
    "Shutdown",
    "StopAtom",
    "Tell",
    "Undecodable",
    "Watch",
    "with_req",
]


# ----------------------------------------------------------------------
# messages
# ----------------------------------------------------------------------
class Hello(NamedTuple):
    """Who the sender is: the first frame each way on a connection."""

    kind: Literal["hello"]
    node_id: str
    name: str
    address: str | None
    python: str  # its Python, for classes shipped by value (see ``_classes``)


class Ping(NamedTuple):
    """A heartbeat: sent when a connection has been idle for the interval."""

    kind: Literal["ping"]


Tell: TypeAlias = tuple[Literal["tell"], str, str, tuple[Any, ...], dict[str, Any]]
"""``("tell", atom id, handler name, args, kwargs)``: pickled in one piece with
its arguments (the throughput path)."""

Ask: TypeAlias = tuple[Literal["ask"], int, str, str, bytes]
"""``("ask", request id, atom id, handler name, pickled (args, kwargs))``: the
arguments are a nested pickle, so one that does not unpickle here is still
answered (with an error)."""

Reply: TypeAlias = tuple[Literal["reply"], int, bytes]
"""``("reply", request id, outcome)``: the outcome of an ask or a request
(``_endpoints.dump_outcome``)."""


class Credit(NamedTuple):
    """Room for tells the receiver has taken (``_flow``): ``(atom id, tells,
    window)`` each, the window being the atom's mailbox size (0: unknown)."""

    kind: Literal["credit"]
    grants: list[tuple[str, int, int]]


class Cancel(NamedTuple):
    """The asker gave up on ask ``req``: withdraw it if its turn has not begun."""

    kind: Literal["cancel"]
    req: int


class Peers(NamedTuple):
    """Every host the sender knows (node id, name, address, and whether it
    listens with TLS), so hosts can talk to each other directly."""

    kind: Literal["peers"]
    table: list[tuple[str, str, str | None, bool]]


class Watch(NamedTuple):
    """Death watch: the sender has atoms watching ``atom_id`` (its origin is the
    receiver), which answers with ``down`` frames."""

    kind: Literal["watch"]
    atom_id: str


class Down(NamedTuple):
    """A watched atom crashed (``stopped`` False) or stopped."""

    kind: Literal["down"]
    atom_id: str
    reason: str | None
    stopped: bool


class Stopped(NamedTuple):
    """An atom whose origin is the receiver stopped on the sender's host."""

    kind: Literal["atom_stopped"]
    atom_id: str
    reason: str | None


class Shutdown(NamedTuple):
    """A worker host's parent asks it to exit."""

    kind: Literal["shutdown"]


class Undecodable(NamedTuple):
    """Made by the reader for a frame that did not unpickle (a dead letter)."""

    kind: Literal["undecodable"]
    error: str


# ----------------------------------------------------------------------
# requests (answered with a ``reply``)
# ----------------------------------------------------------------------
class Load(NamedTuple):
    """How many top-level atoms run on the receiver (``LeastLoaded``)."""

    kind: Literal["load"]
    req: int


class StopAtom(NamedTuple):
    """Stop the atom (the receiver is where it runs, or its origin)."""

    kind: Literal["stop_atom"]
    req: int
    atom_id: str


class Migrate(NamedTuple):
    """To the atom's origin: move it to node ``to_id`` (``_migration``)."""

    kind: Literal["migrate"]
    req: int
    atom_id: str
    to_id: str
    budget: float | None
    """Seconds the migration may take from now (None: no limit)."""


class Emigrate(NamedTuple):
    """From the origin to the atom's holder: move it to node ``to_id``."""

    kind: Literal["emigrate"]
    req: int
    atom_id: str
    to_id: str
    budget: float | None
    """Seconds the migration may take from now (None: no limit)."""


class Activate(NamedTuple):
    """Run an atom here: placed (``blob`` holds no state) or migrated (its
    snapshot, queued messages and timers). ``sandbox`` is a sandboxed atom's
    component hash, config and restore state (``_code.SandboxField``)."""

    kind: Literal["activate"]
    req: int
    atom_id: str
    name: str | None
    cls_blob: bytes
    ctor: bytes
    blob: bytes
    capacity: int
    restarts: int
    sandbox: Any = None
    budget: float | None = None
    """A migration's time left: an activation that cannot finish within it is
    not started (None: no limit; a placement)."""
    key: str | None = None
    """An on-demand atom's key (``Atom.key``), under which its state is stored."""


class CodeHas(NamedTuple):
    """Whether the receiver has the component with content hash ``h``."""

    kind: Literal["code_has"]
    req: int
    h: str


class CodePart(NamedTuple):
    """One chunk of a component being shipped."""

    kind: Literal["code_part"]
    req: int
    h: str
    offset: int
    chunk: bytes


class CodeDone(NamedTuple):
    """The whole component was sent: check, store and compile it."""

    kind: Literal["code_done"]
    req: int
    h: str
    size: int
    module: str
    modules: list[str]


class ChildFailed(NamedTuple):
    """To the origin: a handler of the atom raised here (``_supervision``)."""

    kind: Literal["child_failed"]
    req: int
    atom_id: str
    blob: bytes


class Retire(NamedTuple):
    """From the origin: its supervisor terminates this incarnation."""

    kind: Literal["retire"]
    req: int
    atom_id: str
    timeout: float | None


Request = (
    Load | StopAtom | Migrate | Emigrate | Activate | CodeHas | CodePart | CodeDone | ChildFailed
) | Retire
Message = (
    Hello | Ping | Tell | Ask | Reply | Credit | Cancel | Peers | Watch | Down | Stopped | Shutdown
)
Frame = Message | Undecodable | Request

# kind -> class, for every kind but the three typed tuples.
CLASSES: dict[str, type[Frame]] = {
    "hello": Hello,
    "ping": Ping,
    "credit": Credit,
    "cancel": Cancel,
    "peers": Peers,
    "watch": Watch,
    "down": Down,
    "atom_stopped": Stopped,
    "shutdown": Shutdown,
    "undecodable": Undecodable,
    "load": Load,
    "stop_atom": StopAtom,
    "migrate": Migrate,
    "emigrate": Emigrate,
    "activate": Activate,
    "code_has": CodeHas,
    "code_part": CodePart,
    "code_done": CodeDone,
    "child_failed": ChildFailed,
    "retire": Retire,
}
_new = tuple.__new__


def with_req(frame: Request, req: int) -> Request:
    """``frame`` with its request id set (``Node.request`` numbers requests)."""
    out: Request = _new(type(frame), (frame[0], req, *frame[2:]))
    return out
