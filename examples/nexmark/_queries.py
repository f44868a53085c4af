"""Nexmark queries 0 to 8 as dataflows: each a pipeline of operator stages.

Every query gives the same results as its reference in ``_oracle.py`` (the
semantics table there says which Beam or Flink semantics each follows), but
computed incrementally, partitioned by key, with windows and auctions closed
by watermarks instead of at the end of a list:

====  ======================================================================
Q     stages (key into the stage; ``p`` partitions, or 1)
====  ======================================================================
0     pass (round robin, p)
1     to euros: bids only (round robin, p)
2     select every ``auction_skip``-th auction's bids (round robin, p)
3     join local sellers with their category-10 auctions (person id, p)
4     winning bids (auction id, p) -> mean per category per window (category, p)
5     bids per auction per window (auction id, p) -> the most per window (1)
6     winning bids (auction id, p) -> mean of each seller's last 10 (seller, p)
7     highest bids per window, partial (round robin, p) -> overall (1)
8     people and the auctions they open in the same window (person id, p)
====  ======================================================================

A window ``[start, start + size)`` closes when the watermark reaches its end
(no event before the end can come any more); an auction closes when the
watermark reaches its ``expires`` (no valid bid can come any more). Everything
still open closes at the end of the stream.

Like ``_dataflow``, this module runs natively, on worker hosts and in the
WebAssembly sandbox (``QueryStage`` is spawned from here, so a sandboxed
stage's component holds these operators): standard library and
``radon_actors`` only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from radon_actors import portable

from ._dataflow import END_OF_TIME, Key, Operator, Stage
from ._generator import NexmarkConfig
from ._javarandom import java_round
from ._model import Auction, Bid, Person
from ._oracle import (
    _Q3_CATEGORY,
    _Q3_STATES,
    _Q6_LAST_AUCTIONS,
    AuctionBid,
    AuctionCount,
    AuctionPrice,
    CategoryPrice,
    IdNameReserve,
    NameCityStateId,
    SellerPrice,
    _fixed_window,
    _sliding_windows,
)

__all__ = ["PLANS", "Plan", "QueryStage", "StageSpec"]


class QueryStage(Stage):
    """A stage spawned from this module, so that a sandboxed stage's component
    holds the operators (a guest rebuilds only classes it has loaded)."""


# ----------------------------------------------------------------------
# Keys: the partition an item goes to (module functions: they cross by name)
# ----------------------------------------------------------------------
def by_auction(item: Any) -> int:
    """Auctions by id, bids by their auction (people anywhere: ignored)."""
    if type(item) is Bid:
        return item.auction
    return int(item.id)


def by_person(item: Any) -> int:
    """People by id, auctions by their seller (bids anywhere: ignored)."""
    if type(item) is Auction:
        return item.seller
    if type(item) is Bid:
        return item.bidder
    return int(item.id)


def by_category(item: AuctionBid) -> int:
    return item.auction.category


def by_seller(item: AuctionBid) -> int:
    return item.auction.seller


# ----------------------------------------------------------------------
# Intermediate records
# ----------------------------------------------------------------------
@portable
@dataclass(frozen=True, slots=True)
class WindowCount:
    """Query 5, between stages: an auction's bids in one sliding window."""

    window: int
    auction: int
    count: int


@portable
@dataclass(frozen=True, slots=True)
class WindowBest:
    """Query 7, between stages: one partition's highest bids in one window."""

    window: int
    price: int
    bids: list[Bid]


# ----------------------------------------------------------------------
# Operators
# ----------------------------------------------------------------------
@portable
@dataclass
class Pass(Operator):
    """Query 0: every event, unchanged."""


@portable
@dataclass
class ToEuros(Operator):
    """Query 1: bids, their price in euro cents (``* 89 // 100``, as Beam)."""

    def process(self, item: Any, out: list[Any]) -> None:
        if type(item) is Bid:
            out.append(replace(item, price=item.price * 89 // 100))


@portable
@dataclass
class Select(Operator):
    """Query 2: bids on every ``skip``-th auction id, as (auction, price)."""

    skip: int = 123

    def process(self, item: Any, out: list[Any]) -> None:
        if type(item) is Bid and item.auction % self.skip == 0:
            out.append(AuctionPrice(item.auction, item.price))


@portable
@dataclass
class LocalSellers(Operator):
    """Query 3: an unwindowed join of people in OR, ID and CA with the
    category-10 auctions they sell, whichever arrives first."""

    people: dict[int, Person] = field(default_factory=dict)
    waiting: dict[int, list[Auction]] = field(default_factory=dict)

    def process(self, item: Any, out: list[Any]) -> None:
        kind = type(item)
        if kind is Person:
            if item.state not in _Q3_STATES or item.id in self.people:
                return
            self.people[item.id] = item
            for auction in self.waiting.pop(item.id, ()):
                out.append(NameCityStateId(item.name, item.city, item.state, auction.id))
        elif kind is Auction and item.category == _Q3_CATEGORY:
            person = self.people.get(item.seller)
            if person is None:
                self.waiting.setdefault(item.seller, []).append(item)
            else:
                out.append(NameCityStateId(person.name, person.city, person.state, item.id))


@portable
@dataclass
class WinningBids(Operator):
    """Queries 4 and 6, first stage: each auction's winning bid, emitted when
    the watermark reaches its ``expires``. Valid bids are at least the reserve
    and timed before ``expires`` (a bid may arrive before its auction); the
    highest price wins, then the earliest, then the first to arrive."""

    auctions: dict[int, Auction] = field(default_factory=dict)
    best: dict[int, Bid] = field(default_factory=dict)
    early: dict[int, list[Bid]] = field(default_factory=dict)  # bids on unseen auctions

    def process(self, item: Any, out: list[Any]) -> None:
        kind = type(item)
        if kind is Bid:
            auction = self.auctions.get(item.auction)
            if auction is None:
                self.early.setdefault(item.auction, []).append(item)
            else:
                self._offer(auction, item)
        elif kind is Auction and item.id not in self.auctions:
            self.auctions[item.id] = item
            for bid in self.early.pop(item.id, ()):
                self._offer(item, bid)

    def _offer(self, auction: Auction, bid: Bid) -> None:
        if bid.date_time >= auction.expires or bid.price < auction.reserve:
            return
        best = self.best.get(auction.id)
        if (
            best is None
            or bid.price > best.price
            or (bid.price == best.price and bid.date_time < best.date_time)
        ):
            self.best[auction.id] = bid

    def advance(self, watermark: int, out: list[Any]) -> None:
        closed = [a for a in self.auctions.values() if a.expires <= watermark]
        for auction in closed:
            del self.auctions[auction.id]
            bid = self.best.pop(auction.id, None)
            if bid is not None:
                out.append(AuctionBid(auction, bid))


@portable
@dataclass
class CategoryMeans(Operator):
    """Query 4, second stage: the mean winning price per category, per sliding
    window of the auctions' closing times."""

    size: int = 10_000
    period: int = 5_000
    totals: dict[tuple[int, int], list[int]] = field(default_factory=dict)

    def process(self, item: AuctionBid, out: list[Any]) -> None:
        category = item.auction.category
        for start in _sliding_windows(item.auction.expires, self.size, self.period):
            total = self.totals.setdefault((start, category), [0, 0])
            total[0] += item.bid.price
            total[1] += 1

    def advance(self, watermark: int, out: list[Any]) -> None:
        done = [key for key in self.totals if key[0] + self.size <= watermark]
        for key in sorted(done):
            total, count = self.totals.pop(key)
            out.append(CategoryPrice(key[1], java_round(total / count)))


@portable
@dataclass
class WindowCounts(Operator):
    """Query 5, first stage: each auction's bids per sliding window."""

    size: int = 10_000
    period: int = 5_000
    counts: dict[int, dict[int, int]] = field(default_factory=dict)  # window -> auction -> n

    def process(self, item: Any, out: list[Any]) -> None:
        if type(item) is not Bid:
            return
        for start in _sliding_windows(item.date_time, self.size, self.period):
            window = self.counts.get(start)
            if window is None:
                window = self.counts[start] = {}
            window[item.auction] = window.get(item.auction, 0) + 1

    def advance(self, watermark: int, out: list[Any]) -> None:
        for start in sorted(s for s in self.counts if s + self.size <= watermark):
            for auction, count in self.counts.pop(start).items():
                out.append(WindowCount(start, auction, count))


@portable
@dataclass
class HotItems(Operator):
    """Query 5, second stage: per window, every auction tied for the most bids."""

    size: int = 10_000
    windows: dict[int, list[WindowCount]] = field(default_factory=dict)

    def process(self, item: WindowCount, out: list[Any]) -> None:
        self.windows.setdefault(item.window, []).append(item)

    def advance(self, watermark: int, out: list[Any]) -> None:
        for start in sorted(s for s in self.windows if s + self.size <= watermark):
            counts = self.windows.pop(start)
            most = max(c.count for c in counts)
            out.extend(AuctionCount(c.auction, most) for c in counts if c.count == most)


@portable
@dataclass
class SellerMeans(Operator):
    """Query 6, second stage: each seller's mean over their last 10 winning
    bids (by time, then price), at the end of the stream."""

    last: dict[int, list[Bid]] = field(default_factory=dict)

    def process(self, item: AuctionBid, out: list[Any]) -> None:
        bids = self.last.setdefault(item.auction.seller, [])
        bids.append(item.bid)
        if len(bids) > _Q6_LAST_AUCTIONS:
            bids.sort(key=lambda b: (b.date_time, b.price))
            del bids[0]

    def advance(self, watermark: int, out: list[Any]) -> None:
        if watermark < END_OF_TIME:  # a final value per seller, at the end
            return
        for seller in sorted(self.last):
            bids = self.last[seller]
            out.append(SellerPrice(seller, java_round(sum(b.price for b in bids) / len(bids))))
        self.last.clear()


@portable
@dataclass
class WindowHighest(Operator):
    """Query 7, first stage: this partition's highest bids per fixed window."""

    size: int = 10_000
    best: dict[int, WindowBest] = field(default_factory=dict)

    def process(self, item: Any, out: list[Any]) -> None:
        if type(item) is not Bid:
            return
        start = _fixed_window(item.date_time, self.size)
        current = self.best.get(start)
        if current is None or item.price > current.price:
            self.best[start] = WindowBest(start, item.price, [item])
        elif item.price == current.price:
            current.bids.append(item)

    def advance(self, watermark: int, out: list[Any]) -> None:
        for start in sorted(s for s in self.best if s + self.size <= watermark):
            out.append(self.best.pop(start))


@portable
@dataclass
class Highest(Operator):
    """Query 7, second stage: per fixed window, every bid at the highest price."""

    size: int = 10_000
    best: dict[int, WindowBest] = field(default_factory=dict)

    def process(self, item: WindowBest, out: list[Any]) -> None:
        current = self.best.get(item.window)
        if current is None or item.price > current.price:
            self.best[item.window] = WindowBest(item.window, item.price, list(item.bids))
        elif item.price == current.price:
            current.bids.extend(item.bids)

    def advance(self, watermark: int, out: list[Any]) -> None:
        for start in sorted(s for s in self.best if s + self.size <= watermark):
            out.extend(self.best.pop(start).bids)


@portable
@dataclass
class NewSellers(Operator):
    """Query 8: each person and the auctions they open in the same fixed window."""

    size: int = 10_000
    people: dict[tuple[int, int], Person] = field(default_factory=dict)  # (window, id)
    auctions: dict[tuple[int, int], list[Auction]] = field(default_factory=dict)

    def process(self, item: Any, out: list[Any]) -> None:
        kind = type(item)
        if kind is Person:
            self.people.setdefault((_fixed_window(item.date_time, self.size), item.id), item)
        elif kind is Auction:
            key = (_fixed_window(item.date_time, self.size), item.seller)
            self.auctions.setdefault(key, []).append(item)

    def advance(self, watermark: int, out: list[Any]) -> None:
        closed = {key for key in (*self.people, *self.auctions) if key[0] + self.size <= watermark}
        for key in sorted(closed):
            person = self.people.pop(key, None)
            auctions = self.auctions.pop(key, [])
            if person is not None:
                out.extend(IdNameReserve(person.id, person.name, a.reserve) for a in auctions)


# ----------------------------------------------------------------------
# Plans
# ----------------------------------------------------------------------
@dataclass(frozen=True)
class StageSpec:
    """One stage of a plan: its operator (made per partition), the key that
    routes items into it (None: round robin), and its partitions."""

    operator: Callable[[], Operator]
    key: Key | None
    parallelism: int


@dataclass(frozen=True)
class Plan:
    """A query's dataflow: its title and how to build its stages."""

    title: str
    build: Callable[[NexmarkConfig, int], list[StageSpec]]

    def stages(self, config: NexmarkConfig, parallelism: int) -> list[StageSpec]:
        return self.build(config, parallelism)


def _ms(config: NexmarkConfig) -> tuple[int, int]:
    return config.window_size_sec * 1000, config.window_period_sec * 1000


PLANS: dict[int, Plan] = {
    0: Plan("pass-through", lambda c, p: [StageSpec(Pass, None, p)]),
    1: Plan("currency conversion", lambda c, p: [StageSpec(ToEuros, None, p)]),
    2: Plan("selection", lambda c, p: [StageSpec(lambda: Select(c.auction_skip), None, p)]),
    3: Plan("local item suggestion", lambda c, p: [StageSpec(LocalSellers, by_person, p)]),
    4: Plan(
        "average price per category",
        lambda c, p: [
            StageSpec(WinningBids, by_auction, p),
            StageSpec(lambda: CategoryMeans(*_ms(c)), by_category, p),
        ],
    ),
    5: Plan(
        "hot items",
        lambda c, p: [
            StageSpec(lambda: WindowCounts(*_ms(c)), by_auction, p),
            StageSpec(lambda: HotItems(_ms(c)[0]), None, 1),
        ],
    ),
    6: Plan(
        "average selling price by seller",
        lambda c, p: [
            StageSpec(WinningBids, by_auction, p),
            StageSpec(SellerMeans, by_seller, p),
        ],
    ),
    7: Plan(
        "highest bid",
        lambda c, p: [
            StageSpec(lambda: WindowHighest(_ms(c)[0]), None, p),
            StageSpec(lambda: Highest(_ms(c)[0]), None, 1),
        ],
    ),
    8: Plan(
        "monitor new users", lambda c, p: [StageSpec(lambda: NewSellers(_ms(c)[0]), by_person, p)]
    ),
}
"""The queries by number."""
