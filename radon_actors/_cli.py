"""The ``radon`` command line.

Subcommands register themselves in ``_COMMANDS`` through :func:`command`: each
gets an argparse sub-parser and a function taking the parsed arguments and
returning an exit status. Only this module may print.

    radon build MODULE [MODULE ...]   prebuild the sandbox components of modules
    radon cache [--clear]             list (or delete) the cached components
    radon host --listen H:P --secret-file F   run a host that systems join
    radon --version                   print the installed version
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Handler]] = {}


def command(
    name: str, help: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Handler], Handler]:
    """Register a subcommand: ``configure`` adds its arguments, the function runs it."""

    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = (help, configure, fn)
        return fn

    return register


def _configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "modules",
        nargs="+",
        metavar="MODULE",
        help="dotted name of a module that defines sandboxed atoms (importable from here)",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to put in front of sys.path before importing (repeatable)",
    )


@command("build", "build and cache the WebAssembly components of atom modules", _configure_build)
def _build(args: argparse.Namespace) -> int:
    from .sandbox import _engine
    from .sandbox._errors import SandboxError

    sys.path[:0] = args.path
    if "" not in sys.path:
        sys.path.insert(0, "")
    status = 0
    for module in args.modules:
        started = time.perf_counter()
        try:
            found = _engine.load(module, progress=lambda message: print(f"  {message}"))
        except SandboxError as exc:
            print(f"radon build: {module}: {exc}", file=sys.stderr)
            status = 1
            continue
        elapsed = time.perf_counter() - started
        print(f"{module}: ready ({found.key}) in {elapsed:.1f} s")
    return status


def _configure_cache(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clear", action="store_true", help="delete every cached component")


@command("cache", "list the cached sandbox components, or delete them", _configure_cache)
def _cache(args: argparse.Namespace) -> int:
    import shutil

    from .sandbox import _build

    entries = _build.cache_entries()
    print(f"{_build.cache_root()}: {_count(len(entries), 'component')}")
    for directory, module, size in entries:
        print(f"  {directory.name}  {size / 2**20:7.1f} MiB  {module}")
        if args.clear:
            shutil.rmtree(directory, ignore_errors=True)
    if args.clear and entries:
        print(f"deleted {_count(len(entries), 'component')}")
    return 0


def _configure_host(parser: argparse.ArgumentParser) -> None:
    from .placement import _cli as placement_cli

    placement_cli.add_parser(parser)


@command("host", "run a host that systems join with System.connect_host", _configure_host)
def _host(args: argparse.Namespace) -> int:
    from ._open import open_system
    from .placement import _cli as placement_cli

    return placement_cli.run(args, open_system)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="radon", description="radon-actors command line")
    parser.add_argument("--version", action="version", version=f"radon-actors {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help, configure, _fn) in _COMMANDS.items():
        configure(subparsers.add_parser(name, help=help, description=help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``radon`` console script."""
    args = _parser().parse_args(argv)
    _help, _configure, fn = _COMMANDS[args.command]
    return fn(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
