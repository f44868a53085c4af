"""The Nexmark generator: java.util.Random bit for bit, and Beam's events from it.

The golden values were produced on a JVM (OpenJDK 17): ``java.util.Random``
itself, and a standalone transcription of Beam's ``GeneratorConfig``,
``Generator`` and ``sources.generator.model`` classes run with the same
configurations. Events are compared through a canonical text line (every
field, ``|``-separated) and a SHA-256 of a run of lines.
"""

from __future__ import annotations

import collections
import hashlib
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.nexmark._generator import (
    BASE_TIME,
    DEFAULT_CONFIG,
    FIRST_AUCTION_ID,
    FIRST_PERSON_ID,
    NexmarkConfig,
    event,
    event_id,
    event_timestamp,
    events,
    inter_event_delays_us,
    watermark,
)
from examples.nexmark._javarandom import JavaRandom, java_div, java_rem, java_round
from examples.nexmark._model import Auction, Bid, Event, Person

US_STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"}
US_CITIES = {"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond"}
US_CITIES |= {"Seattle", "Kent", "Cheyenne"}
FIRST_NAMES = {"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah"}
FIRST_NAMES |= {"Deiter", "Walter"}
LAST_NAMES = {"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones"}
LAST_NAMES |= {"Noris"}


# ----------------------------------------------------------------------
# java.util.Random
# ----------------------------------------------------------------------
def test_java_random_known_values() -> None:
    assert JavaRandom(42).next_int() == -1170105035
    assert JavaRandom(42).next_int(10) == 0
    assert JavaRandom(0).next_long() == -4962768465676381896
    assert JavaRandom(0).next_double() == 0.730967787376657
    assert JavaRandom(0).next_boolean() is True


def test_java_random_sequences_match_the_jvm() -> None:
    r = JavaRandom(42)
    assert [r.next_int(100) for _ in range(5)] == [30, 63, 48, 84, 70]
    r = JavaRandom(-1)  # a negative seed: setSeed keeps the low 48 bits of the long
    assert r.next_long() == 4961115982468162243
    assert r.next_int() == 52699159
    assert r.next_int(64) == 35  # a power of two: the high bits of one draw
    assert struct.pack(">d", r.next_double()).hex() == "3fe52fcbccce6dda"
    r = JavaRandom(2**63 - 1)
    assert (r.next_int(), r.next_int(13)) == (1155099827, 8)


def test_java_random_rejection_loop() -> None:
    bound = (1 << 30) + 1  # half of all 31-bit draws fall in the biased tail
    raw = JavaRandom(7)
    draws = [raw.next(31) for _ in range(8)]
    assert sum(d >= bound for d in draws[:3]) == 3  # the first value needs a fourth draw
    r = JavaRandom(7)
    assert [r.next_int(bound) for _ in range(4)] == [20678044, 747989380, 1053566254, 755731200]


def test_java_random_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="bound"):
        JavaRandom(1).next_int(0)
    with pytest.raises(ValueError, match="bound"):
        JavaRandom(1).next_int(1 << 31)


def test_java_arithmetic() -> None:
    assert (java_div(-7, 2), java_rem(-7, 2)) == (-3, -1)
    assert (java_div(7, -2), java_rem(7, -2)) == (-3, 1)
    assert (java_div(-7, -2), java_rem(-7, -2)) == (3, -1)
    assert [java_round(x) for x in (2.5, -2.5, 0.49999999999999994, -0.5, 1e15 + 0.5)] == [
        3,
        -2,
        0,
        0,
        1_000_000_000_000_001,
    ]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.integers(1, 2**31 - 1))
def test_next_int_bound_is_in_range_and_repeatable(seed: int, bound: int) -> None:
    first = [JavaRandom(seed).next_int(bound) for _ in range(2)]
    assert first[0] == first[1]
    assert 0 <= first[0] < bound


# ----------------------------------------------------------------------
# Beam's events, exactly
# ----------------------------------------------------------------------
def _line(config: NexmarkConfig, number: int) -> str:
    ts, e = event(config, number)
    head = f"{ts}|{watermark(config, number)}|"
    if isinstance(e, Person):
        return head + (
            f"P|{e.id}|{e.name}|{e.email_address}|{e.credit_card}|{e.city}|{e.state}"
            f"|{e.date_time}|{e.extra}"
        )
    if isinstance(e, Auction):
        return head + (
            f"A|{e.id}|{e.item_name}|{e.description}|{e.initial_bid}|{e.reserve}|{e.date_time}"
            f"|{e.expires}|{e.seller}|{e.category}|{e.extra}"
        )
    return head + f"B|{e.auction}|{e.bidder}|{e.price}|{e.date_time}|{e.extra}"


def _digest(config: NexmarkConfig, start: int, count: int) -> str:
    text = "".join(_line(config, n) + "\n" for n in range(start, start + count))
    return hashlib.sha256(text.encode()).hexdigest()


def test_first_events_are_beams() -> None:
    assert event(DEFAULT_CONFIG, 0) == (
        BASE_TIME,
        Person(
            id=1000,
            name="Peter Jones",
            email_address="nhd@xcat.com",
            credit_card="7241 7320 9143 4888",
            city="Portland",
            state="WY",
            date_time=BASE_TIME,
            extra=r"WN_HS_bnpkkiwhwana_L^`KZjdgsid`K]MLU[aaOH`ztxbulvlxtkn_ZZ^T\mqgdjzvlkymsmfrhkfVYSXK_OY"
            r"[aVYVKa\X^]RO]OYguwiduWJNQLLaMLHOTaHY_J[YKWaUOSJN_VHWXZ]`SgbnjqeVVQ\[[",
        ),
    )
    _, auction = event(DEFAULT_CONFIG, 1)
    assert isinstance(auction, Auction)
    assert (auction.id, auction.item_name, auction.description) == (
        1000,
        "wkx mgee",
        "eszpqxtdxrvwmmywkmogoahf",
    )
    assert (auction.initial_bid, auction.reserve, auction.expires - auction.date_time) == (
        28873,
        29448,
        11,
    )
    assert (auction.seller, auction.category, len(auction.extra)) == (1000, 13, 346)
    assert event(DEFAULT_CONFIG, 4) == (
        BASE_TIME,
        Bid(
            auction=1000,
            bidder=1001,
            price=32530001,
            date_time=BASE_TIME,
            extra=r"fdiysaV^]NLVsbolvyqwgticfdrwdyiyofziYMU\Z`UaTQO][NX\RM]WPYTOuwogvszlxjrcNOORM",
        ),
    )
    assert _line(DEFAULT_CONFIG, 999_999) == (
        "1436918499999|1436918499999|B|60955|20901|11004|1436918499999|"
        r"RR^HVYaocjgz`NRWRahwpvytLQ^[ULfxpmjejzratb`T_R_MSKLZ\]U``^_Xmjhfa"
    )


@pytest.mark.parametrize(
    ("config", "start", "count", "digest"),
    [
        (
            DEFAULT_CONFIG,
            0,
            1000,
            "6a1a91bb3313139c60c368b16acc17075d2f9b463434d9670c810914864a06df",
        ),
        (
            NexmarkConfig(out_of_order_group_size=100),
            0,
            500,
            "4a4e846f01271cbbcf302baf3d01f84093f81522426dd80d6facd8c7bc1e4806",
        ),
        (
            NexmarkConfig(first_event_rate=10_000, next_event_rate=1000, rate_shape="square"),
            2_999_900,
            300,
            "9ac97e27b7fcbe9cc1c7f2909406a5039abde964ef50951bb121eb7d86a54362",
        ),
        (
            NexmarkConfig(
                first_event_rate=10_000,
                next_event_rate=2000,
                num_event_generators=3,
                rate_period_sec=60,
                first_event_id=1_000_000,
                out_of_order_group_size=7,
            ),
            123_456_789,
            300,
            "fb8360dea8831204a8b5f7a7b07559c63355247af345f930ba4862a5660b73d6",
        ),
    ],
    ids=["default", "out-of-order", "square-rate", "sine-rate-split"],
)
def test_event_runs_match_beam_on_the_jvm(
    config: NexmarkConfig, start: int, count: int, digest: str
) -> None:
    assert _digest(config, start, count) == digest


def test_any_change_to_an_event_changes_the_digest() -> None:
    # The digest is a real check: a one-cent difference in one event is caught.
    good = _digest(DEFAULT_CONFIG, 0, 5)
    lines = [_line(DEFAULT_CONFIG, n) for n in range(5)]
    lines[4] = lines[4].replace("|32530001|", "|32530002|")
    assert hashlib.sha256("".join(x + "\n" for x in lines).encode()).hexdigest() != good


# ----------------------------------------------------------------------
# Determinism
# ----------------------------------------------------------------------
def test_events_is_event_per_number() -> None:
    config = NexmarkConfig(out_of_order_group_size=13)
    run = list(events(config, 300))
    assert run == [event(config, n) for n in range(300)]
    assert list(events(config, 50, start=250)) == run[250:]
    assert list(events(config, 0)) == []


@settings(max_examples=60, deadline=None)
@given(
    number=st.integers(0, 10**12),
    first_event_id=st.integers(0, 10**12),
    group=st.integers(1, 2000),
)
def test_any_event_number_gives_the_same_event_twice(
    number: int, first_event_id: int, group: int
) -> None:
    config = NexmarkConfig(first_event_id=first_event_id, out_of_order_group_size=group)
    ts, made = event(config, number)
    assert (ts, made) == event(replace(config), number)
    # The kind follows the id's place in its round of 50: 1 person, 3 auctions, 46 bids.
    place = event_id(config, number) % 50
    expected: type[Event] = Person if place < 1 else Auction if place < 4 else Bid
    assert type(made) is expected
    assert made.date_time == ts == event_timestamp(config, number)


def test_event_numbers_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="start at 0"):
        event(DEFAULT_CONFIG, -1)
    with pytest.raises(ValueError, match="negative"):
        list(events(DEFAULT_CONFIG, -1))


@pytest.mark.parametrize(
    "change",
    [
        {"first_event_rate": 0},
        {"out_of_order_group_size": 0},
        {"hot_auction_ratio": 0},
        {"rate_shape": "triangle"},
        {"rate_unit": "per_hour"},
        {"first_event_id": -1},
    ],
)
def test_invalid_configs_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"NexmarkConfig|rate_|first_event"):
        NexmarkConfig(**change)  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# The shape of the stream
# ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream() -> list[tuple[int, Event]]:
    return list(events(DEFAULT_CONFIG, 5000))


def test_mix_is_one_person_three_auctions_46_bids(stream: list[tuple[int, Event]]) -> None:
    kinds = collections.Counter(type(e).__name__ for _, e in stream)
    assert kinds == {"Person": 100, "Auction": 300, "Bid": 4600}
    shuffled = collections.Counter(
        type(e).__name__ for _, e in events(NexmarkConfig(out_of_order_group_size=50), 5000)
    )
    assert shuffled == kinds  # shuffling within groups of whole rounds keeps the mix


def test_ids_start_at_1000_and_count_up(stream: list[tuple[int, Event]]) -> None:
    people = [e.id for _, e in stream if isinstance(e, Person)]
    auctions = [e.id for _, e in stream if isinstance(e, Auction)]
    assert FIRST_PERSON_ID == FIRST_AUCTION_ID == 1000
    assert people == list(range(1000, 1100))
    assert auctions == list(range(1000, 1300))


def test_references_are_to_recent_or_nearly_created_ids(stream: list[tuple[int, Event]]) -> None:
    newest_person = newest_auction = None
    existing_auction = existing_bidder = bids = 0
    for _, e in stream:
        if isinstance(e, Person):
            newest_person = e.id
        elif isinstance(e, Auction):
            newest_auction = e.id
            assert newest_person is not None
            # A seller among the last 1000 people, or up to 9 not yet created.
            assert max(1000, newest_person - 999) <= e.seller <= newest_person + 10
        else:
            assert newest_person is not None and newest_auction is not None
            bids += 1
            # An auction among the last 100 in flight, or up to 10 not yet created.
            assert max(1000, newest_auction - 100) <= e.auction <= newest_auction + 10
            assert max(1000, newest_person - 999) <= e.bidder <= newest_person + 10
            existing_auction += e.auction <= newest_auction
            existing_bidder += e.bidder <= newest_person
    assert existing_auction > 0.95 * bids
    assert existing_bidder > 0.5 * bids  # the hot bidder is the batch's second person


def test_hot_auctions_get_most_bids(stream: list[tuple[int, Event]]) -> None:
    per_auction = collections.Counter(e.auction for _, e in stream if isinstance(e, Bid))
    (top, top_bids), *_ = per_auction.most_common(1)
    assert top == 1000  # the hot auction while there are fewer than 100
    assert top_bids > 4600 / 4

    # hot_auction_ratio 2: half of all bids are on the hot auction, the first of the latest
    # 100 (plus a random pick's 1/111). Beam decides with the first draw of Random(event id),
    # which changes slowly from one id to the next, so hot and cold bids come in runs of
    # thousands of events (as on the JVM): measure over a sample spread across 10M events.
    def hot_share(config: NexmarkConfig) -> float:
        hot = bids = 0
        for number in range(0, 10_000_000, 4999):
            _, e = event(config, number)
            if isinstance(e, Bid):
                newest = (number // 50) * 3 + 2  # the latest auction (from 0) so far
                bids += 1
                hot += e.auction == FIRST_AUCTION_ID + newest // 100 * 100
        return hot / bids

    assert 0.45 < hot_share(DEFAULT_CONFIG) < 0.56
    assert hot_share(NexmarkConfig(hot_auction_ratio=1)) < 0.05  # never hot


def test_fields_look_like_beams(stream: list[tuple[int, Event]]) -> None:
    person_sizes, auction_sizes, bid_sizes = [], [], []
    for _, e in stream:
        if isinstance(e, Person):
            first, last = e.name.split(" ")
            assert first in FIRST_NAMES and last in LAST_NAMES
            assert e.state in US_STATES and e.city in US_CITIES
            assert e.email_address.endswith(".com") and "@" in e.email_address
            assert [len(group) for group in e.credit_card.split(" ")] == [4, 4, 4, 4]
            fields = e.name + e.email_address + e.credit_card + e.city + e.state
            person_sizes.append(8 + len(fields) + len(e.extra))
        elif isinstance(e, Auction):
            assert 10 <= e.category <= 14
            assert e.reserve >= e.initial_bid >= 100
            assert e.expires > e.date_time
            assert 0 < len(e.item_name) < 20 and 0 < len(e.description) < 100
            auction_sizes.append(8 + len(e.item_name) + len(e.description) + 40 + len(e.extra))
        else:
            assert 100 <= e.price <= 100_000_000  # $1 to $1,000,000, log-uniform
            bid_sizes.append(32 + len(e.extra))
    # The extra padding brings each kind to about its configured average size.
    assert abs(sum(bid_sizes) / len(bid_sizes) - 100) < 5
    assert abs(sum(auction_sizes) / len(auction_sizes) - 500) < 25
    assert abs(sum(person_sizes) / len(person_sizes) - 200) < 25


# ----------------------------------------------------------------------
# Time: rate and watermark
# ----------------------------------------------------------------------
def test_timestamps_follow_the_rate(stream: list[tuple[int, Event]]) -> None:
    assert inter_event_delays_us(DEFAULT_CONFIG) == (100,)  # 10,000 events/s, one generator
    assert [ts for ts, _ in stream] == [BASE_TIME + n // 10 for n in range(5000)]
    slow = NexmarkConfig(first_event_rate=1000, next_event_rate=1000)
    assert [event_timestamp(slow, n) for n in (0, 1, 999, 1000)] == [
        BASE_TIME,
        BASE_TIME + 1,
        BASE_TIME + 999,
        BASE_TIME + 1000,
    ]
    # Beam splits the rate over its generators: each runs slower.
    assert inter_event_delays_us(NexmarkConfig(num_event_generators=100)) == (10_000,)


def test_a_square_rate_alternates() -> None:
    config = NexmarkConfig(first_event_rate=10_000, next_event_rate=1000, rate_shape="square")
    assert inter_event_delays_us(config) == (100, 1000)
    # 300 s at 10,000/s, then 300 s at 1,000/s, then again.
    assert event_timestamp(config, 3_000_000) == BASE_TIME + 300_000
    assert event_timestamp(config, 3_000_001) == BASE_TIME + 300_001
    assert event_timestamp(config, 3_300_000) == BASE_TIME + 600_000
    assert event_timestamp(config, 3_300_010) == BASE_TIME + 600_001
    samples = [event_timestamp(config, n) for n in range(0, 7_000_000, 997)]
    assert samples == sorted(samples)


def test_a_sine_rate_has_ten_steps() -> None:
    config = NexmarkConfig(first_event_rate=10_000, next_event_rate=1000)
    delays = inter_event_delays_us(config)
    assert len(delays) == 10
    assert delays[0] == 100 and max(delays) == 1000  # from the first rate down to the next


def test_watermarks_never_pass_later_events() -> None:
    in_order = [watermark(DEFAULT_CONFIG, n) for n in range(200)]
    assert in_order == [event_timestamp(DEFAULT_CONFIG, n) for n in range(200)]

    config = NexmarkConfig(out_of_order_group_size=100, first_event_rate=1000, next_event_rate=1000)
    stamps = [event_timestamp(config, n) for n in range(1000)]
    marks = [watermark(config, n) for n in range(1000)]
    assert stamps != sorted(stamps)  # out of order within groups
    assert marks == sorted(marks)
    for n in range(1000):
        assert marks[n] <= min(stamps[n:])
    assert marks[150] == stamps[100] == BASE_TIME + 100  # the start of the event's group
    late = replace(config, watermark_holdback_sec=2)
    assert watermark(late, 150) == marks[150] - 2000
