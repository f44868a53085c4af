"""The ``radon`` command line.

Subcommands register themselves in ``_COMMANDS`` through :func:`command`: each
gets an argparse sub-parser and a function taking the parsed arguments and
returning an exit status. Only this module may print.

    radon build MODULE [MODULE ...]   prebuild the sandbox components of modules
                                      (--out DIR: also write them as .wasm files)
    radon build --js FILE.js          build a JavaScript atom module's component
    radon cache [--clear]             list (or delete) the cached components
    radon host --listen H:P --secret-file F   run a host that systems join
    radon member --cluster N --secret-file F --state-store URL   run a cluster member
    radon bench MODULE:CLASS HANDLER [ARG ...]   benchmark one of your handlers
    radon bench --suite               the latency suite (echo atoms, floors, peers)
    radon --version                   print the installed version
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
        nargs="*",
        metavar="MODULE",
        help="dotted name of a module that defines sandboxed atoms (importable from here)",
    )
    parser.add_argument(
        "--js",
        action="append",
        default=[],
        metavar="FILE",
        help="a JavaScript module whose exported Atom classes to build (repeatable; needs "
        "Node.js and @bytecodealliance/componentize-js, see docs/polyglot.md)",
    )
    parser.add_argument(
        "--js-types",
        metavar="DIR",
        help="write radon-actors.d.ts, the type declarations of the module JavaScript atoms "
        "import, to DIR (for editors and tsc --checkJs; see docs/polyglot.md)",
    )
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to put in front of sys.path before importing (repeatable)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write each component to DIR/MODULE.wasm, and print its content hash "
        "(what System.spawn_component takes: the file, or the hash on a machine that "
        "has it cached)",
    )


@command("build", "build and cache the WebAssembly components of atom modules", _configure_build)
def _build(args: argparse.Namespace) -> int:
    from .sandbox import _engine
    from .sandbox._errors import SandboxError

    if not args.modules and not args.js and args.js_types is None:
        print("radon build: name a MODULE or a --js FILE to build", file=sys.stderr)
        return 2
    sys.path[:0] = args.path
    if "" not in sys.path:
        sys.path.insert(0, "")
    status = 0
    if args.js_types is not None:
        status = _write_js_types(args.js_types)
    for file in args.js:
        status = max(status, _build_js(file, args.out))
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
        if args.out is not None:
            status = max(status, _write_component(found, module, args.out))
    return status


def _write_js_types(out: str) -> int:
    """Write the JavaScript runtime's type declarations to ``out``; 1 on failure."""
    from .sandbox._jsbuild import JS_TYPES

    target = Path(out) / JS_TYPES.name
    if not _copy(JS_TYPES, target, "radon build"):
        return 1
    print(f"wrote {target}")
    print(
        '  map the module to it in jsconfig.json or tsconfig.json: "paths": '
        f'{{"radon-actors": ["{target.as_posix()}"]}} (docs/polyglot.md)'
    )
    return 0


def _build_js(file: str, out: str | None) -> int:
    """Build one JavaScript atom module; 1 on failure."""
    from .sandbox._errors import SandboxError
    from .sandbox._jsbuild import build_js

    started = time.perf_counter()
    try:
        built = build_js(file, progress=lambda message: print(f"  {message}", flush=True))
    except SandboxError as exc:
        print(f"radon build: {file}: {exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    print(f"{file}: ready (sha256 {built.hash}) in {elapsed:.1f} s")
    print(f'  spawn it with system.spawn_component({str(built.wasm)!r}, "ClassName", ...)')
    if out is None:
        return 0
    return _copy_component(built.wasm, built.module, out, file)


def _write_component(found: Any, module: str, out: str) -> int:
    """Copy ``found``'s component to ``out/module.wasm``; 1 on failure."""
    from .sandbox import _build

    return _copy_component(_build.cache_root() / found.key / "component.wasm", module, out, module)


def _copy_component(source: Any, module: str, out: str, label: str) -> int:
    """Copy the cached component ``source`` to ``out/module.wasm`` and print its
    content hash; 1 on failure (reported under ``label``)."""
    import hashlib

    target = Path(out) / f"{module}.wasm"
    if not _copy(source, target, f"radon build: {label}"):
        return 1
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"  wrote {target} (sha256 {digest})")
    return 0


def _copy(source: Path, target: Path, label: str) -> bool:
    """Copy ``source`` to ``target``, making its directory; False, said on
    stderr under ``label``, if it cannot be written."""
    import shutil

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    except OSError as exc:
        print(f"{label}: cannot write {target}: {exc}", file=sys.stderr)
        return False
    return True


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
    parser.add_argument(
        "--state-store",
        default=None,
        metavar="URL",
        help="where durable atoms on this host keep their state: sqlite:///path or "
        "redis://host:port/db (default: RADON_STATE, else ./radon-state.sqlite3)",
    )


@command("host", "run a host that systems join with System.connect_host", _configure_host)
def _host(args: argparse.Namespace) -> int:
    from functools import partial

    from ._open import open_system
    from .durable import store_from_url
    from .placement import _cli as placement_cli

    if args.state_store is None:
        return placement_cli.run(args, open_system)
    try:
        store = store_from_url(args.state_store)
    except ValueError as exc:
        print(f"radon host: {exc}", file=sys.stderr)
        return 2
    return placement_cli.run(args, partial(open_system, state_store=store))


def _configure_member(parser: argparse.ArgumentParser) -> None:
    from .cluster import LEASE
    from .placement import _cli as placement_cli

    parser.add_argument("--cluster", required=True, metavar="NAME", help="the cluster's name")
    parser.add_argument(
        "--secret-file",
        required=True,
        help="file holding the cluster's secret (at least 16 bytes), shared by every member",
    )
    parser.add_argument(
        "--state-store",
        required=True,
        metavar="URL",
        help="the store every member shares: redis://host:port/db, or sqlite:///path for "
        "members on one machine",
    )
    parser.add_argument(
        "--listen",
        default="127.0.0.1:0",
        help="where to listen for the other members, host:port (default 127.0.0.1:0, any "
        "free port)",
    )
    parser.add_argument(
        "--advertise",
        default=None,
        metavar="HOST[:PORT]",
        help="the address the other members reach this one at (default: the --listen "
        "address; needed when listening on 0.0.0.0)",
    )
    parser.add_argument("--name", default=None, help="this member's name in logs and errors")
    parser.add_argument(
        "--lease",
        type=float,
        default=LEASE,
        metavar="SECONDS",
        help=f"how long a membership lasts unrenewed, so how long the keys of a member that "
        f"died wait before another member takes them (default {LEASE:g}; give every member "
        "the same)",
    )
    placement_cli.add_tls_options(parser, "members")
    placement_cli.add_process_options(
        parser,
        insecure="allow listening on a non-loopback address without TLS (frames after the "
        "handshake are then not protected; logged as a warning)",
    )


@command("member", "run a member of a cluster, serving its on-demand atoms", _configure_member)
def _member(args: argparse.Namespace) -> int:
    import structlog
    import trio

    from ._open import open_system
    from .cluster import Cluster
    from .durable import store_from_url
    from .placement import _cli as placement_cli
    from .placement import advertised, read_secret

    try:
        secret = read_secret(args.secret_file)
    except (OSError, ValueError) as exc:
        print(f"radon member: cannot read the secret file: {exc}", file=sys.stderr)
        return 2
    try:
        tls, tls_client = placement_cli.tls_contexts(args)
        cluster = Cluster(
            args.cluster,
            secret,
            listen=args.listen,
            advertise=args.advertise,
            member=args.name,
            lease=args.lease,
            tls=tls,
            tls_client=tls_client,
        )
        if args.advertise is not None:
            advertised(args.advertise, 0)
        store = store_from_url(args.state_store)
    except ValueError as exc:
        print(f"radon member: {exc}", file=sys.stderr)
        return 2
    host = args.listen.rpartition(":")[0]
    exposed = not placement_cli.is_loopback(host) and tls is None
    if exposed and not args.insecure:
        print(
            f"radon member: refusing to listen on {host} without TLS: after the handshake, "
            "frames are not authenticated, so anyone on the network path could inject "
            "messages; give --tls-cert and --tls-key, listen on a loopback address, or pass "
            "--insecure to accept the risk",
            file=sys.stderr,
        )
        return 2
    placement_cli.set_up_process(args)
    if exposed:
        structlog.get_logger("radon_actors.cluster").warning(
            "cluster.insecure_listen",
            address=args.listen,
            risk="frames after the handshake are not authenticated (--insecure)",
        )

    async def serve(stop: trio.Event) -> None:
        # Until SIGINT or SIGTERM; then the member leaves (its keys go to the
        # others at once).
        async with open_system(state_store=store, cluster=cluster) as system:
            print(f"READY {getattr(system.active_placement, 'address', '?')}", flush=True)
            await stop.wait()

    try:
        trio.run(placement_cli.until_signalled, serve)
    except OSError as exc:  # the address is taken, say
        print(f"radon member: {exc}", file=sys.stderr)
        return 1
    return 0


def _configure_bench(parser: argparse.ArgumentParser) -> None:
    from .bench import DEPLOYMENTS

    parser.description = (
        "Measure one handler of your atom (ask round trip: percentiles and asks/s; "
        "tell throughput) in each deployment and on the raw trio floor, in one run; "
        "or, with --suite, the shipped latency suite."
    )
    parser.add_argument(
        "target", nargs="?", metavar="MODULE:CLASS", help="the atom class, e.g. myapp.atoms:Counter"
    )
    parser.add_argument("handler", nargs="?", metavar="HANDLER", help="the handler's name")
    parser.add_argument(
        "args",
        nargs="*",
        metavar="ARG",
        help="the handler's arguments: Python literals (5, 'text', [1, 2]); "
        "anything else is taken as a string",
    )
    parser.add_argument(
        "--kw", action="append", default=[], metavar="NAME=VALUE", help="a keyword argument"
    )
    parser.add_argument(
        "--init", action="append", default=[], metavar="VALUE", help="a constructor argument"
    )
    parser.add_argument(
        "--init-kw",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a constructor keyword argument",
    )
    parser.add_argument(
        "--deploy",
        default="native",
        metavar="LIST",
        help=f"comma-separated deployments: {', '.join(DEPLOYMENTS)}, or all (default: native)",
    )
    parser.add_argument("--iterations", type=int, help="timed asks per run (default 2000)")
    parser.add_argument("--warmup", type=int, help="untimed asks first (default: a tenth)")
    parser.add_argument("--repeat", type=int, help="runs per deployment, medians (default 3)")
    parser.add_argument("--messages", type=int, help="tells per run, 0: none (default 10000)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it runs")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--path",
        action="append",
        default=[],
        metavar="DIR",
        help="directory to put in front of sys.path before importing (repeatable)",
    )
    parser.add_argument(
        "--suite", action="store_true", help="run the latency suite instead of one handler"
    )
    parser.add_argument("--no-peers", action="store_true", help="--suite: skip the peer frameworks")


def _literal(text: str) -> object:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _named(items: list[str], option: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise _UsageError(f"{option} takes NAME=VALUE, not {item!r}")
        found[name] = _literal(value)
    return found


class _UsageError(Exception):
    pass


@command("bench", "benchmark a handler of your atom, or run the latency suite", _configure_bench)
def _bench(args: argparse.Namespace) -> int:
    import json

    sys.path[:0] = args.path
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        if args.suite:
            return _bench_suite(args)
        report = _bench_target(args)
    except _UsageError as exc:
        print(f"radon bench: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.as_dict(), f, indent=1)
    for deployment, reason in report.failures:
        print(f"radon bench: {deployment}: {reason}", file=sys.stderr)
    return 0 if report.ok else 1


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _bench_target(args: argparse.Namespace) -> Any:
    import importlib

    from . import Atom, RadonError
    from .bench import DEPLOYMENTS, run

    if args.target is None or args.handler is None:
        raise _UsageError("give MODULE:CLASS and HANDLER (or --suite for the latency suite)")
    module_name, sep, class_name = args.target.partition(":")
    if not sep:
        module_name, _, class_name = args.target.rpartition(".")
    if not module_name or not class_name:
        raise _UsageError(
            f"the target is MODULE:CLASS (e.g. myapp.atoms:Counter), not {args.target!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _UsageError(
            f"cannot import {module_name!r}: {exc} (run from its directory, or add --path DIR)"
        ) from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Atom)):
        raise _UsageError(f"{module_name} has no Atom subclass {class_name!r}")
    deploy = [d.strip() for d in args.deploy.split(",") if d.strip()]
    if deploy == ["all"]:
        deploy = list(DEPLOYMENTS)
    sizes = {"iterations": 50, "repeat": 1, "messages": 200} if args.smoke else {}
    for option in ("iterations", "warmup", "repeat", "messages"):
        value = getattr(args, option)
        if value is not None:
            sizes[option] = value
    try:
        return run(
            cls,
            args.handler,
            args=[_literal(a) for a in args.args],
            kwargs=_named(args.kw, "--kw"),
            init_args=[_literal(a) for a in args.init],
            init_kwargs=_named(args.init_kw, "--init-kw"),
            deployments=deploy,
            progress=_progress,
            **sizes,
        )
    except (RadonError, TypeError, ValueError) as exc:
        raise _UsageError(str(exc)) from None


def _bench_suite(args: argparse.Namespace) -> int:
    import json

    from .bench import _suite

    if args.target is not None:
        raise _UsageError("--suite runs the shipped echo atoms; it takes no MODULE:CLASS")
    n, m, repeat = _suite.smoke_sizes() if args.smoke else (20_000, 200_000, 5)
    n = args.iterations or n
    m = args.messages or m
    repeat = args.repeat or repeat
    result = _suite.run_suite(n, m, repeat, peers=[] if args.no_peers else None, progress=_progress)
    print(_suite.format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


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
