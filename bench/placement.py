"""Cross-process message speed of radon-actors placement, against raw trio TCP.

Measured in one run, on this machine:

* raw trio loopback TCP ping-pong round trip: this process sends a small
  length-prefixed frame to an echo server in another process and waits for it
  back (the floor for any cross-process request/reply over TCP);
* cross-process ``ask`` round trip to an atom on a worker host (plain ``def``
  handler), p50/p90/p99;
* cross-host ``tell`` throughput: this process -> worker, and worker -> worker
  (host to host), messages per second, with the transport's batching;
* migration pause: an atom receives a continuous stream of tells while it is
  moved back and forth between this process and a worker; the pause is the
  time from the last message it handled at the source to the first it handled
  at the target (both stamped with the system-wide monotonic clock). The first
  move each way (which ships the class and builds its handler table on the
  target) is a warm-up, reported apart;
* the same pause under backpressure: an atom with a mailbox of 100 kept full by
  three senders without flow control (two in this process, one on the worker),
  so senders wait for room whenever it moves.

    python bench/placement.py            # full run (~30 s)
    python bench/placement.py --smoke    # tiny run that only checks it all works
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import structlog
import trio

from radon_actors import Atom, Ref, handler, open_system
from radon_actors.bench._process import first_line
from radon_actors.bench._timing import percentiles

_now = time.perf_counter_ns
# The mailbox of the atom whose migration pause is measured under backpressure.
FULL_MAILBOX = 100

ECHO_SERVER = r"""
import functools, sys, trio
async def echo(stream):
    buf = bytearray()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        buf += data
        out = bytearray()
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n:
                break
            out += buf[: 4 + n]
            del buf[: 4 + n]
        if out:
            await stream.send_all(out)
async def main():
    async with trio.open_nursery() as nursery:
        serve = functools.partial(trio.serve_tcp, echo, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        print(listeners[0].socket.getsockname()[1], flush=True)
        await trio.to_thread.run_sync(sys.stdin.read)
        nursery.cancel_scope.cancel()
trio.run(main)
"""


class Echo(Atom):
    def __init__(self) -> None:
        self.count = 0

    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    def hit(self) -> None:
        self.count += 1

    @handler
    def total(self) -> int:
        return self.count


class Blaster(Atom):
    """Streams tells to another atom (for host-to-host throughput)."""

    @handler
    async def blast(self, target: Ref[Echo], n: int) -> int:
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await target.send("hit")
        assert await target.ask("total") >= n
        return time.perf_counter_ns() - t0

    @handler
    async def make_sink(self) -> Ref[Echo]:
        """An Echo spawned here, so that this host is its origin: Refs to it go
        straight to this host from anywhere (host to host, no hop via the parent)."""
        return await self.spawn(Echo)


class Switch(Atom):
    """An on/off flag other atoms can ask."""

    def __init__(self) -> None:
        self.off = False

    @handler
    def is_off(self) -> bool:
        return self.off

    @handler
    def turn_off(self) -> None:
        self.off = True


class Flooder(Atom):
    """Streams ``send``s to an atom until a :class:`Switch` is off (no flow
    control but the mailbox's own: its sends wait for room)."""

    @handler
    async def flood(self, target: Ref[Mover], switch: Ref[Switch]) -> int:
        sent = 0
        while sent % 500 or not await switch.ask(Switch.is_off):
            await target.send("hit")
            sent += 1
        return sent


class Mover(Atom):
    """Records the gap between the last message at one host and the first at the next."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.last = time.monotonic_ns()
        self.gaps: list[int] = []
        self.count = 0

    @handler
    def hit(self) -> None:
        now = time.monotonic_ns()
        pid = os.getpid()
        if pid != self.pid:
            self.gaps.append(now - self.last)
            self.pid = pid
        self.last = now
        self.count += 1

    @handler
    def report(self) -> list[int]:
        return list(self.gaps)

    @handler
    def reset(self) -> list[int]:
        gaps, self.gaps = self.gaps, []
        return gaps

    @handler
    def total(self) -> int:
        return self.count


async def raw_tcp_rtt(n: int, warmup: int) -> list[int]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", ECHO_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        line = await first_line(proc, "the echo server")
        stream = await trio.open_tcp_stream("127.0.0.1", int(line))
        frame = (60).to_bytes(4, "big") + b"x" * 60
        samples = [0] * n
        for i in range(-warmup, n):
            t0 = _now()
            await stream.send_all(frame)
            got = 0
            while got < len(frame):
                got += len(await stream.receive_some())
            if i >= 0:
                samples[i] = _now() - t0
        await stream.aclose()
        return samples
    finally:
        proc.kill()
        await proc.wait()


async def run(rtt_n: int, tput_n: int, moves: int, repeat: int) -> dict[str, Any]:
    warmup = max(10, rtt_n // 10)
    raw_runs: list[dict[str, float]] = []
    ask_runs: list[dict[str, float]] = []
    tell_runs: list[float] = []
    h2h_runs: list[float] = []
    async with open_system(mailbox_size=10_000) as system:
        await system.start_host("w1")
        await system.start_host("w2")
        echo = await system.spawn(Echo, host="w1")
        # Spawned by an atom on w2, so w1 reaches it directly (an atom spawned from
        # here with host="w2" would route w1's messages through this process).
        sink = await (await system.spawn(Blaster, host="w2")).ask(Blaster.make_sink)
        blaster = await system.spawn(Blaster, host="w1")
        for _ in range(repeat):
            gc.collect()
            raw_runs.append(percentiles(await raw_tcp_rtt(rtt_n, warmup)))

            samples = [0] * rtt_n
            for i in range(-warmup, rtt_n):
                t0 = _now()
                await echo.ask(Echo.ping, i)
                if i >= 0:
                    samples[i] = _now() - t0
            ask_runs.append(percentiles(samples))

            before = await echo.ask(Echo.total)
            t0 = _now()
            for _ in range(tput_n):
                await echo.send(Echo.hit)
            while await echo.ask(Echo.total) < before + tput_n:
                pass
            tell_runs.append(tput_n / ((_now() - t0) / 1e9))

            elapsed = await blaster.ask(Blaster.blast, sink, tput_n)
            h2h_runs.append(tput_n / (elapsed / 1e9))

        # migration pause under a continuous stream of tells
        mover = await system.spawn(Mover)
        stop = trio.Event()

        async def stream() -> None:
            sent = 0
            while not stop.is_set():
                await mover.send(Mover.hit)
                sent += 1
                if sent % 200 == 0:  # flow control
                    await mover.ask(Mover.total)

        async def move(i: int) -> None:
            count = await mover.ask(Mover.total)
            while await mover.ask(Mover.total) < count + 50:
                pass
            await system.migrate(mover, to="w1" if i % 2 == 0 else "local")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream)
            # The first move each way also ships the class and builds its
            # handler table on the target: reported apart, as a warm-up.
            for i in range(2):
                await move(i)
            first = await mover.ask(Mover.reset)
            for i in range(moves):
                await move(i)
            count = await mover.ask(Mover.total)
            while await mover.ask(Mover.total) < count + 100:
                pass
            stop.set()
        gaps = await mover.ask(Mover.report)

        # the same with a full mailbox: two senders here and one on the worker
        # send without flow control, so the mailbox is full and senders wait
        # for room whenever the atom moves (issue #12)
        full = await system.spawn(Mover, mailbox_size=FULL_MAILBOX)
        flooder = await system.spawn(Flooder, host="w1")
        switch = await system.spawn(Switch)
        flooding = trio.Event()

        async def flood() -> None:
            while not flooding.is_set():
                await full.send(Mover.hit)

        async def move_full(i: int) -> None:
            count = await full.ask(Mover.total)
            while await full.ask(Mover.total) < count + 2 * FULL_MAILBOX:
                pass
            await system.migrate(full, to="w1" if i % 2 == 0 else "local")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            nursery.start_soon(flood)
            nursery.start_soon(flooder.ask, Flooder.flood, full, switch)
            for i in range(2):
                await move_full(i)
            await full.ask(Mover.reset)
            for i in range(moves):
                await move_full(i)
            flooding.set()
            switch.tell(Switch.turn_off)
        full_gaps = await full.ask(Mover.report)

    raw = {k: statistics.median(r[k] for r in raw_runs) for k in raw_runs[0]}
    ask = {k: statistics.median(r[k] for r in ask_runs) for k in ask_runs[0]}
    pause = percentiles(gaps)
    pause_full = percentiles(full_gaps)
    return {
        "python": sys.version.split()[0],
        "trio": trio.__version__,
        "rtt_iterations": rtt_n,
        "throughput_messages": tput_n,
        "repeat": repeat,
        "migrations": moves,
        "raw_tcp_rtt": raw,
        "cross_process_ask_rtt": ask,
        "ratio_ask_p50": ask["p50_us"] / raw["p50_us"],
        "tell_msgs_per_s": statistics.median(tell_runs),
        "host_to_host_tell_msgs_per_s": statistics.median(h2h_runs),
        "migration_pause": {k.replace("_us", "_ms"): v / 1000 for k, v in pause.items()},
        "migration_pauses_measured": len(gaps),
        "migration_pause_full_mailbox": {
            k.replace("_us", "_ms"): v / 1000 for k, v in pause_full.items()
        },
        "full_mailbox_size": FULL_MAILBOX,
        "first_migration_pauses_ms": [g / 1e6 for g in first],
    }


def _print_table(r: dict[str, Any]) -> None:
    print(f"python {r['python']}, trio {r['trio']}, median of {r['repeat']} runs")
    print(
        f"{'round trip (cross-process)':34} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'/raw':>6}"
    )
    raw = r["raw_tcp_rtt"]
    for label, key in [
        ("raw trio loopback TCP ping-pong", "raw_tcp_rtt"),
        ("ask, atom on a worker host", "cross_process_ask_rtt"),
    ]:
        v = r[key]
        ratio = v["p50_us"] / raw["p50_us"]
        print(f"{label:34} {v['p50_us']:8.1f} {v['p90_us']:8.1f} {v['p99_us']:8.1f} {ratio:6.2f}")
    print(f"{'tell throughput':34} {'msgs/s':>17}")
    print(f"{'this process -> worker':34} {r['tell_msgs_per_s']:17,.0f}")
    print(f"{'worker -> worker (host to host)':34} {r['host_to_host_tell_msgs_per_s']:17,.0f}")
    p = r["migration_pause"]
    print(
        f"migration pause over {r['migration_pauses_measured']} moves: p50 {p['p50_ms']:.2f} ms, "
        f"p90 {p['p90_ms']:.2f} ms, p99 {p['p99_ms']:.2f} ms"
    )
    p = r["migration_pause_full_mailbox"]
    print(
        f"same, mailbox of {r['full_mailbox_size']} kept full by 3 senders (2 here, 1 on "
        f"the worker): p50 {p['p50_ms']:.2f} ms, p90 {p['p90_ms']:.2f} ms, "
        f"p99 {p['p99_ms']:.2f} ms"
    )
    first = ", ".join(f"{ms:.1f}" for ms in r["first_migration_pauses_ms"])
    print(f"first move each way (ships the class, warms up): {first} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny run that only checks it works")
    parser.add_argument("--iterations", type=int, default=5_000, help="round trips per run")
    parser.add_argument("--messages", type=int, default=100_000, help="messages per throughput run")
    parser.add_argument("--migrations", type=int, default=100, help="migrations measured")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.smoke:
        args.iterations, args.messages, args.migrations, args.repeat = 100, 1_000, 4, 1
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    result = trio.run(run, args.iterations, args.messages, args.migrations, args.repeat)
    _print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
