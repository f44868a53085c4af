"""Entry point of a worker host process started by ``System.start_host``.

Reads its configuration (including the cluster secret) as one JSON line on
stdin, prints ``READY host:port`` on stdout once it listens, logs to stderr, and
exits when stdin closes or the system that started it says ``shutdown``.
"""

from __future__ import annotations

import json
import ssl
import sys
from functools import partial

import structlog
import trio

from ._open import open_system
from .durable import set_directory, store_from_url
from .placement import serve_host


def main() -> None:
    """Serve one worker host, configured by a JSON line on stdin."""
    config = json.loads(sys.stdin.readline())
    level = config.get("log_level")
    if level is not None:
        # The level of the process that started this host; unset, it stays quiet.
        structlog.configure(
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            wrapper_class=structlog.make_filtering_bound_logger(level),
        )

    def ready(address: str) -> None:
        sys.stdout.write(f"READY {address}\n")
        sys.stdout.flush()

    set_directory(config.get("directory"))
    ca = config.get("tls_ca")
    # The TLS hosts this worker dials (other hosts of its system) are checked
    # against the CAs its parent uses for them.
    ssl_client = None if not ca else ssl.create_default_context(cadata=ca)
    url = config.get("state_store")
    opener = open_system if url is None else partial(open_system, state_store=store_from_url(url))
    trio.run(
        lambda: serve_host(
            opener,
            "127.0.0.1",
            0,
            bytes.fromhex(config["secret"]),
            config["name"],
            ready=ready,
            watch_stdin=True,
            heartbeat_interval=config["heartbeat_interval"],
            heartbeat_timeout=config["heartbeat_timeout"],
            ssl_client=ssl_client,
        )
    )


if __name__ == "__main__":
    main()
