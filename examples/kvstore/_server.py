"""The RESP frontend: a trio TCP server that speaks enough Redis for its clients
(RESP2, and RESP3 after ``HELLO 3``)."""

from __future__ import annotations

import itertools
import os
from typing import Any

import structlog
import trio

from ._commands import check_arity, is_data_command
from ._resp import Error, Map, ProtocolError, Reply, RespParser, Simple, Verbatim, encode, parse_int
from ._store import Store

__all__ = ["serve"]

_log = structlog.get_logger("kvstore")

QUEUED = Simple("QUEUED")
OK = Simple("OK")


_ids = itertools.count(1)


class _Connection:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.id = next(_ids)
        self.proto = 2  # RESP2 until the client says HELLO 3
        self.multi: list[list[bytes]] | None = None
        self.multi_failed = False
        self.quit = False

    async def dispatch(self, command: list[bytes]) -> Reply:
        name = command[0].upper()
        args = command[1:]
        if self.multi is not None and name not in (b"EXEC", b"DISCARD", b"MULTI", b"QUIT"):
            return self._queue(name, command)
        if is_data_command(name):  # the common case first
            return await self.store.execute(command)
        if name == b"PING":
            if len(args) > 1:
                return Error("ERR wrong number of arguments for 'ping' command")
            return args[0] if args else Simple("PONG")
        if name == b"ECHO":
            if len(args) != 1:
                return Error("ERR wrong number of arguments for 'echo' command")
            return args[0]
        if name == b"QUIT":
            self.quit = True
            return OK
        if name == b"MULTI":
            if self.multi is not None:
                return Error("ERR MULTI calls can not be nested")
            self.multi, self.multi_failed = [], False
            return OK
        if name == b"DISCARD":
            if self.multi is None:
                return Error("ERR DISCARD without MULTI")
            self.multi = None
            return OK
        if name == b"EXEC":
            if self.multi is None:
                return Error("ERR EXEC without MULTI")
            queued, failed = self.multi, self.multi_failed
            self.multi = None
            if failed:
                return Error("EXECABORT Transaction discarded because of previous errors.")
            return await self.store.transaction(queued)
        if name == b"MSET":
            return await self.store.mset(args)
        if name == b"MGET":
            return await self.store.mget(args)
        if name in (b"FLUSHALL", b"FLUSHDB"):
            return await self.store.flushall()
        if name == b"INFO":
            return await self._info(args)
        if name == b"SELECT":
            return OK if args == [b"0"] else Error("ERR DB index is out of range")
        if name in (b"CONFIG", b"COMMAND"):
            return []  # clients probe these at start-up; there is nothing to configure
        if name == b"CLIENT":
            return OK
        if name == b"HELLO":
            return self._hello(args)
        return await self.store.execute(command)

    def _hello(self, args: list[bytes]) -> Reply:
        """``HELLO [protover [AUTH user pass] [SETNAME name]]``: switch to RESP2 or
        RESP3 (what redis-py 8 sends first) and describe the server."""
        proto = self.proto
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
                    i += 2
                else:
                    return Error(
                        f"ERR Syntax error in HELLO option '{args[i].decode(errors='replace')}'"
                    )
        self.proto = proto
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

    async def _info(self, args: list[bytes]) -> Reply:
        """``INFO [section]``: ``server``, and ``radon``, where each replica runs."""
        if len(args) > 1:
            return Error("ERR wrong number of arguments for 'info' command")
        section = args[0].lower() if args else b"all"
        lines: list[str] = []
        if section in (b"all", b"default", b"everything", b"server"):
            lines += ["# Server", "redis_version:7.0.0", f"process_id:{os.getpid()}", ""]
        if section in (b"all", b"everything", b"radon"):
            placement = await self.store.placement()
            lines += ["# Radon", f"shards:{len(placement)}"]
            lines += [f"shard{i}:{','.join(group)}" for i, group in enumerate(placement)]
            lines.append("")
        return Verbatim("\r\n".join(lines).encode())

    def _queue(self, name: bytes, command: list[bytes]) -> Reply:
        assert self.multi is not None
        if not is_data_command(name):
            self.multi_failed = True
            return Error(
                f"ERR unknown command '{command[0].decode(errors='replace')}' inside MULTI "
                "(only data commands can be part of a transaction)"
            )
        error = check_arity(name, len(command))
        if error is not None:
            self.multi_failed = True
            return error
        self.multi.append(command)
        return QUEUED


async def _handle(stream: trio.SocketStream, store: Store) -> None:
    conn = _Connection(store)
    parser = RespParser()
    try:
        while not conn.quit:
            data = await stream.receive_some(65536)
            if not data:
                return
            out = bytearray()
            try:
                parser.feed(data)
                commands = parser.commands()
            except ProtocolError as exc:
                encode(Error(f"ERR {exc}"), out)
                await stream.send_all(out)
                return
            for command in commands:
                try:
                    reply = await conn.dispatch(command)
                except Exception as exc:  # a bug must not take the server down
                    _log.error("kv.command_failed", command=command[:1], error=repr(exc))
                    reply = Error(f"ERR internal error: {exc!r}")
                encode(reply, out, conn.proto)
                if conn.quit:
                    break
            if out:
                await stream.send_all(out)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


async def serve(
    store: Store,
    host: str = "127.0.0.1",
    port: int = 6380,
    *,
    task_status: Any = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``store`` over RESP2 on ``host:port`` until cancelled.

    With ``port=0`` the OS picks a port; ``task_status.started`` reports it.
    """

    async def handler(stream: trio.SocketStream) -> None:
        await _handle(stream, store)

    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    _log.info("kv.listening", host=host, port=bound)
    task_status.started(bound)
    await trio.serve_listeners(handler, listeners)
