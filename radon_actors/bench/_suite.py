"""Message latency and throughput of radon-actors, its raw floors and its peers.

Measured in one run, on this machine, for each configuration: the ask round trip
(p50/p90/p99 of per-message times, in microseconds) and the tell throughput
(messages per second over a stream), each also as a ratio to the raw trio
memory-channel baseline of the same run.

In this process, on trio (interleaved, so machine noise hits them alike):

* ``raw-channel``: raw trio memory-channel ping-pong / one-way stream (the floor
  for a request/reply between two trio tasks, and the baseline of every ratio);
* ``raw-tcp``: raw trio loopback TCP ping-pong of 32-byte frames / one-way stream;
* ``raw-tcp-process``: the same ping-pong with the echo server in another
  process (the floor for any cross-process request/reply: both processes wake
  on every round trip), the like-for-like baseline of ``cross-process``;
* ``native``: radon-actors in-process ``ask`` of a plain-``def`` handler (answered
  inline by an idle atom) and ``await ref.send`` throughput into a bounded mailbox;
* ``native-async``: ``ask`` of an ``async def`` handler without ``await`` (also
  answered inline: it cannot suspend);
* ``native-queued``: ``ask`` of an ``async def`` handler that awaits (a queued
  turn on the atom's task);
* ``cross-process``: ``ask`` of a plain-``def`` handler on an atom on a worker
  host started with ``system.start_host`` (loopback TCP, authenticated
  transport; compare it with ``raw-tcp-process``) and ``await ref.send`` throughput to
  it (batched frames). Each run starts its own worker process and stops it
  (killed if it does not exit), whatever happens;
* ``sandboxed``: the same ``def`` echo handler in a WebAssembly sandbox
  (``spawn(..., sandbox=True)``, answered inline by an idle atom), from
  ``radon_bench_echo`` (shipped in ``radon_actors/bench/_guest_atoms``);
* ``sandboxed-queued``: an ``async def`` echo handler with an ``await`` in the
  sandbox (a queued turn; one without an await runs inline, like ``def``). The
  first run on a machine builds and compiles the sandbox component (seconds;
  cached on disk after, see docs/sandbox.md); ``bench/sandbox.py`` splits the
  sandboxed round trip into its parts.

Each in its own process (``radon_actors.bench._peers``; at the end, also on failure or timeout,
its process group and every process carrying its environment tag are killed):
``asyncio`` (asyncio.Queue ping-pong, its own event
loop), ``pykka``, ``thespian-simple``, ``thespian-tcp``, ``xoscar-local``,
``xoscar-remote``. A peer that is not installed is skipped with a note.

To add a configuration (sandboxed, cross-process...), append a ``Config`` to
``IN_PROCESS``. Each measurement is repeated ``--repeat`` times and the median of
the runs is reported.

    radon bench --suite                # full run (python bench/latency.py: the same)
    radon bench --suite --smoke        # tiny run that only checks it all works
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio
import trio.testing

from .. import Atom, Ref, handler, open_system
from ..placement._node import get_node
from ._process import first_line
from ._timing import (
    LostMessages,
    median_of,
    median_run,
    now_ns,
    percentiles,
    quantiles_us,
    raw_channel_rtt,
    raw_channel_throughput,
    round_trips,
)

BASELINE = "raw-channel"


class Echo(Atom):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    async def aping(self, x: int) -> int:  # async, but no await: runs inline too
        return x

    @handler
    async def qping(self, x: int) -> int:
        # Has an await, so it may suspend: always a queued turn on the atom's task.
        await trio.lowlevel.checkpoint_if_cancelled()
        return x

    @handler
    def hit(self) -> None:
        self.count += 1

    @handler
    def total(self) -> int:
        return self.count


# -- raw trio loopback TCP ------------------------------------------------------
FRAME = 32


async def _recv_exactly(stream: trio.SocketStream, size: int) -> bytes:
    buf = bytearray()
    while len(buf) < size:
        chunk = await stream.receive_some(size - len(buf))
        if not chunk:
            raise LostMessages("connection closed early")
        buf += chunk
    return bytes(buf)


async def _tcp_pair(
    nursery: trio.Nursery, serve: Callable[[trio.SocketStream], Awaitable[None]]
) -> trio.SocketStream:
    listeners = await nursery.start(partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    return await trio.open_tcp_stream("127.0.0.1", port)


async def raw_tcp_rtt(n: int, warmup: int) -> list[int]:
    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            while True:
                try:
                    frame = await _recv_exactly(stream, FRAME)
                except LostMessages:
                    return
                await stream.send_all(frame)

    async with trio.open_nursery() as nursery:
        client = await _tcp_pair(nursery, echo)
        async with client:

            async def op(i: int) -> int:
                await client.send_all(i.to_bytes(FRAME, "little"))
                return int.from_bytes(await _recv_exactly(client, FRAME), "little")

            samples = await round_trips(op, n, warmup)
        nursery.cancel_scope.cancel()
    return samples


async def raw_tcp_throughput(n: int) -> float:
    async def sink(stream: trio.SocketStream) -> None:
        async with stream:
            await _recv_exactly(stream, n * FRAME)
            await stream.send_all(b"!")

    async with trio.open_nursery() as nursery:
        client = await _tcp_pair(nursery, sink)
        async with client:
            frame = b"x" * FRAME
            t0 = now_ns()
            for _ in range(n):
                await client.send_all(frame)
            if await _recv_exactly(client, 1) != b"!":
                raise LostMessages("no acknowledgement")
            elapsed = now_ns() - t0
        nursery.cancel_scope.cancel()
    return n / (elapsed / 1e9)


# A byte echo server for ``raw-tcp-process``: prints its port, runs until stdin closes.
_ECHO_PROCESS = r"""
import functools, sys, trio
async def echo(stream):
    async with stream:
        while data := await stream.receive_some(65536):
            await stream.send_all(data)
async def main():
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        print(listeners[0].socket.getsockname()[1], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()
trio.run(main)
"""


async def raw_tcp_process_rtt(n: int, warmup: int) -> list[int]:
    """The raw ping-pong with its echo in another process: the floor of a
    cross-process request/reply (two processes to wake per round trip)."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", _ECHO_PROCESS], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        line = await first_line(proc, "the raw TCP echo process")
        client = await trio.open_tcp_stream("127.0.0.1", int(line))
        async with client:

            async def op(i: int) -> int:
                await client.send_all(i.to_bytes(FRAME, "little"))
                return int.from_bytes(await _recv_exactly(client, FRAME), "little")

            return await round_trips(op, n, warmup)
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


# -- radon-actors native, in-process --------------------------------------------
async def ask_rtt(n: int, warmup: int, method: str) -> list[int]:
    async with open_system() as system:
        ref = await system.spawn(Echo)

        async def op(i: int) -> Any:
            return await ref.ask(method, i)

        return await round_trips(op, n, warmup)


async def native_rtt(n: int, warmup: int) -> list[int]:
    return await ask_rtt(n, warmup, "ping")


async def native_async_rtt(n: int, warmup: int) -> list[int]:
    return await ask_rtt(n, warmup, "aping")


async def native_queued_rtt(n: int, warmup: int) -> list[int]:
    return await ask_rtt(n, warmup, "qping")


# -- radon-actors sandboxed (WebAssembly), in-process ---------------------------
GUEST_ATOMS = Path(__file__).resolve().parent / "_guest_atoms"


def guest_atoms() -> Any:
    """The benchmark atoms the sandbox packages (``radon_bench_echo``).

    A sandboxed atom's module must be importable by a top-level name of its own
    (the component is built and cached per module, and worker hosts import it by
    name), and nothing under ``radon_actors`` may be sandboxed: so the module
    ships in a directory of its own, which this puts on ``sys.path``.
    """
    here = str(GUEST_ATOMS)
    if here not in sys.path:
        sys.path.insert(0, here)
    return importlib.import_module("radon_bench_echo")


def prepare_sandbox() -> None:
    """Build (first run only), compile and load the sandbox component, untimed."""
    from radon_actors.sandbox import _engine

    _engine.load(guest_atoms().Echo.__module__)


async def sandboxed_ask_rtt(n: int, warmup: int, method: str) -> list[int]:
    echo = guest_atoms().Echo
    async with open_system() as system:
        ref = await system.spawn(echo, sandbox=True)

        async def op(i: int) -> Any:
            return await ref.ask(method, i)

        return await round_trips(op, n, warmup)


async def sandboxed_rtt(n: int, warmup: int) -> list[int]:
    return await sandboxed_ask_rtt(n, warmup, "ping")


async def sandboxed_queued_rtt(n: int, warmup: int) -> list[int]:
    return await sandboxed_ask_rtt(n, warmup, "qping")


async def tell_throughput(n: int) -> float:
    async with open_system(mailbox_size=1000) as system:
        ref = await system.spawn(Echo)
        t0 = now_ns()
        for _ in range(n):
            await ref.send("hit")
        total = await ref.ask("total")
        elapsed = now_ns() - t0
    if total != n:
        raise LostMessages(f"atom counted {total} of {n} messages")
    return n / (elapsed / 1e9)


# -- radon-actors across processes: an atom on a worker host -------------------
@contextlib.asynccontextmanager
async def _worker_echo(mailbox_size: int | None = None) -> AsyncIterator[Ref[Echo]]:
    """A system with one worker host running an Echo; the worker never outlives it."""
    node: Any = None
    try:
        async with open_system() as system:
            node = get_node(system)
            await system.start_host("bench-worker")
            yield await system.spawn(Echo, host="bench-worker", mailbox_size=mailbox_size)
    finally:
        # Closing the system shut the worker down; on any failure kill what is left.
        for proc in node.processes.values() if node is not None else ():
            if proc.returncode is None:
                proc.kill()
                with trio.CancelScope(shield=True):
                    await proc.wait()


async def cross_process_rtt(n: int, warmup: int) -> list[int]:
    async with _worker_echo() as ref:

        async def op(i: int) -> Any:
            return await ref.ask("ping", i)

        return await round_trips(op, n, warmup)


async def cross_process_throughput(n: int) -> float:
    async with _worker_echo(mailbox_size=1000) as ref:
        await ref.ask("total")  # connected and warm
        t0 = now_ns()
        for _ in range(n):
            await ref.send("hit")
        total = await ref.ask("total")
        elapsed = now_ns() - t0
    if total != n:
        raise LostMessages(f"the remote atom counted {total} of {n} messages")
    return n / (elapsed / 1e9)


@attrs.frozen
class Config:
    """One in-process (trio) configuration of the latency suite."""

    key: str
    label: str
    group: str  # "baseline" or "radon-actors"
    rtt: Callable[[int, int], Awaitable[list[int]]]
    tput: Callable[[int], Awaitable[float]] | None = None
    tput_label: str = ""


IN_PROCESS: list[Config] = [
    Config(
        "raw-channel",
        "raw trio memory channel",
        "baseline",
        raw_channel_rtt,
        raw_channel_throughput,
        "one-way channel, 1000 buffer",
    ),
    Config(
        "raw-tcp",
        "raw trio loopback TCP (32 B)",
        "baseline",
        raw_tcp_rtt,
        raw_tcp_throughput,
        "one-way stream of 32 B frames",
    ),
    Config(
        "raw-tcp-process",
        "raw trio loopback TCP, echo in a process",
        "baseline",
        raw_tcp_process_rtt,
    ),
    Config(
        "native",
        "radon-actors native, def handler",
        "radon-actors",
        native_rtt,
        tell_throughput,
        "await ref.send, bounded mailbox",
    ),
    Config(
        "native-async",
        "radon-actors native, async def, no await",
        "radon-actors",
        native_async_rtt,
    ),
    Config(
        "native-queued",
        "radon-actors native, async def that awaits",
        "radon-actors",
        native_queued_rtt,
    ),
    Config(
        "cross-process",
        "radon-actors, atom on a worker host (TCP)",
        "radon-actors",
        cross_process_rtt,
        cross_process_throughput,
        "await ref.send to the worker, batched",
    ),
    Config(
        "sandboxed",
        "radon-actors sandboxed (wasm), def",
        "radon-actors",
        sandboxed_rtt,
    ),
    Config(
        "sandboxed-queued",
        "radon-actors sandboxed (wasm), awaits",
        "radon-actors",
        sandboxed_queued_rtt,
    ),
]


@attrs.frozen
class Peer:
    """A configuration measured by ``radon_actors.bench._peers`` in a process of its own."""

    key: str
    label: str
    module: str  # what must be importable for it to run
    scale: int = 1  # slow configurations run iterations // scale, messages // (scale * 4)


PEERS: list[Peer] = [
    Peer("asyncio", "asyncio.Queue ping-pong (raw)", "asyncio"),
    Peer("pykka", "pykka 1 thread/actor", "pykka"),
    Peer("thespian-simple", "Thespian simpleSystemBase", "thespian"),
    Peer("thespian-tcp", "Thespian multiprocTCPBase (other proc)", "thespian", scale=8),
    Peer("xoscar-local", "xoscar, same pool", "xoscar", scale=2),
    Peer("xoscar-remote", "xoscar, other process", "xoscar", scale=8),
]


PEER_TOKEN_VAR = "RADON_BENCH_PEER_TOKEN"


def tagged_processes(token: str) -> list[int]:
    """Live processes (Linux: read from /proc) whose environment carries ``token``.

    Every process a peer starts inherits the tag, including daemons that left the
    process group (Thespian's admin double-forks into a session of its own).
    """
    needle = f"{PEER_TOKEN_VAR}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_peer_processes(pgid: int, token: str, patience: float = 10.0) -> None:
    """SIGKILL the peer's process group and every process tagged with ``token``,
    and return only once none is left.

    One pass is not enough: a daemon outside the group (Thespian's admin) can fork
    an actor process between the scan and the kill, and a killed process stays
    visible until the kernel has torn it down. So passes repeat until a scan finds
    nothing (polling the OS: there is no event to wait for), for at most
    ``patience`` seconds.
    """
    deadline = time.monotonic() + patience
    while True:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        left = tagged_processes(token)
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if (not left and not _group_alive(pgid)) or time.monotonic() > deadline:
            return
        time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # Zombies still count for killpg; only live members matter here.
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def run_peer(peer: Peer, n: int, m: int, repeat: int, timeout: float) -> dict[str, Any]:
    """Measure one peer in a process of its own; always kill everything it started.

    Returns the peer's JSON result, or ``{"error": ...}``; ``pgid`` and ``token``
    name the process group and the environment tag that were used to clean up.
    """
    token = uuid.uuid4().hex
    env = dict(os.environ)
    # The same radon_actors (and everything else) as this process, wherever it is.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env[PEER_TOKEN_VAR] = token
    cmd = [sys.executable, "-m", "radon_actors.bench._peers", peer.key]
    cmd += ["--iterations", str(n), "--messages", str(m), "--repeat", str(repeat)]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    ids = {"pgid": proc.pid, "token": token}
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", **ids}
    finally:
        # Whether it worked or not, kill whatever the peer left behind: its
        # process group (xoscar's sub-pools) and anything tagged (Thespian's admin).
        kill_peer_processes(proc.pid, token)
        proc.wait()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        return {"error": f"exit code {proc.returncode}: {' | '.join(tail)}", **ids}
    result: dict[str, Any] = json.loads(out)
    result.update(ids)
    return result


def _row(
    key: str,
    label: str,
    group: str,
    rtts: list[dict[str, float]],
    tputs: list[float],
    samples: list[int],
    **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {"config": key, "label": label, "group": group}
    row.update(median_of(rtts))
    row["tell_msgs_per_s"] = statistics.median(tputs) if tputs else None
    row["samples_us"] = quantiles_us(samples)
    row.update(extra)
    return row


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    base = next(r for r in rows if r["config"] == BASELINE)
    for r in rows:
        if "p50_us" not in r:
            continue
        for p in ("p50", "p90", "p99"):
            r[f"{p}_ratio"] = r[f"{p}_us"] / base[f"{p}_us"]
        t = r.get("tell_msgs_per_s")
        r["tell_ratio"] = t / base["tell_msgs_per_s"] if t else None


async def run_in_process(n: int, m: int, repeat: int) -> list[dict[str, Any]]:
    """The trio configurations, interleaved run by run."""
    warmup = max(10, n // 10)
    rtts: dict[str, list[dict[str, float]]] = {c.key: [] for c in IN_PROCESS}
    tputs: dict[str, list[float]] = {c.key: [] for c in IN_PROCESS}
    runs: dict[str, list[list[int]]] = {c.key: [] for c in IN_PROCESS}
    for _ in range(repeat):
        for c in IN_PROCESS:
            gc.collect()
            samples = await c.rtt(n, warmup)
            rtts[c.key].append(percentiles(samples))
            runs[c.key].append(samples)
            if c.tput is not None:
                gc.collect()
                tputs[c.key].append(await c.tput(m))
    return [
        _row(
            c.key,
            c.label,
            c.group,
            rtts[c.key],
            tputs[c.key],
            median_run(runs[c.key]),
            tell_label=c.tput_label,
            iterations=n,
            messages=m if c.tput else None,
        )
        for c in IN_PROCESS
    ]


def run_peers(
    n: int,
    m: int,
    repeat: int,
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for peer in PEERS:
        if only is not None and peer.key not in only:
            continue
        pn, pm = max(20, n // peer.scale), max(100, m // (peer.scale * 4 if peer.scale > 1 else 1))
        base = {"config": peer.key, "label": peer.label, "group": "peer"}
        if importlib.util.find_spec(peer.module) is None:
            rows.append(
                {**base, "skipped": f"{peer.module} is not installed (pip install .[bench])"}
            )
            continue
        if progress:
            progress(f"latency {peer.key}: {pn} round trips, {pm} tells, x{repeat}")
        result = run_peer(peer, pn, pm, repeat, timeout=120 + 0.01 * pn * repeat)
        if "error" in result:
            rows.append({**base, "skipped": result["error"]})
            continue
        runs = result["runs"]
        rows.append(
            _row(
                peer.key,
                peer.label,
                "peer",
                [percentiles(s) for s, _ in runs],
                [t for _, t in runs],
                median_run([s for s, _ in runs]),
                version=result["version"],
                iterations=pn,
                messages=pm,
            )
        )
    return rows


def run_suite(
    n: int,
    m: int,
    repeat: int,
    peers: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole latency suite: trio configurations, then peers; ratios to the baseline."""
    if progress:
        progress(f"latency in-process: {n} round trips, {m} messages, x{repeat}")
        progress("sandbox component: loading (the first run on a machine builds it)")
    prepare_sandbox()
    rows = trio.run(run_in_process, n, m, repeat)
    rows += run_peers(n, m, repeat, peers, progress)
    _add_ratios(rows)
    return {
        "baseline": BASELINE,
        "iterations": n,
        "messages": m,
        "repeat": repeat,
        "rows": rows,
        "skipped_peers": {
            "ray": "not run: its wheel alone is ~79 MB (plus grpcio and friends) and "
            "ray.init() starts a GCS server, raylet and dashboard processes, which on "
            "a shared 2-core machine would dominate the noise of every other figure",
        },
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        f"ask round trip (us) and tell throughput; median of {result['repeat']} runs; "
        f"ratios to {result['baseline']} of the same run",
        f"{'configuration':40} {'p50':>8} {'p90':>8} {'p99':>8} {'p50x':>6} {'p99x':>6} "
        f"{'tell msg/s':>11} {'tellx':>6}",
    ]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"{r['label']:40} skipped: {r['skipped']}")
            continue
        t = r.get("tell_msgs_per_s")
        tell = f"{t:11,.0f} {r['tell_ratio']:6.2f}" if t else f"{'-':>11} {'-':>6}"
        lines.append(
            f"{r['label']:40} {r['p50_us']:8.1f} {r['p90_us']:8.1f} {r['p99_us']:8.1f} "
            f"{r['p50_ratio']:6.2f} {r['p99_ratio']:6.2f} {tell}"
        )
    by = {r["config"]: r for r in result["rows"] if "p50_us" in r}
    cross = by.get("cross-process")
    for key, what in (
        ("raw-tcp-process", "echo in another process, the like-for-like floor"),
        ("raw-tcp", "both ends in this process: no second process to wake"),
    ):
        raw = by.get(key)
        if cross is not None and raw is not None:
            lines.append(
                f"{'cross-process ask / ' + key:40} "
                f"p50 {cross['p50_us'] / raw['p50_us']:.2f}x, "
                f"p99 {cross['p99_us'] / raw['p99_us']:.2f}x ({what}; goal: p50 <= 1.4x, issue #14)"
            )
    for name, why in result.get("skipped_peers", {}).items():
        lines.append(f"{name:40} {why}")
    return "\n".join(lines)


def configure_logging() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def smoke_sizes() -> tuple[int, int, int]:
    return 200, 2_000, 1
