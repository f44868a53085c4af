"""The floor of a RESP server on trio: ``python bench/resp_floor.py PORT``.

It reads requests with the kvstore's own parser and answers each at once
(``+OK`` to a SET, a null to anything else) through the same trio
``SocketStream`` the store's frontend uses, with no store behind it. Under
``redis-benchmark`` it measures what one trio process can serve on this machine
before any work is done: ``bench/kvstore.py`` reports every deployment's ratio
to it beside the ratio to redis-server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.kvstore._resp import RespParser, Simple, encode

OK = Simple("OK")


async def handle(stream: trio.SocketStream) -> None:
    parser = RespParser()
    async with stream:
        while data := await stream.receive_some(65536):
            parser.feed(data)
            out = bytearray()
            for command in parser.commands():
                encode(OK if command[0].upper() == b"SET" else None, out)
            await stream.send_all(out)


def main() -> None:
    trio.run(trio.serve_tcp, handle, int(sys.argv[1]))


if __name__ == "__main__":
    main()
