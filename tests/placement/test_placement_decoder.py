"""Property tests of the frame decoder and the handshake (issue #14).

Whatever bytes arrive, the decoder gives frames (or ``undecodable`` ones, for a
payload that does not unpickle) or raises :class:`ProtocolError`, which closes
that one connection; nothing else escapes. Frames larger than a part arrive in
parts, mixed with whole frames, and come out whole and in order however the
stream is split into reads. The server side of the handshake ends in a refusal
for anything but a peer that proves the secret.
"""

from __future__ import annotations

import itertools
import pickle
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from radon_actors import AuthenticationFailed, ProtocolError
from radon_actors.placement import _wire

SECRET = b"k" * 32
_PART = _wire.PART


def _stream(frames: list[tuple[Any, ...]], interleave: list[tuple[Any, ...]]) -> bytes:
    """``frames`` encoded as a sender does (large ones in parts), with the
    frames of ``interleave`` between the parts."""
    out = bytearray()
    extra = list(interleave)
    for frame in frames:
        data = _wire.encode(frame)
        if len(data) <= _PART + 4:
            out += data
            continue
        payload = memoryview(data)[4:]
        for start in range(0, len(payload), _PART):
            out += _wire.part(payload, start)
            if extra and start + _PART < len(payload):
                out += _wire.encode(extra.pop(0))
    for frame in extra:
        out += _wire.encode(frame)
    return bytes(out)


def _feed(data: bytes, cuts: list[int]) -> list[tuple[Any, ...]]:
    reader = _wire.FrameReader()
    frames: list[tuple[Any, ...]] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in itertools.pairwise(points):
        frames.extend(reader.feed(data[a:b]))
    return frames


sizes = st.one_of(
    st.integers(0, 300), st.integers(_PART - 64, _PART + 64), st.integers(0, 3 * _PART)
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sizes, min_size=1, max_size=4),
    st.lists(st.integers(0, 300), max_size=6),
    st.lists(st.integers(0, 1 << 22), max_size=40),
)
def test_frames_in_parts_come_out_whole_and_in_order(
    blob_sizes: list[int], small: list[int], cuts: list[int]
) -> None:
    frames = [("tell", f"a.{i}", "h", (b"\x01" * n,), {}) for i, n in enumerate(blob_sizes)]
    interleave = [("reply", i, b"r" * n) for i, n in enumerate(small)]
    got = _feed(_stream(frames, interleave), cuts)
    assert [f for f in got if f[0] == "tell"] == frames
    assert sorted(f[1] for f in got if f[0] == "reply") == list(range(len(small)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 700), max_size=8))
def test_any_bytes_give_frames_or_a_protocol_error(data: bytes, cuts: list[int]) -> None:
    try:
        frames = _feed(data, cuts)
    except ProtocolError:
        return
    assert all(isinstance(f, tuple) for f in frames)


headers = st.tuples(
    st.sampled_from([0, _wire.MORE, _wire.LAST, _wire.MORE | _wire.LAST]),
    st.integers(0, _PART + 2),
    st.binary(max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(headers, max_size=6))
def test_made_up_part_headers_give_frames_or_a_protocol_error(
    pieces: list[tuple[int, int, bytes]],
) -> None:
    # Any flags, any announced size, any payload (usually shorter than said).
    data = b"".join((size | flags).to_bytes(4, "big") + body for flags, size, body in pieces)
    try:
        frames = _wire.FrameReader().feed(data)
    except ProtocolError:
        return
    assert all(isinstance(f, tuple) for f in frames)


def test_parts_past_the_frame_limit_are_refused_without_buffering_them() -> None:
    reader = _wire.FrameReader()
    chunk = _wire.part(memoryview(b"\x00" * (_PART + 1)), 0)  # a MORE part of PART bytes
    with pytest.raises(ProtocolError, match="limit"):
        for _ in range(_wire.MAX_FRAME // _PART + 1):
            reader.feed(chunk)


def test_a_single_part_frame_is_refused() -> None:
    # A LAST part with nothing before it, no larger than a whole frame may be:
    # not what a sender does.
    data = pickle.dumps(("ping",))
    with_flag = (len(data) | _wire.LAST).to_bytes(4, "big") + data
    with pytest.raises(ProtocolError, match="no larger than one part"):
        _wire.FrameReader().feed(with_flag)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=120), st.booleans())
def test_the_server_handshake_refuses_whatever_is_not_a_proof(data: bytes, close: bool) -> None:
    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        await client.send_all(data)
        if close:
            await client.send_eof()
        try:
            await _wire.server_handshake(server, SECRET)
        except (ProtocolError, AuthenticationFailed, trio.TooSlowError):
            return
        raise AssertionError(f"accepted {data!r}")

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=120))
def test_the_client_handshake_refuses_a_server_without_the_secret(data: bytes) -> None:
    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        await server.send_all(data)
        await server.aclose()
        try:
            await _wire.client_handshake(client, SECRET)
        except (ProtocolError, AuthenticationFailed, trio.TooSlowError, trio.BrokenResourceError):
            return
        raise AssertionError(f"accepted {data!r}")

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
