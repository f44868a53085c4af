"""The RESP frontend: a trio TCP server that speaks Redis 7.0 to its clients
(RESP2, and RESP3 after ``HELLO 3``).

Data commands go to the :class:`~._store.Store`; what belongs to a connection
(``MULTI``/``EXEC``/``WATCH``, ``HELLO``, ``CLIENT``, ``SELECT``) or to the whole
server (``DBSIZE``, ``KEYS``, ``SCAN``, ``CONFIG``, ``COMMAND``, ``INFO``,
``TIME``) is answered here, with Redis's replies and error texts.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
import trio

from ._commands import ARITIES, check_arity, glob_match, is_data_command, unknown_command
from ._poller import EPOLL, Connection, Poller, StreamConnection
from ._resp import (
    Error,
    Map,
    ProtocolError,
    Reply,
    RespParser,
    Simple,
    Verbatim,
    encode,
    parse_int,
)
from ._shard import Token
from ._store import Later, Store

__all__ = ["NULL_ARRAY", "serve"]

_log = structlog.get_logger("kvstore")

QUEUED = Simple("QUEUED")
OK = Simple("OK")
NOT_INT = Error("ERR value is not an integer or out of range")
SYNTAX = Error("ERR syntax error")


class _NullArray(list[Reply]):
    """EXEC's reply when a watched key changed: ``*-1`` in RESP2, ``_`` in RESP3."""


NULL_ARRAY = _NullArray()

# Server parameters CONFIG GET reports (what clients and redis-benchmark ask).
CONFIG = {
    b"save": b"",
    b"appendonly": b"no",
    b"databases": b"1",
    b"maxmemory": b"0",
    b"maxmemory-policy": b"noeviction",
    b"proto-max-bulk-len": b"536870912",
    b"client-query-buffer-limit": b"1073741824",
    b"timeout": b"0",
    b"cluster-enabled": b"no",
}

_ids = itertools.count(1)

# What the poller's responder answers now, per call, at most: a longer input,
# or the commands past this many, go to the connection's task (see _poller).
NOW_BYTES = 16384
NOW_COMMANDS = 32


class _Connection:
    """One client's session: protocol, name, MULTI queue and WATCHed keys.

    Its commands run in one of two places. :meth:`respond`, in the poller's
    task, answers what it can at once; the first command that must wait, and
    every command after it, go to the connection's task (:meth:`_Server.handle`)
    through ``backlog``, with ``out`` holding the replies owed before them. The
    two never run at once: the poller only calls :meth:`respond` while the task
    waits for input with an empty backlog.
    """

    def __init__(self, server: _Server, address: str) -> None:
        self.server = server
        self.store = server.store
        self.id = next(_ids)
        self.address = address
        self.name = b""
        self.proto = 2  # RESP2 until the client says HELLO 3
        self.multi: list[list[bytes]] | None = None
        self.multi_failed = False
        self.watched: dict[bytes, Token] = {}
        self.quit = False
        self.created = time.time()
        self.parser = RespParser()
        self.backlog: list[list[bytes]] = []  # commands parsed, not answered yet
        self.backlog_wid: str | None = None  # the id backlog[0] was sent with, if a write
        self.out = bytearray()  # replies owed before the backlog's
        self.error: ProtocolError | None = None  # after the backlog: answer it, then close

    def take(self, data: bytes) -> None:
        """Parse ``data`` into the backlog (a protocol error ends the input)."""
        if self.error is not None:
            return
        try:
            self.backlog += self.parser.parse(data)
        except ProtocolError as exc:
            self.error = exc

    def respond(self, data: bytes) -> bytes | bytearray | None:
        """The poller's responder: the replies to ``data``, answered now; or
        None when the task must go on (from ``backlog``, never empty then)."""
        self.take(data)
        commands = self.backlog
        if not commands:
            return None if self.error is not None else b""  # (a command's start)
        if len(data) > NOW_BYTES:
            return None
        out = self.out
        for i, command in enumerate(commands):
            if i == NOW_COMMANDS:
                self.backlog = commands[i:]
                return None
            try:
                reply = self.dispatch_now(command)
            except Exception as exc:  # a bug must not take the server down
                reply = _internal_error(command, exc)
            if isinstance(reply, Later):
                self.backlog, self.backlog_wid = commands[i:], reply.wid
                return None
            encode(reply, out, self.proto)
        self.backlog = []
        self.out = bytearray()
        return out

    def dispatch_now(self, command: list[bytes]) -> Reply | Later:
        """:meth:`dispatch`, if it can answer without waiting (a data command
        its primary answers now, or one queued inside MULTI); else Later."""
        name = command[0].upper()
        if self.multi is not None and name not in _NOT_QUEUED:
            return self._queue(name, command)
        if is_data_command(name):
            return self.store.execute_now(command)
        return _LATER

    async def dispatch(self, command: list[bytes], wid: str | None = None) -> Reply:
        name = command[0].upper()
        if self.multi is not None and name not in _NOT_QUEUED:
            return self._queue(name, command)
        if is_data_command(name):  # the common case first
            return await self.store.execute(command, wid)
        spec = _CONNECTION.get(name)
        if spec is None:
            return unknown_command(command)
        arity, run = spec
        if (arity > 0 and len(command) != arity) or (arity < 0 and len(command) < -arity):
            return _wrong_args(name)
        return await run(self, command[1:])

    # transactions -------------------------------------------------------------
    def _queue(self, name: bytes, command: list[bytes]) -> Reply:
        assert self.multi is not None
        error: Error | None
        if is_data_command(name):
            error = check_arity(name, len(command))
        elif name in _IN_MULTI:
            arity = _CONNECTION[name][0]
            bad = (arity > 0 and len(command) != arity) or (arity < 0 and len(command) < -arity)
            error = _wrong_args(name) if bad else None
        elif name in _CONNECTION:
            error = Error(
                f"ERR {name.decode(errors='replace')} cannot be part of a transaction on "
                "this store (it is not a data command)"
            )
        else:
            error = unknown_command(command)
        if error is not None:
            self.multi_failed = True  # EXEC will answer EXECABORT
            return error
        self.multi.append(command)
        return QUEUED

    async def _multi(self, args: list[bytes]) -> Reply:
        if self.multi is not None:
            return Error("ERR MULTI calls can not be nested")
        self.multi, self.multi_failed = [], False
        return OK

    async def _discard(self, args: list[bytes]) -> Reply:
        if self.multi is None:
            return Error("ERR DISCARD without MULTI")
        self.multi = None
        self.watched = {}
        return OK

    async def _exec(self, args: list[bytes]) -> Reply:
        if self.multi is None:
            return Error("ERR EXEC without MULTI")
        queued, failed, watched = self.multi, self.multi_failed, self.watched
        self.multi, self.watched = None, {}
        if failed:
            return Error("EXECABORT Transaction discarded because of previous errors.")
        data = [cmd for cmd in queued if is_data_command(cmd[0].upper())]
        replies = await self.store.transaction(data, watched or None)
        if replies is None:
            return NULL_ARRAY  # a watched key changed: nothing ran
        if isinstance(replies, Error):
            return replies
        results = iter(replies)
        out: list[Reply] = []
        for cmd in queued:
            if is_data_command(cmd[0].upper()):
                out.append(next(results))
            else:  # PING, ECHO, TIME: nothing to do with keys
                out.append(await self.dispatch(cmd))
        return out

    async def _watch(self, args: list[bytes]) -> Reply:
        if self.multi is not None:
            return Error("ERR WATCH inside MULTI is not allowed")
        tokens = await self.store.watch(args)
        if isinstance(tokens, Error):
            return tokens
        for key, token in tokens.items():
            self.watched.setdefault(key, token)  # the first WATCH of a key counts
        return OK

    async def _unwatch(self, args: list[bytes]) -> Reply:
        self.watched = {}
        return OK

    # the connection ---------------------------------------------------------
    async def _ping(self, args: list[bytes]) -> Reply:
        if len(args) > 1:
            return _wrong_args(b"PING")
        return args[0] if args else Simple("PONG")

    async def _echo(self, args: list[bytes]) -> Reply:
        return args[0]

    async def _quit(self, args: list[bytes]) -> Reply:
        self.quit = True
        return OK

    async def _select(self, args: list[bytes]) -> Reply:
        index = parse_int(args[0])
        if index is None:
            return NOT_INT
        return OK if index == 0 else Error("ERR DB index is out of range")

    async def _hello(self, args: list[bytes]) -> Reply:
        """``HELLO [protover [AUTH user pass] [SETNAME name]]``: switch to RESP2 or
        RESP3 (what redis-py 8 sends first) and describe the server."""
        proto = self.proto
        name = self.name
        if args:
            version = parse_int(args[0])
            if version is None:
                return Error("ERR Protocol version is not an integer or out of range")
            if version not in (2, 3):
                return Error("NOPROTO unsupported protocol version")
            proto = version
            i = 1
            while i < len(args):
                option = args[i].upper()
                if option == b"AUTH" and i + 2 < len(args):
                    i += 3  # no users here: any credentials are accepted, as with no ACL
                elif option == b"SETNAME" and i + 1 < len(args):
                    name = args[i + 1]
                    if not _valid_name(name):
                        return _BAD_NAME
                    i += 2
                else:
                    return Error(
                        f"ERR Syntax error in HELLO option '{args[i].decode(errors='replace')}'"
                    )
        self.proto, self.name = proto, name
        return Map(
            {
                b"server": b"redis",
                b"version": b"7.0.0",
                b"proto": proto,
                b"id": self.id,
                b"mode": b"standalone",
                b"role": b"master",
                b"modules": [],
            }
        )

    async def _client(self, args: list[bytes]) -> Reply:
        sub = args[0].upper()
        rest = args[1:]
        arity = {b"ID": 0, b"GETNAME": 0, b"SETNAME": 1, b"INFO": 0, b"LIST": -1}.get(sub)
        if arity is None:
            return Error(
                f"ERR unknown subcommand '{args[0].decode(errors='replace')}'. Try CLIENT HELP."
            )
        if (arity >= 0 and len(rest) != arity) or (arity < 0 and len(rest) < -arity - 1):
            return _wrong_args(b"client|" + sub.lower())
        if sub == b"ID":
            return self.id
        if sub == b"GETNAME":
            return self.name or None
        if sub == b"SETNAME":
            if not _valid_name(rest[0]):
                return _BAD_NAME
            self.name = rest[0]
            return OK
        if sub == b"INFO":
            return Verbatim(self._describe() + b"\n")
        if rest:
            if rest[0].upper() != b"ID" or len(rest) < 2:
                return SYNTAX
            wanted = set()
            for raw in rest[1:]:
                n = parse_int(raw)
                if n is None or n <= 0:
                    return Error(f"ERR Invalid client ID {raw.decode(errors='replace')!r}")
                wanted.add(n)
            chosen = [c for c in self.server.connections if c.id in wanted]
        else:
            chosen = list(self.server.connections)
        return Verbatim(b"".join(c._describe() + b"\n" for c in chosen))

    def _describe(self) -> bytes:
        age = int(time.time() - self.created)
        multi = -1 if self.multi is None else len(self.multi)
        return (
            b"id=%d addr=%s laddr=? fd=-1 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 "
            b"ssub=0 multi=%d qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 "
            b"tot-mem=0 events=r cmd=client|info user=default redir=-1 resp=%d"
            % (self.id, self.address.encode(), self.name, age, multi, self.proto)
        )

    # the server ---------------------------------------------------------------
    async def _flushall(self, args: list[bytes]) -> Reply:
        if len(args) > 1 or (args and args[0].upper() not in (b"ASYNC", b"SYNC")):
            return SYNTAX
        return await self.store.flushall()

    async def _dbsize(self, args: list[bytes]) -> Reply:
        return await self.store.dbsize()

    async def _keys(self, args: list[bytes]) -> Reply:
        return await self.store.keys(args[0])

    async def _scan(self, args: list[bytes]) -> Reply:
        cursor = _cursor(args[0])
        if cursor is None:
            return Error("ERR invalid cursor")
        count, pattern, kind = 10, None, None
        i = 1
        while i < len(args):
            opt = args[i].upper()
            if i + 1 >= len(args):
                return SYNTAX
            if opt == b"COUNT":
                n = parse_int(args[i + 1])
                if n is None:
                    return NOT_INT
                if n < 1:
                    return SYNTAX
                count = n
            elif opt == b"MATCH":
                pattern = args[i + 1]
            elif opt == b"TYPE":
                kind = args[i + 1].lower()
            else:
                return SYNTAX
            i += 2
        if kind is not None and kind != b"string":
            # Every key here is a string: a scan for another type finds none,
            # but still walks the key space (the cursor must reach 0).
            reply = await self.store.scan(cursor, count, pattern)
            if isinstance(reply, list):
                return [reply[0], []]
            return reply
        return await self.store.scan(cursor, count, pattern)

    async def _randomkey(self, args: list[bytes]) -> Reply:
        return await self.store.randomkey()

    async def _time(self, args: list[bytes]) -> Reply:
        now = time.time_ns() // 1000
        return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]

    async def _config(self, args: list[bytes]) -> Reply:
        sub = args[0].upper()
        if sub == b"GET":
            if len(args) < 2:
                return _wrong_args(b"config|get")
            found = Map()
            for pattern in args[1:]:
                for key, value in CONFIG.items():
                    if glob_match(pattern.lower(), key):
                        found[key] = value
            return found
        if sub == b"SET":
            if len(args) < 3 or len(args) % 2 == 0:
                return _wrong_args(b"config|set")
            return Error(
                f"ERR Unknown option or number of arguments for CONFIG SET - "
                f"'{args[1].decode(errors='replace')}' (this store has no settings to change)"
            )
        if sub == b"RESETSTAT":
            return OK
        if sub == b"REWRITE":
            return Error("ERR The server is running without a config file")
        return Error(
            f"ERR unknown subcommand '{args[0].decode(errors='replace')}'. Try CONFIG HELP."
        )

    async def _command(self, args: list[bytes]) -> Reply:
        names = sorted([*ARITIES, *_CONNECTION])
        if not args:
            return [_command_info(n) for n in names]
        sub = args[0].upper()
        if sub == b"COUNT":
            return len(names)
        if sub == b"LIST":
            return [n.lower() for n in names]
        if sub == b"INFO":
            return [_command_info(n.upper()) if n.upper() in names else None for n in args[1:]]
        if sub == b"DOCS":
            return Map()
        return Error(
            f"ERR unknown subcommand '{args[0].decode(errors='replace')}'. Try COMMAND HELP."
        )

    async def _info(self, args: list[bytes]) -> Reply:
        """``INFO [section ...]``: server, clients, keyspace, and ``radon``: where
        each shard's replicas run."""
        sections = {a.lower() for a in args} or {b"default"}
        every = bool(sections & {b"all", b"everything"})
        default = every or b"default" in sections
        lines: list[str] = []
        if default or b"server" in sections:
            lines += [
                "# Server",
                "redis_version:7.0.0",
                "redis_mode:standalone",
                f"process_id:{os.getpid()}",
                f"tcp_port:{self.server.port}",
                "",
            ]
        if default or b"clients" in sections:
            lines += ["# Clients", f"connected_clients:{len(self.server.connections)}", ""]
        if default or b"keyspace" in sections:
            size = await self.store.dbsize()
            lines += ["# Keyspace"]
            if isinstance(size, int) and size:
                lines.append(f"db0:keys={size},expires=0,avg_ttl=0")
            lines.append("")
        if every or b"radon" in sections:
            placement = await self.store.placement()
            lines += ["# Radon", f"shards:{len(placement)}"]
            lines += [f"shard{i}:{','.join(group)}" for i, group in enumerate(placement)]
            lines.append("")
        return Verbatim("\r\n".join(lines).encode())


_BAD_NAME = Error("ERR Client names cannot contain spaces, newlines or special characters.")


def _valid_name(name: bytes) -> bool:
    return all(0x21 <= c <= 0x7E for c in name)


def _wrong_args(name: bytes) -> Error:
    return Error(
        f"ERR wrong number of arguments for '{name.decode(errors='replace').lower()}' command"
    )


def _cursor(raw: bytes) -> int | None:
    # As strtoul in parseScanCursorOrReply: digits only, within 64 bits.
    if not raw.isdigit() or int(raw) >= 2**64:
        return None
    return int(raw)


def _command_info(name: bytes) -> Reply:
    arity = _CONNECTION[name][0] if name in _CONNECTION else ARITIES.get(name, -1)
    return [name.lower(), arity, [], 0, 0, 0]


_Run = Callable[[_Connection, list[bytes]], Awaitable[Reply]]
# Connection and server commands: name -> (arity as Redis counts it, handler).
_CONNECTION: dict[bytes, tuple[int, _Run]] = {
    b"PING": (-1, _Connection._ping),
    b"ECHO": (2, _Connection._echo),
    b"QUIT": (-1, _Connection._quit),
    b"SELECT": (2, _Connection._select),
    b"HELLO": (-1, _Connection._hello),
    b"CLIENT": (-2, _Connection._client),
    b"MULTI": (1, _Connection._multi),
    b"EXEC": (1, _Connection._exec),
    b"DISCARD": (1, _Connection._discard),
    b"WATCH": (-2, _Connection._watch),
    b"UNWATCH": (1, _Connection._unwatch),
    b"FLUSHALL": (-1, _Connection._flushall),
    b"FLUSHDB": (-1, _Connection._flushall),
    b"DBSIZE": (1, _Connection._dbsize),
    b"KEYS": (2, _Connection._keys),
    b"SCAN": (-2, _Connection._scan),
    b"RANDOMKEY": (1, _Connection._randomkey),
    b"TIME": (1, _Connection._time),
    b"CONFIG": (-2, _Connection._config),
    b"COMMAND": (-1, _Connection._command),
    b"INFO": (-1, _Connection._info),
}
# Run at once even inside MULTI (as Redis does), not queued.
_NOT_QUEUED = frozenset({b"EXEC", b"DISCARD", b"MULTI", b"WATCH", b"QUIT"})
# Connection commands that may be queued inside MULTI (they touch no key).
_IN_MULTI = frozenset({b"PING", b"ECHO", b"TIME"})


_LATER = Later(None)


def _internal_error(command: list[bytes], exc: Exception) -> Error:
    _log.error("kv.command_failed", command=command[:1], error=repr(exc))
    return Error(f"ERR internal error: {exc!r}")


class _Server:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.connections: set[_Connection] = set()
        self.port = 0

    async def handle(self, connection: Connection, conn: _Connection) -> None:
        """Serve one client: what its responder (if any) left, and the rest."""
        self.connections.add(conn)
        try:
            while not conn.quit:
                if not conn.backlog and conn.error is None:
                    data = await connection.receive()
                    if data:
                        conn.take(data)
                    elif not conn.backlog and conn.error is None:
                        return  # the client closed
                commands, wid = conn.backlog, conn.backlog_wid
                conn.backlog, conn.backlog_wid = [], None
                out, conn.out = conn.out, bytearray()
                for command in commands:
                    try:
                        reply = await conn.dispatch(command, wid)
                    except Exception as exc:  # a bug must not take the server down
                        reply = _internal_error(command, exc)
                    wid = None
                    if reply is NULL_ARRAY:
                        out += b"_\r\n" if conn.proto == 3 else b"*-1\r\n"
                    else:
                        encode(reply, out, conn.proto)
                    if conn.quit:
                        break
                if conn.error is not None and not conn.quit:
                    encode(Error(f"ERR {conn.error}"), out)
                    await connection.send_all(out)
                    return
                if out:
                    await connection.send_all(out)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        finally:
            self.connections.discard(conn)
            with trio.CancelScope(shield=True):
                await connection.aclose()


def _address(stream: trio.SocketStream) -> str:
    """The client's ``host:port`` (``CLIENT LIST``), or ``?``."""
    try:
        peer = stream.socket.getpeername()
        return f"{peer[0]}:{peer[1]}"
    except (OSError, IndexError, TypeError):
        return "?"


async def serve(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 6380,
    *,
    polled: bool = EPOLL,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``store`` over RESP on ``host:port`` until cancelled.

    With ``port=0`` the OS picks a port; ``task_status.started`` reports it.
    ``polled`` (the default where epoll exists) reads every client through one
    epoll set (``_poller``); False serves each through trio's own stream.
    """
    server = _Server(store)
    listeners = await trio.open_tcp_listeners(port, host=host)
    server.port = listeners[0].socket.getsockname()[1]
    _log.info("kv.listening", host=host, port=server.port, polled=polled)
    async with trio.open_nursery() as nursery:
        if polled:
            poller = Poller()
            nursery.start_soon(poller.run)

            async def handle(stream: trio.SocketStream) -> None:
                conn = _Connection(server, _address(stream))
                await server.handle(poller.watch(stream, conn.respond), conn)

        else:

            async def handle(stream: trio.SocketStream) -> None:
                conn = _Connection(server, _address(stream))
                await server.handle(StreamConnection(stream), conn)

        task_status.started(server.port)
        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)
