"""The Python codec of radon:atom 0.3.0 (docs/standard.md, *Codec*): plain data
crosses as marshal version 4, everything else as a pickle, told apart by the
first byte; values keep their exact types both ways."""

from __future__ import annotations

import collections
import enum
import marshal
import math
from typing import Any

import pytest
from sandbox_atoms import Counter, Point

from radon_actors import MessageNotPortable, open_system
from radon_actors.sandbox import _codec, _instance
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")


class Colour(enum.IntEnum):
    RED = 1


Pair = collections.namedtuple("Pair", "a b")

PLAIN: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**31,
    -(2**31) - 1,
    2**100,
    -(3**80),
    0.0,
    -0.0,
    1.5,
    1e308,
    float("inf"),
    float("-inf"),
    "",
    "ascii",
    "é✓",
    "\U0001f600",
    "\ud800",  # a lone surrogate
    "x" * 10_000,
    b"",
    bytes(range(256)),
    (),
    (1, "a", None),
    [],
    [1, [2, [3, (4,)]]],
    {},
    {"a": 1, 2: "b", (1, 2): [3.5]},
    set(),
    {1, 2, 3},
    frozenset({"a"}),
]

# Not plain: a pickle, so their types survive (marshal would turn a bytearray
# into bytes, and refuses subclasses).
NOT_PLAIN: list[Any] = [
    bytearray(b"ab"),
    Colour.RED,
    Pair(1, 2),
    collections.OrderedDict(a=1),
    list(range(100)),  # large containers are pickled (the plain scan is bounded)
    Point(1, 2),
    [bytearray(b"x")],
]


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (and -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (a != a and b != b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_cross_as_marshal_and_round_trip(value: Any) -> None:
    for text in (_codec.enc_value(value), _codec.enc_message((value,), {})):
        assert text[0] != "\x80"  # not a pickle
    assert _same(_codec.dec(_codec.enc_value(value)), value)
    assert _same(_codec.dec(_codec.enc_message((value,), {"k": value})), ((value,), {"k": value}))


@pytest.mark.parametrize("value", NOT_PLAIN, ids=repr)
def test_other_values_cross_as_pickles_and_keep_their_types(value: Any) -> None:
    for text in (_codec.enc_value(value), _codec.enc_message((value,), {})):
        assert text[0] == "\x80"  # a pickle's PROTO opcode
    assert _same(_codec.dec(_codec.enc_value(value)), value)


def test_shared_objects_stay_shared_in_containers() -> None:
    inner = [1, 2]
    args, _kwargs = _codec.dec(_codec.enc_message(([inner, inner],), {}))
    assert args[0][0] is args[0][1]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_every_pinned_marshal_version_decodes(version: int) -> None:
    value = ((1, "é", b"\x00", 2.5, None, True), {"k": [1, {2: 3}]})
    assert _same(_codec.dec(marshal.dumps(value, version).decode("latin-1")), value)


def test_nan_round_trips() -> None:
    assert math.isnan(_codec.dec(_codec.enc_value(float("nan"))))


# What the guest can rebuild: not the classes defined in this test module.
CROSSING = PLAIN + [v for v in NOT_PLAIN if not isinstance(v, (Colour, Pair))]


@pytest.mark.parametrize("value", CROSSING, ids=repr)
async def test_the_guest_returns_what_it_was_sent_with_its_type(value: Any) -> None:
    async with open_system() as system:
        native = await system.spawn(Counter)
        boxed = await system.spawn(Counter, sandbox=True)
        assert _same(await native.ask(Counter.echo, value), value)
        assert _same(await boxed.ask(Counter.echo, value), value)


@pytest.mark.parametrize(
    ("value", "marshalled"),
    [(5, True), ("text", True), (None, True), (2.5, True), ([1, 2], False), (Point(1, 2), False)],
)
async def test_the_guest_marshals_scalar_results_only(value: Any, marshalled: bool) -> None:
    async with open_system() as system:
        boxed = await system.spawn(Counter, sandbox=True)
        cell = cell_of(boxed)
        assert cell is not None
        guest: _instance.GuestAtom = cell.instance
        for message in (_codec.enc_message((value,), {}), _codec.enc(((value,), {}))):
            # The guest reads either codec, and picks its own for the result.
            out = guest._invoke_sync("handle", "echo", message)
            assert out[0] == "d"
            assert (out[1] != "\x80") is marshalled
            assert _same(_codec.dec(out[1:]), value)


@pytest.mark.parametrize("value", PLAIN + NOT_PLAIN, ids=repr)
def test_the_guest_writer_marshals_scalars_only_and_the_host_reads_it(value: Any) -> None:
    # The guest writes with the same module (_codec is bundled into it).
    scalar = type(value) in _codec.SCALARS
    for text in (_codec.enc_scalar_value(value), _codec.enc_scalar_message((value,), {})):
        assert (text[0] != "\x80") is scalar
    assert _same(_codec.dec(_codec.enc_scalar_value(value)), value)
    message = _codec.enc_scalar_message((value,), {"k": value})
    assert _same(_codec.dec(message), ((value,), {"k": value}))


def test_a_message_the_guest_writer_cannot_pickle_is_not_portable() -> None:
    with pytest.raises(MessageNotPortable, match="cannot leave the sandbox"):
        _codec.enc_scalar_message((lambda: None,), {})
