"""The kvstore's RESP parser and encoder: Redis's reading of the protocol.

Each case's expectation is what redis-server 7.0 does with the same bytes
(checked against a real one; the byte-for-byte comparisons over a socket are in
``test_kvstore_parity.py``). Hypothesis checks that any split of a stream into
reads gives the same commands, which is what a resumable parser must guarantee.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from examples.kvstore._resp import (
    MAX_INLINE,
    Error,
    Map,
    ProtocolError,
    RespParser,
    Simple,
    Verbatim,
    encode,
    parse_int,
    split_args,
)


def parse(*reads: bytes) -> list[list[bytes]]:
    p = RespParser()
    out: list[list[bytes]] = []
    for data in reads:
        out += p.parse(data)
    return out


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"*x\r\n", "invalid multibulk length"),
        (b"*007\r\n", "invalid multibulk length"),  # no leading zeros, as string2ll
        (b"*+1\r\n", "invalid multibulk length"),
        (b"*1\r\n+3\r\n", "expected '$', got '+'"),
        (b"*1\r\n$-5\r\n", "invalid bulk length"),
        (b"*1\r\n$04\r\nPING\r\n", "invalid bulk length"),
        (b"*1\r\n$99999999999\r\n", "invalid bulk length"),  # over 512 MiB
        (b'SET k "a"b\r\n', "unbalanced quotes in request"),
        (b"SET k 'a\r\n", "unbalanced quotes in request"),
        (b'ECHO ab"cd"ef\r\n', "unbalanced quotes in request"),
        (b"A" * (MAX_INLINE + 1), "too big inline request"),
        (b"*" + b"1" * (MAX_INLINE + 1), "too big mbulk count string"),
        (b"*1\r\n$" + b"1" * (MAX_INLINE + 1), "too big bulk count string"),
    ],
)
def test_malformed_input_gets_redis_s_error(bad: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message.replace("$", r"\$").replace("+", r"\+")):
        parse(bad)


def test_what_redis_accepts() -> None:
    # The two bytes after a bulk payload are skipped, not checked (as Redis).
    assert parse(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n") == [[b"PING"], [b"PING"]]
    # A zero or negative count is an empty command: nothing to run.
    assert parse(b"*0\r\n*-1\r\nPING\r\n") == [[b"PING"]]
    # Inline commands: LF alone ends one, quotes and escapes as sdssplitargs.
    assert parse(b'SET k "a b"\nGET k\n') == [[b"SET", b"k", b"a b"], [b"GET", b"k"]]
    assert parse(b"ECHO 'it\\'s'\r\n") == [[b"ECHO", b"it's"]]
    assert parse(b'ECHO "\\x41\\n\\t\\"q"\r\n') == [[b"ECHO", b'A\n\t"q']]
    assert parse(b"   \r\n\n") == []  # blank lines are skipped
    assert parse(b'ECHO ab"cd"\r\n') == [[b"ECHO", b"abcd"]]


def test_a_limit_on_the_query_buffer() -> None:
    p = RespParser(max_query_buffer=100)
    p.feed(b"*1\r\n$200\r\n" + b"x" * 50)
    assert p.commands() == []
    with pytest.raises(ProtocolError, match="query buffer limit exceeded"):
        p.feed(b"x" * 60)


def test_a_big_value_arriving_in_small_reads() -> None:
    value = bytes(range(256)) * 4096  # 1 MiB
    wire = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(value), value)
    p = RespParser()
    got: list[list[bytes]] = []
    for i in range(0, len(wire), 1000):
        p.feed(wire[i : i + 1000])
        got += p.commands()
    assert got == [[b"SET", b"k", value], [b"PING"]]


def test_parse_int_is_redis_s_string2ll() -> None:
    for good, value in [(b"0", 0), (b"-1", -1), (b"42", 42), (b"9223372036854775807", 2**63 - 1)]:
        assert parse_int(good) == value
    assert parse_int(b"-9223372036854775808") == -(2**63)
    for bad in [b"", b"007", b"+5", b" 5", b"5 ", b"1_000", b"-0", b"9223372036854775808", b"1e3"]:
        assert parse_int(bad) is None, bad


def test_a_nul_byte_in_an_inline_command_leaves_it_incomplete_as_in_redis() -> None:
    # Redis looks for the newline with strchr, which stops at the NUL: no reply,
    # not even to what follows, until the line is too big. (This once looped
    # for ever, growing a list, in split_args.)
    assert parse(b"ECHO ab\x00cd\r\nPING\r\n") == []
    assert parse(b"\x00\xd71\r\n") == []
    with pytest.raises(ProtocolError, match="too big inline request"):
        parse(b"PING\x00\r\n", b"x" * MAX_INLINE)
    assert split_args(b"a b\x00c d") == [b"a", b"b"]  # a C string ends at the NUL


def test_split_args_edge_cases() -> None:
    assert split_args(b"") == []
    assert split_args(b'"" x') == [b"", b"x"]
    assert split_args(b'"a\\') is None  # an escape at the end: still unterminated
    assert split_args(b"'a\\b'") == [b"a\\b"]  # single quotes escape only the quote


def _multibulk(cmd: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in cmd)


commands = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), max_size=8)


@given(commands, st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_any_split_into_reads_gives_the_same_commands(
    cmds: list[list[bytes]], cuts: list[int]
) -> None:
    wire = b"".join(_multibulk(c) for c in cmds)
    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert parse(*pieces) == cmds


class _General(RespParser):
    """The parser without its one-split fast path (``_resp._split``)."""

    @staticmethod
    def _fast_split(data: bytes) -> list[list[bytes]] | None:
        return None


def _reading(parser: RespParser, data: bytes) -> list[list[bytes]] | str:
    try:
        return parser.parse(data)
    except ProtocolError as exc:
        return f"error: {exc}"


def _reading_buffered(parser: RespParser, data: bytes) -> list[list[bytes]] | str:
    try:
        parser.feed(data)
        return parser.commands()
    except ProtocolError as exc:
        return f"error: {exc}"


_FRAGMENTS = [b"*", b"$", b"\r\n", b"\r", b"\n", b"0", b"1", b"3", b"12", b"-", b"+", b" ", b"_"]


@given(
    st.lists(
        st.one_of(st.sampled_from(_FRAGMENTS), st.binary(max_size=6)),
        max_size=40,
    )
)
def test_the_fast_path_reads_any_bytes_as_the_general_one(fragments: list[bytes]) -> None:
    data = b"".join(fragments)
    assert _reading(RespParser(), data) == _reading(_General(), data)
    assert _reading_buffered(RespParser(), data) == _reading(_General(), data)


@given(commands.filter(bool), st.integers(min_value=0, max_value=200), st.binary(max_size=3))
def test_the_fast_path_reads_commands_with_a_byte_changed_as_the_general_one(
    cmds: list[list[bytes]], at: int, new: bytes
) -> None:
    wire = b"".join(_multibulk(c) for c in cmds)
    at %= len(wire)
    changed = wire[:at] + new + wire[at + 1 :]
    assert _reading(RespParser(), changed) == _reading(_General(), changed)
    assert _reading_buffered(RespParser(), changed) == _reading(_General(), changed)


def test_arguments_holding_crlf_and_empty_ones_read_whole() -> None:
    cmds = [[b"SET", b"a\r\nb", b""], [b"ECHO", b"\r\n"], [b"GET", b"$1\r\nx"]]
    assert parse(b"".join(_multibulk(c) for c in cmds)) == cmds


@given(st.lists(st.lists(st.from_regex(rb"[A-Za-z0-9]{1,8}", fullmatch=True), min_size=1)))
def test_inline_words_round_trip(cmds: list[list[bytes]]) -> None:
    wire = b"".join(b" ".join(c) + b"\r\n" for c in cmds)
    assert parse(wire) == cmds


def test_resp3_encoding() -> None:
    out = bytearray()
    reply = [None, Map({b"proto": 3}), Verbatim(b"# Server"), Simple("OK"), Error("ERR x"), 5]
    encode(reply, out, proto=3)
    assert bytes(out) == (
        b"*6\r\n_\r\n%1\r\n$5\r\nproto\r\n:3\r\n=12\r\ntxt:# Server\r\n+OK\r\n-ERR x\r\n:5\r\n"
    )
    out = bytearray()
    encode([None, Map({b"proto": 2}), Verbatim(b"x")], out)  # RESP2: flat, plain
    assert bytes(out) == b"*3\r\n$-1\r\n*2\r\n$5\r\nproto\r\n:2\r\n$1\r\nx\r\n"
