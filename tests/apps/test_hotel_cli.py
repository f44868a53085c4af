"""The hotel example's command line (issue #17), run as a user runs it:
``python -m examples.hotel serve`` in each mode, and ``python -m examples.hotel
load`` against it and against a server that records what it receives."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from cluster_helpers import announced_process

from examples.hotel import CAPACITIES, workload_user

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def hotel(*flags: str) -> AsyncIterator[tuple[trio.Process, str]]:
    """``serve`` on a free port: yields the process and its URL (the sandboxed
    mode may build components first); stopped on the way out, whatever happens."""
    cmd = [sys.executable, "-m", "examples.hotel", "serve", "--bind", "127.0.0.1:0", *flags]
    async with announced_process(cmd, rb"serving (http://\S+)", cwd=ROOT) as (proc, found):
        yield proc, found.group(1).decode()


async def get(url: str, target: str, method: str = "GET") -> tuple[int, bytes]:
    """One request on its own connection (``Connection: close``)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    stream = await trio.open_tcp_stream(parts.hostname, parts.port)
    async with stream:
        await stream.send_all(f"{method} {target} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := await stream.receive_some():
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def requests_of_each_kind() -> list[tuple[str, str]]:
    user, password = workload_user(11)
    stay = "inDate=2015-04-12&outDate=2015-04-14"
    return [
        ("GET", f"/hotels?{stay}&lat=38.0235&lon=-122.095"),
        ("GET", f"/hotels?{stay}&lat=37.7835&lon=-122.41"),
        ("GET", "/recommendations?require=rate&lat=37.7835&lon=-122.41"),
        ("POST", f"/user?username={user}&password={password}"),
        ("POST", f"/user?username={user}&password=nope"),
        (
            "POST",
            f"/reservation?{stay}&lat=nil&lon=nil&hotelId=7&customerName={user}"
            f"&username={user}&password={password}&number=2",
        ),
        ("GET", "/hotels?inDate=2015-04-12&lat=1&lon=2"),
        ("GET", "/"),
    ]


async def answers(url: str) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for method, target in requests_of_each_kind():
        status, body = await get(url, target, method)
        out.append((status, json.loads(body) if status == 200 else body.decode()))
    return out


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (spawned from any thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return sorted(found)


def maps_wasmtime(pid: int) -> bool:
    return "wasmtime" in Path(f"/proc/{pid}/maps").read_text()


async def test_serve_answers_the_same_in_every_mode() -> None:
    with trio.fail_after(600):
        async with hotel() as (proc, url):
            local = await answers(url)
            assert children(proc.pid) == []  # the services run in this process
            assert not maps_wasmtime(proc.pid)
        statuses = [status for status, _ in local]
        assert statuses == [200, 200, 200, 200, 200, 200, 400, 404]
        assert local[3][1] == {"message": "Login successfully!"}
        assert local[4][1] == {"message": "Failed. Please check your username and password. "}
        assert local[5][1] == {"message": "Reserve successfully!"}
        async with hotel("--mode", "hosts", "--hosts", "3") as (proc, url):
            assert await answers(url) == local
            assert len(children(proc.pid)) == 3  # one process per worker host
        async with hotel("--mode", "sandboxed") as (proc, url):
            assert await answers(url) == local
            assert children(proc.pid) == [] and maps_wasmtime(proc.pid)


async def test_data_dir_keeps_the_bookings_across_runs(tmp_path: Path) -> None:
    user, password = workload_user(5)
    book_all = (
        "/reservation?inDate=2015-04-20&outDate=2015-04-21&lat=nil&lon=nil&hotelId=3"
        f"&customerName={user}&username={user}&password={password}&number=%d"
    )
    (capacity,) = [c.rooms for c in CAPACITIES if c.hotel_id == "3"]
    data_dir = tmp_path / "hotel"
    with trio.fail_after(120):
        async with hotel("--data-dir", str(data_dir)) as (_, url):
            status, body = await get(url, book_all % capacity, "POST")
            assert (status, json.loads(body)) == (200, {"message": "Reserve successfully!"})
        assert (data_dir / "hotel.sqlite3").exists()
        async with hotel("--data-dir", str(data_dir)) as (_, url):
            status, body = await get(url, book_all % 1, "POST")  # full since the first run
            assert json.loads(body) == {"message": "Failed. Already reserved. "}
        async with hotel() as (_, url):  # no --data-dir: a fresh store each run
            status, body = await get(url, book_all % 1, "POST")
            assert json.loads(body) == {"message": "Reserve successfully!"}


async def run_load(*flags: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process(
        [sys.executable, "-m", "examples.hotel", "load", *flags],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
        cwd=ROOT,
    )


async def test_load_against_the_server_gets_every_answer() -> None:
    with trio.fail_after(120):
        async with hotel() as (_, url):
            out = await run_load(
                "--url", url, "--rate", "200", "--duration", "1", "--warmup", "0.5", "--json"
            )
    assert out.returncode == 0, out.stderr.decode()
    result = json.loads(out.stdout)
    assert result["sent"] == 200 and result["completed"] == 200 and result["errors"] == 0
    assert set(result["statuses"]) == {"200"}
    assert result["by_kind"]["search"] + result["by_kind"]["recommend"] >= 190
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


class Recorder:
    """An HTTP server that answers every request ``204``-like (empty 200) and
    records the connections and request targets it saw."""

    def __init__(self) -> None:
        self.connections = 0
        self.targets: list[str] = []

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        buffer = b""
        while data := await stream.receive_some():
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                self.targets.append(head.split()[1].decode())
                await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


@asynccontextmanager
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    server = Recorder()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        yield server, f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


async def test_load_options_shape_what_is_sent() -> None:
    with trio.fail_after(120):
        async with recorder() as (server, url):
            base = ["--url", url, "--duration", "0.5", "--json"]
            out = await run_load(*base, "--rate", "100", "--warmup", "0.5", "--connections", "3")
            assert out.returncode == 0, out.stderr.decode()
            result = json.loads(out.stdout)
            # --rate x (--warmup + --duration) requests reach the server; the
            # warm-up's are not measured.
            assert len(server.targets) == 100 and result["sent"] == 50
            assert server.connections == 3
            first = list(server.targets)

            server.targets.clear()
            await run_load(*base, "--rate", "100", "--warmup", "0.5", "--connections", "1")
            # The same seed: the same requests. Compared as a multiset: with three
            # connections the first run's requests reach the server in an order
            # that races between its connections.
            assert sorted(server.targets) == sorted(first)
            assert server.connections == 3 + 1

            server.targets.clear()
            await run_load(*base, "--rate", "100", "--warmup", "0.5", "--seed", "2")
            assert len(server.targets) == 100 and server.targets != first

            server.targets.clear()
            await run_load(*base, "--rate", "40", "--warmup", "0")
            assert len(server.targets) == 20


async def test_load_reports_what_goes_wrong() -> None:
    async with recorder() as (_, url):
        port = urlsplit(url).port
    # The recorder is gone: nothing listens on its port any more.
    out = await run_load("--url", f"http://127.0.0.1:{port}", "--rate", "10", "--duration", "1")
    assert out.returncode == 1 and b"cannot connect" in out.stderr
    out = await trio.run_process(
        [sys.executable, "-m", "examples.hotel", "serve", "--hosts", "3"],
        capture_stderr=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 2 and b"--hosts is for --mode hosts" in out.stderr
    out = await run_load("--rate", "0")
    assert out.returncode == 2 and b"--rate takes a positive number" in out.stderr
    out = await run_load("--url", "https://example.org", "--rate", "1")
    assert out.returncode == 2 and b"--url takes an http:// URL" in out.stderr


async def test_serve_without_httptools_says_what_to_install() -> None:
    # As a user who installed the package without the examples extra: the
    # import of httptools fails (a None in sys.modules makes it raise).
    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "from examples.hotel.__main__ import main\n"
        "sys.exit(main(['serve', '--bind', '127.0.0.1:0']))\n"
    )
    out = await trio.run_process(
        [sys.executable, "-c", code], capture_stderr=True, check=False, cwd=ROOT
    )
    assert out.returncode == 1
    assert b"pip install -e '.[examples]'" in out.stderr
