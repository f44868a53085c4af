"""The floor of a RESP server on trio: ``python bench/resp_floor.py PORT [--polled]``.

It reads requests with the kvstore's own parser and answers each at once
(``+OK`` to a SET, a null to anything else), with no store behind it. Under
``redis-benchmark`` it measures what one trio process can serve on this machine
before any work is done; ``bench/kvstore.py`` reports every deployment's ratio
to it beside the ratio to redis-server.

By default each client is read and written through trio's ``SocketStream`` in
a task of its own. With ``--polled`` the clients are read through one epoll set
(``examples/kvstore/_poller.py``) and answered by the poll loop itself while
the connection's task is idle (a *responder*), as the store's frontend does by
default: the floor of the store as it is served.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.kvstore._poller import Connection, Poller, StreamConnection
from examples.kvstore._resp import RespParser, Simple, encode

OK = Simple("OK")


def reply(commands: list[list[bytes]]) -> bytearray:
    out = bytearray()
    for command in commands:
        encode(OK if command[0].upper() == b"SET" else None, out)
    return out


async def answer(connection: Connection, parser: RespParser) -> None:
    try:
        while data := await connection.receive():
            await connection.send_all(reply(parser.parse(data)))
    except trio.BrokenResourceError:
        pass
    finally:
        await connection.aclose()


async def serve(port: int, polled: bool) -> None:
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        if polled:
            poller = Poller()
            nursery.start_soon(poller.run)

            async def handle(stream: trio.SocketStream) -> None:
                # The responder answers whatever it reads (a partial command
                # waits in the parser), so the task only sees the end.
                parser = RespParser()
                connection = poller.watch(stream, lambda data: reply(parser.parse(data)))
                await answer(connection, parser)

        else:

            async def handle(stream: trio.SocketStream) -> None:
                await answer(StreamConnection(stream), RespParser())

        await trio.serve_listeners(handle, listeners, handler_nursery=nursery)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--polled", action="store_true", help="read and answer clients in one epoll loop"
    )
    args = parser.parse_args()
    trio.run(functools.partial(serve, args.port, args.polled))


if __name__ == "__main__":
    main()
