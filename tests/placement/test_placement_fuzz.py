"""A live fuzz of `radon host` (issue #14): 2,000 cases before authentication
and 2,000 after, each on a connection of its own. The host must stay up, keep
its memory bounded, and serve a legitimate client afterwards.

Seeded, so a failure replays exactly; the counts are quoted in docs/placement.md.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import trio
from cluster_helpers import radon_host
from placement_atoms import Counter

from radon_actors import open_system
from radon_actors.placement import _wire

CASES = 2_000


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _pre_auth(rng: random.Random) -> bytes:
    """Bytes a peer without the secret might send."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:  # the right magic, any version, any nonce
        return _wire.MAGIC + rng.randrange(65536).to_bytes(2, "big") + rng.randbytes(32)
    if kind == 2:  # a truncated handshake
        whole = _wire.MAGIC + _wire.VERSION.to_bytes(2, "big") + rng.randbytes(32)
        return whole[: rng.randrange(len(whole))]
    if kind == 3:  # a handshake and a made-up proof, then frames
        return (
            _wire.MAGIC
            + _wire.VERSION.to_bytes(2, "big")
            + rng.randbytes(32)
            + rng.randbytes(32)
            + _frame(pickle.dumps(("tell", "x.1", "h", (), {})))
        )
    return _frame(rng.randbytes(rng.randrange(0, 64)))  # a frame where a handshake is due


def _random_value(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(7 if depth < 2 else 4)
    if choice == 0:
        return rng.randrange(-(2**70), 2**70)
    if choice == 1:
        return rng.randbytes(rng.randrange(20)).decode("latin-1")
    if choice == 2:
        return None
    if choice == 3:
        return rng.randbytes(rng.randrange(20))
    if choice == 4:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if choice == 5:
        return {str(i): _random_value(rng, depth + 1) for i in range(rng.randrange(3))}
    return tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(6)))


KINDS = ["hello", "tell", "ask", "reply", "cancel", "ping", "peers", "load", "stop_atom",
         "watch", "down", "activate", "code_has", "code_part", "code_done", "shutdown",
         "credit"]  # fmt: skip


def _post_auth(rng: random.Random) -> bytes:
    """Frames an authenticated but broken (or fuzzing) peer might send."""
    kind = rng.randrange(5)
    if kind == 4:  # parts of a large frame: any flags, sizes and payloads
        hello = ("hello", "fuzz-peer", "fuzz", None, "3.11")
        pieces = [_frame(pickle.dumps(hello))]
        for _ in range(rng.randrange(1, 5)):
            flags = rng.choice([0, _wire.MORE, _wire.LAST, _wire.MORE | _wire.LAST])
            size = rng.choice([rng.randrange(64), _wire.PART, _wire.PART + rng.randrange(1, 64)])
            pieces.append((size | flags).to_bytes(4, "big") + rng.randbytes(min(size, 512)))
        return b"".join(pieces)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:
        return _frame(rng.randbytes(rng.randrange(0, 100)))
    if kind == 2:  # a hello of the wrong shape or types
        fields = [rng.choice(KINDS)] + [_random_value(rng) for _ in range(rng.randrange(7))]
        return _frame(pickle.dumps(tuple(fields)))
    # a valid hello, then frames of every kind with random fields
    hello = ("hello", "fuzz-peer", "fuzz", None, "3.11")
    frames = [_frame(pickle.dumps(hello))]
    for _ in range(rng.randrange(1, 6)):
        fields = [rng.choice(KINDS)] + [_random_value(rng) for _ in range(rng.randrange(6))]
        frames.append(_frame(pickle.dumps(tuple(fields))))
    return b"".join(frames)


async def _case(address: str, data: bytes, secret: bytes | None) -> None:
    host, _, port = address.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        try:
            if secret is not None:
                await _wire.client_handshake(stream, secret)
            await stream.send_all(data)
            with trio.move_on_after(0.01):  # read what it answers, if anything
                while await stream.receive_some():
                    pass
        except (trio.BrokenResourceError, OSError):
            pass


async def test_radon_host_survives_4000_fuzzed_connections(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(os.urandom(32).hex().encode())
    secret_file.chmod(0o600)
    secret = secret_file.read_bytes().strip()
    rng = random.Random(14)
    async with radon_host(secret_file, "fuzzed") as (proc, line):
        address = line.split()[1]
        before = _rss_kib(proc.pid)
        for _ in range(CASES):
            await _case(address, _pre_auth(rng), None)
        for _ in range(CASES):
            await _case(address, _post_auth(rng), secret)
        assert proc.returncode is None  # still up
        grown = _rss_kib(proc.pid) - before
        assert grown < 64 * 1024, f"the host grew by {grown} KiB"
        async with open_system() as system:
            assert await system.connect_host(address, secret_file=secret_file) == "fuzzed"
            ref = await system.spawn(Counter, 1, host="fuzzed")
            assert await ref.ask(Counter.incr) == 2  # and serves a legitimate client
        print(f"fuzz: {2 * CASES} connections, RSS {before} -> {before + grown} KiB")


async def test_a_request_frame_of_the_wrong_length_ends_its_connection_not_the_host(
    tmp_path: Path,
) -> None:
    """A request too short for its fields once failed in the request's own task,
    which ended the host's system: any peer that had the secret could stop a
    host with one frame. Each connection here is a new peer (a node that
    reconnects is a fresh peer, not one that stays down)."""
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(os.urandom(32).hex().encode())
    secret_file.chmod(0o600)
    secret = secret_file.read_bytes().strip()
    hello = _frame(pickle.dumps(("hello", "short-peer", "short", None, "3.11")))
    async with radon_host(secret_file, "target") as (proc, line):
        address = line.split()[1]
        for kind in ("code_has", "load", "stop_atom", "activate", "retire"):
            for fields in ((kind,), (kind, 1), (kind, 1, 2, 3, 4, 5, 6, 7, 8, 9)):
                await _case(address, hello + _frame(pickle.dumps(fields)), secret)
        assert proc.returncode is None
        async with open_system() as system:
            assert await system.connect_host(address, secret_file=secret_file) == "target"
            ref = await system.spawn(Counter, 1, host="target")
            assert await ref.ask(Counter.incr) == 2
