"""The Nexmark oracle: Beam's query semantics on generated runs and on tiny hand-made inputs.

The hand-made inputs pin each query's semantics (windows, ties, joins, the
winning-bid rules) with answers worked out by hand; the generated runs check
that every query answers something on Beam's own test size (QueryTest: one
generator, 5,000 events) and that the answers are consistent with the input.
"""

from __future__ import annotations

import ast
import collections
from collections.abc import Sequence
from pathlib import Path

import pytest

from examples.nexmark._generator import DEFAULT_CONFIG, NexmarkConfig, events
from examples.nexmark._model import Auction, Bid, Event, Person
from examples.nexmark._oracle import (
    QUERIES,
    AuctionBid,
    AuctionCount,
    AuctionPrice,
    CategoryPrice,
    IdNameReserve,
    NameCityStateId,
    SellerPrice,
    query0,
    query1,
    query2,
    query3,
    query4,
    query5,
    query6,
    query7,
    query8,
    winning_bids,
)

Stream = list[tuple[int, Event]]


def person(pid: int, t: int, state: str = "OR") -> tuple[int, Person]:
    return t, Person(pid, f"Person {pid}", f"p{pid}@x.com", "0000", f"City {pid}", state, t, "")


def auction(
    aid: int,
    t: int,
    seller: int = 1,
    category: int = 10,
    reserve: int = 0,
    expires: int | None = None,
) -> tuple[int, Auction]:
    expires = t + 1_000_000 if expires is None else expires
    return t, Auction(aid, f"item {aid}", "", 1, reserve, t, expires, seller, category, "")


def bid(aid: int, t: int, price: int, bidder: int = 1) -> tuple[int, Bid]:
    return t, Bid(aid, bidder, price, t, "")


def same(got: Sequence[object], expected: Sequence[object]) -> bool:
    """Equal as multisets: how a dataflow's output is compared with the oracle's."""
    return collections.Counter(got) == collections.Counter(expected)


# ----------------------------------------------------------------------
# Hand-made inputs with known answers
# ----------------------------------------------------------------------
def test_query0_passes_everything_through() -> None:
    stream: Stream = [person(1, 10), auction(1, 20), bid(1, 30, 5)]
    assert query0(stream) == [e for _, e in stream]


def test_query1_converts_dollars_to_euros_truncating() -> None:
    stream: Stream = [bid(1, 10, 100), person(1, 11), bid(2, 12, 199, bidder=7), bid(3, 13, 1)]
    assert query1(stream) == [
        Bid(1, 1, 89, 10, ""),
        Bid(2, 7, 177, 12, ""),  # 199 * 89 / 100 = 177.11
        Bid(3, 1, 0, 13, ""),
    ]


def test_query2_selects_every_auction_skipth_auction() -> None:
    stream: Stream = [
        bid(123, 1, 5),
        bid(124, 2, 6),
        auction(246, 3),
        bid(246, 4, 7),
        bid(369, 5, 8),
    ]
    assert query2(stream) == [AuctionPrice(123, 5), AuctionPrice(246, 7), AuctionPrice(369, 8)]
    every_second = NexmarkConfig(auction_skip=2)
    assert query2(stream, every_second) == [AuctionPrice(124, 6), AuctionPrice(246, 7)]


def test_query3_joins_local_sellers_with_category_10_auctions() -> None:
    stream: Stream = [
        auction(1, 100, seller=1),  # before its seller: kept until the seller arrives
        person(1, 200, state="OR"),
        person(2, 300, state="CA"),
        auction(2, 400, seller=2),
        auction(3, 10**9, seller=2),  # much later: the join is not windowed
        person(3, 500, state="WA"),  # not a local state
        auction(4, 600, seller=3),
        person(4, 700, state="ID"),
        auction(5, 800, seller=4, category=11),  # not category 10
        auction(6, 900, seller=5),  # no such person
    ]
    assert same(
        query3(stream),
        [
            NameCityStateId("Person 1", "City 1", "OR", 1),
            NameCityStateId("Person 2", "City 2", "CA", 2),
            NameCityStateId("Person 2", "City 2", "CA", 3),
        ],
    )


def test_winning_bids_follow_beams_rules() -> None:
    early = Bid(1, 1, 150, 500, "")
    stream: Stream = [
        (500, early),  # before its auction opens: counts, as in Beam
        auction(1, 1000, reserve=100, expires=5000),
        bid(1, 2000, 99),  # below the reserve
        bid(1, 3000, 150),  # as high as the early one, but later: the earlier wins
        bid(1, 5000, 999),  # at the expiry time: too late
        auction(2, 1100, reserve=1000, expires=4000),
        bid(2, 1200, 500),  # no bid reaches the reserve: no winner
        auction(3, 1300, expires=3000),
        bid(3, 1400, 10),
        bid(3, 2999, 20),  # the highest valid bid wins
        bid(4, 1500, 10**6),  # no such auction
        auction(5, 1600, expires=10**15),  # still open when the input ends: closed then
        bid(5, 1700, 7),
    ]
    won = winning_bids(stream)
    assert [(w.auction.id, w.bid) for w in won] == [
        (3, Bid(3, 1, 20, 2999, "")),  # in order of closing time
        (1, early),
        (5, Bid(5, 1, 7, 1700, "")),
    ]
    assert all(isinstance(w, AuctionBid) for w in won)


def test_query4_averages_winning_prices_per_category_and_sliding_window() -> None:
    stream: Stream = [
        auction(1, 0, category=10, expires=7000),
        auction(2, 0, category=10, expires=8000),
        auction(3, 0, category=11, expires=12_000),
        auction(4, 0, category=12, expires=9000),  # no bid: no winner, no average
        auction(5, 0, category=13, expires=10_000),  # closes on a window boundary
        bid(5, 400, 40),
        bid(1, 100, 100),
        bid(1, 200, 50),
        bid(2, 300, 201),
        bid(3, 7500, 50),  # the auction's close (12 s), not the bid's time, picks windows
    ]
    # Windows [0, 10 s) and [5 s, 15 s) hold both category-10 closes: (100 + 201) / 2 = 150.5,
    # rounded half up; categories 11 and 13 close in [5 s, 15 s) and [10 s, 20 s).
    assert same(
        query4(stream),
        2 * [CategoryPrice(10, 151)] + 2 * [CategoryPrice(11, 50)] + 2 * [CategoryPrice(13, 40)],
    )
    one_window = NexmarkConfig(window_size_sec=20, window_period_sec=20)
    assert same(
        query4(stream, one_window),
        [CategoryPrice(10, 151), CategoryPrice(11, 50), CategoryPrice(13, 40)],
    )


def test_query5_finds_the_most_bid_auctions_per_sliding_window() -> None:
    stream: Stream = [
        bid(1, 1000, 1),
        bid(1, 2000, 1),
        person(9, 2500),
        bid(2, 3000, 1),
        bid(2, 6000, 1),
        bid(2, 7000, 1),
        bid(3, 12_000, 1),
        bid(4, 12_500, 1),
    ]
    assert same(
        query5(stream),
        [
            AuctionCount(1, 2),  # [-5 s, 5 s): 1 has two bids, 2 one
            AuctionCount(2, 3),  # [0 s, 10 s)
            AuctionCount(2, 2),  # [5 s, 15 s): 2 has two, 3 and 4 one each
            AuctionCount(3, 1),  # [10 s, 20 s): a tie, both reported
            AuctionCount(4, 1),
        ],
    )


def test_query6_averages_each_sellers_last_ten_winning_bids_by_bid_time() -> None:
    stream: Stream = []
    for i in range(1, 11):  # auctions 1-10 close in order; their bids at 1 s ... 10 s
        stream += [auction(i, 0, seller=7, expires=100_000 + i), bid(i, 1000 * i, 100 * i)]
    # Auction 11 closes last but its winning bid is the earliest: not among the last ten.
    stream += [auction(11, 0, seller=7, expires=100_011), bid(11, 500, 1100)]
    stream += [auction(12, 0, seller=8), bid(12, 10, 101), auction(13, 0, seller=8)]
    stream += [bid(13, 20, 102)]
    assert query6(stream) == [
        SellerPrice(7, 550),  # (100 + ... + 1000) / 10; by closing time it would be 650
        SellerPrice(8, 102),  # 101.5, rounded half up
    ]


def test_query7_reports_every_bid_at_its_windows_highest_price() -> None:
    stream: Stream = [
        bid(1, 1000, 5),
        bid(2, 2000, 9),
        bid(3, 3000, 9),
        bid(4, 4000, 7),
        person(1, 12_000),
        bid(5, 15_000, 3),  # [10 s, 20 s) has one bid
        bid(6, 35_000, 1),
    ]
    assert same(
        query7(stream),
        [
            Bid(2, 1, 9, 2000, ""),  # a tie at the highest price: both
            Bid(3, 1, 9, 3000, ""),
            Bid(5, 1, 3, 15_000, ""),
            Bid(6, 1, 1, 35_000, ""),
        ],
    )


def test_query8_joins_new_people_with_their_auctions_in_the_same_fixed_window() -> None:
    stream: Stream = [
        auction(13, 500, seller=2, reserve=13),  # before the person, same window: joins
        person(2, 600),
        person(1, 1000),
        auction(11, 9000, seller=1, reserve=11),
        person(3, 9999),
        auction(14, 10_000, seller=3, reserve=14),  # the next window: no join
        auction(12, 11_000, seller=1, reserve=12),  # the next window: no join
        person(4, 20_000),
        auction(15, 21_000, seller=4, reserve=15),
        auction(16, 29_999, seller=4, reserve=16),
    ]
    assert same(
        query8(stream),
        [
            IdNameReserve(1, "Person 1", 11),
            IdNameReserve(2, "Person 2", 13),
            IdNameReserve(4, "Person 4", 15),
            IdNameReserve(4, "Person 4", 16),
        ],
    )


def test_empty_input_has_empty_answers() -> None:
    for number, query in QUERIES.items():
        assert list(query([], DEFAULT_CONFIG)) == [], number


def test_the_registry_holds_queries_0_to_8() -> None:
    assert {
        0: query0,
        1: query1,
        2: query2,
        3: query3,
        4: query4,
        5: query5,
        6: query6,
        7: query7,
        8: query8,
    } == QUERIES


def test_oracle_imports_only_the_standard_library_and_radon_actors() -> None:
    # It must load inside a WebAssembly guest: no trio, attrs or other packages.
    allowed = {"__future__", "collections", "dataclasses", "functools", "math", "typing"}
    allowed |= {"radon_actors"}
    folder = Path(__file__).parents[2] / "examples" / "nexmark"
    for name in ("_oracle.py", "_generator.py", "_javarandom.py", "_model.py"):
        tree = ast.parse((folder / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = {(node.module or "").split(".")[0]}
            else:
                continue
            assert tops <= allowed, (name, tops)


# ----------------------------------------------------------------------
# Generated runs
# ----------------------------------------------------------------------
SLOW = NexmarkConfig(first_event_rate=100, next_event_rate=100)
"""100 events/s: 5,000 events span 50 s, so several fixed and sliding windows."""


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[NexmarkConfig, Stream]]:
    return {
        "beam": (DEFAULT_CONFIG, list(events(DEFAULT_CONFIG, 5000))),
        "slow": (SLOW, list(events(SLOW, 5000))),
    }


@pytest.mark.parametrize("run", ["beam", "slow"])
@pytest.mark.parametrize("number", range(9))
def test_every_query_answers_on_beams_test_size(
    runs: dict[str, tuple[NexmarkConfig, Stream]], run: str, number: int
) -> None:
    # Beam's NexmarkQueryModel.assertionFor asserts the same for its 5,000-event runs.
    config, stream = runs[run]
    assert len(QUERIES[number](stream, config)) > 0


def test_generated_selections(runs: dict[str, tuple[NexmarkConfig, Stream]]) -> None:
    config, stream = runs["beam"]
    bids = [e for _, e in stream if isinstance(e, Bid)]
    assert query0(stream, config) == [e for _, e in stream]
    assert [b.price * 89 // 100 for b in bids] == [b.price for b in query1(stream, config)]
    selected = query2(stream, config)
    assert selected == [AuctionPrice(b.auction, b.price) for b in bids if b.auction % 123 == 0]


def test_generated_query3_results_are_local_category_10_sellers(
    runs: dict[str, tuple[NexmarkConfig, Stream]],
) -> None:
    config, stream = runs["beam"]
    people = {e.id: e for _, e in stream if isinstance(e, Person)}
    auctions = {e.id: e for _, e in stream if isinstance(e, Auction)}
    results = query3(stream, config)
    for result in results:
        sold = auctions[result.id]
        seller = people[sold.seller]
        assert sold.category == 10 and seller.state in {"OR", "ID", "CA"}
        assert (result.name, result.city, result.state) == (seller.name, seller.city, seller.state)
    expected = sum(
        1
        for a in auctions.values()
        if a.category == 10 and a.seller in people and people[a.seller].state in {"OR", "ID", "CA"}
    )
    assert len(results) == expected


@pytest.mark.parametrize("run", ["beam", "slow"])
def test_generated_winning_bids_are_the_best_valid_bids(
    runs: dict[str, tuple[NexmarkConfig, Stream]], run: str
) -> None:
    config, stream = runs[run]
    bids = collections.defaultdict(list)
    for t, e in stream:
        if isinstance(e, Bid):
            bids[e.auction].append((t, e))
    won = winning_bids(stream, config)
    assert len(won) > 50
    for w in won:
        valid = [b for t, b in bids[w.auction.id] if t < w.auction.expires]
        valid = [b for b in valid if b.price >= w.auction.reserve]
        assert w.bid in valid
        assert w.bid.price == max(b.price for b in valid)
    closes = [w.auction.expires for w in won]
    assert closes == sorted(closes)


@pytest.mark.parametrize("run", ["beam", "slow"])
def test_generated_averages_lie_within_the_winning_prices(
    runs: dict[str, tuple[NexmarkConfig, Stream]], run: str
) -> None:
    config, stream = runs[run]
    won = winning_bids(stream, config)
    by_category = collections.defaultdict(list)
    by_seller = collections.defaultdict(list)
    for w in won:
        by_category[w.auction.category].append(w.bid.price)
        by_seller[w.auction.seller].append(w.bid.price)
    averages = query4(stream, config)
    assert {a.category for a in averages} == set(by_category)
    for a in averages:
        assert min(by_category[a.category]) <= a.price <= max(by_category[a.category])
    sellers = query6(stream, config)
    assert [s.seller for s in sellers] == sorted(by_seller)
    for s in sellers:
        assert min(by_seller[s.seller]) <= s.price <= max(by_seller[s.seller])


def test_generated_windows(runs: dict[str, tuple[NexmarkConfig, Stream]]) -> None:
    config, stream = runs["slow"]
    bids_per_window = collections.defaultdict(list)
    for t, e in stream:
        if isinstance(e, Bid):
            bids_per_window[t // 10_000].append(e)
    assert len(bids_per_window) >= 5
    highest = query7(stream, config)
    assert same(
        highest,
        [b for ws in bids_per_window.values() for b in ws if b.price == max(x.price for x in ws)],
    )
    hot = query5(stream, config)
    # One sliding window starts every 5 s: the 50 s of bids fall in 11 of them.
    assert len(hot) >= 11
    bids_per_auction = collections.Counter(e.auction for _, e in stream if isinstance(e, Bid))
    for item in hot:
        assert 0 < item.count <= bids_per_auction[item.auction]
    assert {1000, 1100} <= {a.auction for a in hot}  # the hot auctions of the first 40 s
    new_users = query8(stream, config)
    people = {(t // 10_000, e.id): e for t, e in stream if isinstance(e, Person)}
    sellers = {(t // 10_000, e.seller) for t, e in stream if isinstance(e, Auction)}
    for result in new_users:
        joined = [p for key, p in people.items() if key[1] == result.id and key in sellers]
        assert result.name in {p.name for p in joined}
