"""The value format of radon:atom 0.4.0 (docs/standard.md, *Values*): what
crosses the sandbox boundary, how it reads back, and what a reader refuses."""

from __future__ import annotations

import collections
import contextlib
import enum
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_atoms import Counter, Point

from radon_actors import ForeignError, Record, Ref, open_system, portable
from radon_actors.sandbox import _value
from radon_actors.sandbox._value import Limits, Reader, ValueRejected, Writer, known_class
from radon_actors.testing import cell_of

pytestmark = pytest.mark.usefixtures("sandbox_component")


class Colour(enum.IntEnum):
    RED = 1


@portable
class Shade(enum.IntEnum):
    DARK = 2


Pair = collections.namedtuple("Pair", "a b")


@portable
class Tagged(str):
    """A registered subclass of a built-in type."""


PLAIN: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**53 - 1,
    2**53,
    -(2**53),
    2**100,
    -(3**80),
    0.0,
    -0.0,
    1.5,
    1e308,
    5e-324,
    float("inf"),
    float("-inf"),
    "",
    "ascii",
    "é✓",
    "\U0001f600",
    "\ud800",  # a lone surrogate
    'quote " and \\ and \n',
    "x" * 10_000,
    b"",
    bytes(range(256)),
    (),
    (1, "a", None),
    [],
    [1, [2, [3, (4,)]]],
    {},
    {"a": 1},
    {"$a": 1},  # one key that looks like a tag: written as a $map
    {"$a": 1, "$b": 2},
    {"a": 1, 2: "b", (1, 2): [3.5], None: b"x"},
    set(),
    {1, 2, 3},
    frozenset({"a", (1, 2)}),
    Point(1, 2),
    Tagged("ok"),
    Shade.DARK,
    KeyError("missing"),
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
    if isinstance(a, BaseException):
        return a.args == b.args
    return bool(a == b)


def _refuse(_body: Any) -> Any:
    raise ValueRejected("no references here")


WRITER = Writer(lambda ref: [0, ref.id, ref.name])
READER = Reader(Limits(), _refuse, known_class)


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_values_round_trip_with_their_types(value: Any) -> None:
    text = WRITER.value(value)
    assert text.isascii()
    json.loads(text)  # always JSON (a strict reader: no NaN tokens)
    assert _same(READER.value(text), value)
    args, kwargs = READER.message(WRITER.message((value, value), {"k": value}))
    assert _same(args, (value, value)) and _same(kwargs, {"k": value})


def test_nan_round_trips() -> None:
    assert math.isnan(READER.value(WRITER.value(float("nan"))))


def test_json_types_are_written_as_plain_json() -> None:
    assert WRITER.value([1, "a", None, True, 2.5, {"k": []}]) == '[1,"a",null,true,2.5,{"k":[]}]'
    assert WRITER.message((1, "a"), {}) == '[1,"a"]'
    assert WRITER.message((), {"by": 2}) == '[{"$kw":{"by":2}}]'
    assert WRITER.value(2**60) == '{"$int":"1152921504606846976"}'  # past a double's precision
    assert WRITER.value((1,)) == '{"$tuple":[1]}'
    assert WRITER.value(b"\x00") == '{"$bytes":"AA=="}'


def test_unregistered_records_and_subclasses_read_as_data_that_keeps_its_name() -> None:
    @__import__("dataclasses").dataclass
    class Local:
        n: int

    assert READER.value(WRITER.value(Local(3))) == Record(_value.record_name(Local), {"n": 3})
    red = READER.value(WRITER.value(Colour.RED))  # unregistered: an int that keeps its name
    assert red == 1 and isinstance(red, int) and type(red) is not Colour
    assert READER.value(WRITER.value(Pair(1, 2))) == (1, 2)


def test_exceptions_cross_as_data() -> None:
    class Invalid(ValueError):
        pass

    exc = READER.value(WRITER.value(Invalid("bad", 3)))
    assert isinstance(exc, ForeignError) and isinstance(exc, ValueError)
    assert exc.type_name.endswith(":test_exceptions_cross_as_data.<locals>.Invalid")
    assert str(exc) == "('bad', 3)"
    # Built-in exceptions and registered classes are themselves.
    assert type(READER.value(WRITER.value(KeyError("k")))) is KeyError


@pytest.mark.parametrize(
    "value",
    [lambda: 1, object(), bytearray(b"x"), range(3), [1, {2: memoryview(b"")}]],
    ids=repr,
)
def test_values_with_no_portable_form_are_refused_by_the_writer(value: Any) -> None:
    with pytest.raises(_value.MessageNotPortable, match="cannot cross the sandbox boundary"):
        WRITER.value(value)


def test_a_cycle_is_refused_by_the_writer() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(_value.MessageNotPortable, match="nests too deeply"):
        WRITER.value(loop)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a value"),
        ("[1,", "not a value"),
        ("[1] x", "text after a value"),
        ("NaN", "not JSON"),
        ("[Infinity]", "not JSON"),
        ('{"$nope":1}', "unknown tag"),
        ('{"$int":"1_000"}', "malformed \\$int"),
        ('{"$int":" 5"}', "malformed \\$int"),
        ('{"$int":"' + "9" * 5000 + '"}', "malformed \\$int"),
        ('{"$float":"1.5"}', "malformed \\$float"),
        ('{"$bytes":"!!"}', "not valid base64"),
        ('{"$set":[[1]]}', "not hashable"),
        ('{"$map":[[[1],2]]}', "not hashable"),
        ('{"$map":[1]}', "pairs"),
        ('{"$tuple":1}', "array"),
        ('{"$ref":[0,"a",null]}', "no references here"),
        ('{"$global":"os:system"}', "no class references"),
        ('{"$record":["x:Y"]}', "\\$record is"),
        ('{"$error":{"type":1}}', "\\$error holds"),
        ('{"$kw":{"not an identifier":1}}', "keyword arguments"),
        ('"\\ud800\\u0000"', None),  # escapes are fine
    ],
)
def test_the_reader_refuses_malformed_values(text: str, reason: str | None) -> None:
    if reason is None:
        READER.value(text)
        return
    with pytest.raises(ValueRejected, match=reason):
        READER.value(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 65 + "]" * 65, "nests deeper than the 64"),
        ('["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', None),
        ("[" + "0," * 1_000_000 + "0]", "more than the 1,000,000 items"),
        ('"' + "x" * (16 * 1024 * 1024) + '"', "longer than"),
    ],
)
def test_the_reader_checks_its_limits_before_parsing(text: str, reason: str | None) -> None:
    if reason is None:
        assert READER.value(text)  # brackets inside a string do not nest
        return
    with pytest.raises(ValueRejected, match=reason):
        READER.value(text)


def test_limits_are_the_readers() -> None:
    small = Reader(Limits(max_length=100, max_depth=2, max_items=5), _refuse, known_class)
    assert small.value("[[1,2]]") == [[1, 2]]
    with pytest.raises(ValueRejected, match="nests deeper than the 2"):
        small.value("[[[1]]]")
    with pytest.raises(ValueRejected, match="more than the 5 items"):
        small.value("[1,2,3,4,5,6]")
    with pytest.raises(ValueRejected, match="longer"):
        small.value('"' + "x" * 200 + '"')


# hypothesis ----------------------------------------------------------------
SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
)
HASHABLE = st.recursive(
    SCALARS, lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=8
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(HASHABLE, inner, max_size=3)
        | st.sets(HASHABLE, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_value_round_trips(value: Any) -> None:
    assert _same(READER.value(WRITER.value(value)), value)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_any_text_is_read_or_refused_never_anything_else(text: str) -> None:
    with contextlib.suppress(ValueRejected):
        READER.value(text)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "$int",
                    "$float",
                    "$tuple",
                    "$set",
                    "$frozenset",
                    "$bytes",
                    "$map",
                    "$kw",
                    "$opaque",
                    "$record",
                    "$typed",
                    "$error",
                    "$ref",
                    "$global",
                    "a",
                    "$x",
                ]
            ),
            inner,
            max_size=2,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=1000, deadline=None)
@given(JSONISH)
def test_adversarial_tagged_json_is_read_or_refused(tree: Any) -> None:
    # Well-formed JSON with tags in every wrong shape: a reader builds plain
    # data or refuses, and never raises anything else.
    text = json.dumps(tree)
    try:
        READER.value(text)
        READER.message(text)
    except ValueRejected:
        pass


# through a real guest -------------------------------------------------------
CROSSING = [v for v in PLAIN if not isinstance(v, (BaseException, Tagged, Shade))]


@pytest.mark.parametrize("value", CROSSING, ids=repr)
async def test_the_guest_returns_what_it_was_sent_with_its_type(value: Any) -> None:
    async with open_system() as system:
        native = await system.spawn(Counter)
        boxed = await system.spawn(Counter, sandbox=True)
        assert _same(await native.ask(Counter.echo, value), value)
        assert _same(await boxed.ask(Counter.echo, value), value)


async def test_refs_cross_as_handles_of_the_instance() -> None:
    async with open_system() as system:
        a = await system.spawn(Counter)
        b = await system.spawn(Counter)
        boxed = await system.spawn(Counter, sandbox=True)
        assert await boxed.ask(Counter.echo, [a, b, a]) == [a, b, a]
        cell = cell_of(boxed)
        assert cell is not None
        guest = cell.instance
        # Handle 0 is the atom itself; each new Ref got the next number once.
        assert [r.id for r in guest.side.refs] == [boxed.id, a.id, b.id]
        assert isinstance(guest.side.refs[1], Ref)


def test_a_typed_value_this_side_cannot_build_keeps_its_name() -> None:
    # As on a host that never imported the class: the built-in value, which
    # still carries its type's name, is written back as such, and becomes the
    # class where it is registered (here, after pickling between hosts).
    import pickle

    blind = Reader(Limits(), _refuse, lambda _name: None)
    text = WRITER.value(Tagged("ok"))
    value = blind.value(text)
    assert value == "ok" and isinstance(value, str) and type(value) is not Tagged
    assert WRITER.value(value) == text
    assert type(pickle.loads(pickle.dumps(value))) is Tagged
    unknown = blind.value('{"$typed":["nowhere:Thing",[1,2]]}')
    assert unknown == [1, 2] and type(pickle.loads(pickle.dumps(unknown))) is not list
