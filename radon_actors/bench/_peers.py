"""Peer frameworks and the asyncio baseline, each measured in a process of its own.

Run as ``python -m radon_actors.bench._peers CONFIG --iterations N --messages M --repeat R``:
prints one JSON object (ask round-trip samples and tell throughput per run) on
stdout. ``radon_actors.bench._suite`` starts one such process per configuration in a new
session and, when it is done (or fails, or hangs), kills that process group
and every process tagged with its environment token (Thespian's admin daemonizes
out of the group), so no peer's helper processes outlive the run. Each
configuration also shuts its own system down in a ``finally``.

Every configuration measures the same two things as the radon-actors suite:

* ask round trip: a request/reply to an echo actor, timed one at a time;
* tell throughput: ``M`` one-way "hit" messages, then an ask for the count
  (checked: a lost message fails the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

_now = time.perf_counter_ns

CONFIGS = {
    "asyncio": "asyncio.Queue ping-pong (raw)",
    "pykka": "pykka ask (threads)",
    "thespian-simple": "Thespian simpleSystemBase ask",
    "thespian-tcp": "Thespian multiprocTCPBase ask (other process)",
    "xoscar-local": "xoscar ask, same pool",
    "xoscar-remote": "xoscar ask, other process",
}


class LostMessages(AssertionError):
    pass


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _check_total(total: int, n: int) -> None:
    if total != n:
        raise LostMessages(f"actor counted {total} of {n} told messages")


def _sync_rtt(op: Callable[[int], Any], n: int, warmup: int) -> list[int]:
    for i in range(warmup):
        if op(i) != i:
            raise LostMessages("wrong echo")
    samples = [0] * n
    for i in range(n):
        t0 = _now()
        r = op(i)
        samples[i] = _now() - t0
        if r != i:
            raise LostMessages(f"echo of {i} returned {r!r}")
    return samples


def _sync_tput(tell: Callable[[], None], total: Callable[[], int], n: int) -> float:
    t0 = _now()
    for _ in range(n):
        tell()
    _check_total(total(), n)
    return n / ((_now() - t0) / 1e9)


# -- asyncio baseline -----------------------------------------------------------
async def _asyncio_rtt(n: int, warmup: int) -> list[int]:
    req: asyncio.Queue[int] = asyncio.Queue(1)
    rep: asyncio.Queue[int] = asyncio.Queue(1)

    async def server() -> None:
        while True:
            await rep.put(await req.get())

    task = asyncio.create_task(server())
    try:
        for i in range(warmup):
            await req.put(i)
            await rep.get()
        samples = [0] * n
        for i in range(n):
            t0 = _now()
            await req.put(i)
            r = await rep.get()
            samples[i] = _now() - t0
            if r != i:
                raise LostMessages("wrong echo")
        return samples
    finally:
        task.cancel()


async def _asyncio_tput(n: int) -> float:
    q: asyncio.Queue[int] = asyncio.Queue(1000)
    count = 0

    async def consumer() -> None:
        nonlocal count
        for _ in range(n):
            await q.get()
            count += 1

    task = asyncio.create_task(consumer())
    await asyncio.sleep(0)
    t0 = _now()
    for i in range(n):
        await q.put(i)
    await task
    _check_total(count, n)
    return n / ((_now() - t0) / 1e9)


def run_asyncio(n: int, m: int, repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        gc.collect()
        samples = asyncio.run(_asyncio_rtt(n, max(10, n // 10)))
        tput = asyncio.run(_asyncio_tput(m))
        runs.append((samples, tput))
    return {"version": sys.version.split()[0], "runs": runs}


# -- pykka ----------------------------------------------------------------------
def _pykka_run(ref: Any, n: int, m: int) -> tuple[list[int], float]:
    samples = _sync_rtt(ref.ask, n, max(10, n // 10))
    tput = _sync_tput(lambda: ref.tell("hit"), lambda: ref.ask("total"), m)
    ref.stop()
    return samples, tput


def run_pykka(n: int, m: int, repeat: int) -> dict[str, Any]:
    import pykka

    class Echo(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: Any) -> Any:
            if message == "hit":
                self.count += 1
                return None
            if message == "total":
                return self.count
            return message

    runs = []
    try:
        for _ in range(repeat):
            gc.collect()
            runs.append(_pykka_run(Echo.start(), n, m))
    finally:
        pykka.ActorRegistry.stop_all()
    return {"version": _version("pykka"), "runs": runs}


# -- Thespian -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _thespian_echo() -> type:
    from thespian.actors import Actor

    class ThespianEcho(Actor):  # type: ignore[misc]
        count = 0

        def receiveMessage(self, message: Any, sender: Any) -> None:
            if message == "hit":
                self.count += 1
            elif message == "total":
                self.send(sender, self.count)
            elif isinstance(message, int):
                self.send(sender, message)

    return ThespianEcho


ThespianEcho: Any = None


def _thespian_run(asys: Any, addr: Any, n: int, m: int) -> tuple[list[int], float]:
    samples = _sync_rtt(lambda i: asys.ask(addr, i, 30), n, max(10, n // 10))
    tput = _sync_tput(lambda: asys.tell(addr, "hit"), lambda: asys.ask(addr, "total", 60), m)
    return samples, tput


def run_thespian(base: str, n: int, m: int, repeat: int) -> dict[str, Any]:
    from thespian.actors import ActorSystem

    caps = {"Admin Port": _free_port()} if base != "simpleSystemBase" else {}
    asys = ActorSystem(base, capabilities=caps)
    runs = []
    try:
        for _ in range(repeat):
            gc.collect()
            runs.append(
                _thespian_run(
                    asys, asys.createActor("radon_actors.bench._peers.ThespianEcho"), n, m
                )
            )
    finally:
        asys.shutdown()
    return {"version": _version("thespian"), "runs": runs}


# -- xoscar ---------------------------------------------------------------------
async def _xoscar(remote: bool, n: int, m: int, repeat: int) -> list[Any]:
    import xoscar as xo

    class XoEcho(xo.Actor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def echo(self, x: int) -> int:
            return x

        def hit(self) -> None:
            self.count += 1

        def total(self) -> int:
            return self.count

    pool = await xo.create_actor_pool("127.0.0.1", n_process=1 if remote else 0)
    runs = []
    try:
        strategy = (
            xo.allocate_strategy.ProcessIndex(1) if remote else xo.allocate_strategy.MainPool()
        )
        for k in range(repeat):
            gc.collect()
            ref = await xo.create_actor(
                XoEcho, address=pool.external_address, uid=f"echo{k}", allocate_strategy=strategy
            )
            warmup = max(10, n // 10)
            for i in range(warmup):
                await ref.echo(i)
            samples = [0] * n
            for i in range(n):
                t0 = _now()
                r = await ref.echo(i)
                samples[i] = _now() - t0
                if r != i:
                    raise LostMessages("wrong echo")
            t0 = _now()
            for _ in range(m):
                await ref.hit.tell()
            _check_total(await ref.total(), m)
            runs.append((samples, m / ((_now() - t0) / 1e9)))
            await xo.destroy_actor(ref)
    finally:
        await pool.stop()
    return runs


def run_xoscar(remote: bool, n: int, m: int, repeat: int) -> dict[str, Any]:
    runs = asyncio.run(_xoscar(remote, n, m, repeat))
    return {"version": _version("xoscar"), "runs": runs}


def measure(config: str, n: int, m: int, repeat: int) -> dict[str, Any]:
    if config == "asyncio":
        return run_asyncio(n, m, repeat)
    if config == "pykka":
        return run_pykka(n, m, repeat)
    if config == "thespian-simple":
        return run_thespian("simpleSystemBase", n, m, repeat)
    if config == "thespian-tcp":
        return run_thespian("multiprocTCPBase", n, m, repeat)
    if config == "xoscar-local":
        return run_xoscar(False, n, m, repeat)
    if config == "xoscar-remote":
        return run_xoscar(True, n, m, repeat)
    raise SystemExit(f"unknown configuration {config!r}; known: {', '.join(CONFIGS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", choices=sorted(CONFIGS))
    parser.add_argument("--iterations", type=int, required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    result = measure(args.config, args.iterations, args.messages, args.repeat)
    json.dump(result, sys.stdout)


if __name__ in ("__main__", "radon_actors.bench._peers"):
    # Thespian's multiproc bases import the actor class by its dotted name.
    with contextlib.suppress(ImportError):
        ThespianEcho = _thespian_echo()

if __name__ == "__main__":
    main()
