"""The ``radon`` command line (``radon host ...``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radon`` console script."""
    parser = argparse.ArgumentParser(prog="radon", description="radon-actors command line")
    sub = parser.add_subparsers(dest="command", required=True)
    from .placement import _cli as placement_cli

    host = sub.add_parser("host", help="run a host that systems join with connect_host")
    placement_cli.add_parser(host)
    args = parser.parse_args(argv)
    if args.command == "host":
        return placement_cli.run(args)
    return 2  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
