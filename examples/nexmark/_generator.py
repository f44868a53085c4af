"""Nexmark's event generator, ported from Apache Beam so that it yields Beam's exact events.

Follows ``org.apache.beam.sdk.nexmark``: ``NexmarkConfiguration`` (defaults),
``NexmarkUtils`` (``BASE_TIME``, ``RateShape``, ``RateUnit``),
``sources.generator.GeneratorConfig`` (event numbers, out-of-order groups,
timestamps), ``sources.generator.Generator`` (``nextEvent``: which event, its
seed, its timestamps and watermark) and ``sources.generator.model``'s
``PersonGenerator``, ``AuctionGenerator``, ``BidGenerator``, ``PriceGenerator``,
``StringsGenerator`` and ``LongGenerator`` (every field, drawn from a
``java.util.Random`` seeded with the event's id, in Beam's order, from Beam's
name/city/state lists). :func:`event` is a pure function of the configuration
and the event number, so any event can be made without making the ones before
it, and a source can be split or restarted anywhere.

A property of Beam's generator that this keeps: consecutive event ids give
``java.util.Random`` seeds whose first draws differ little, so the first
draw's choices (is this bid on the hot auction? is this auction by the hot
seller?) come in runs of thousands of events. The configured ratios hold over
millions of events, not within a few thousand: every bid among the first
2,000 events is on the hot auction, and none among the 2,000 from event
5,000,000 on (as on the JVM).

Where this differs from Beam:

* One generator timeline per call. ``event(config, n)`` is the ``n``-th event of
  one Beam ``Generator`` (its ``eventsCountSoFar == n``) over a
  ``GeneratorConfig`` whose ``firstEventId``/``firstEventNumber`` are
  ``config.first_event_id``/``config.first_event_number``. Beam's
  ``GeneratorConfig.split`` / ``Generator.splitAtEventId`` and ``maxEvents`` are
  not modelled: the caller picks the range of event numbers. (To mimic Beam's
  split into ``k`` parallel generators, give generator ``i`` a config with
  ``first_event_id = i * per_generator`` and ``num_event_generators = k``.)
* ``num_event_generators`` defaults to 1, as in Beam's ``QueryTest`` (whose
  comment warns that results depend on it), not to ``NexmarkConfiguration``'s 100.
  It only scales the inter-event delay, as in Beam.
* Event time always starts at Beam's fixed ``NexmarkUtils.BASE_TIME``,
  2015-07-15T00:00:00.000Z (``base_time``); Beam's ``useWallclockEventTime`` is
  not offered.
* No wallclock side: no ``wallclockTimestamp``, rate limiting, or the
  ``probDelayedEvent``/``occasionalDelaySec`` held-back "LATE" events of Beam's
  rate-limited unbounded source. :func:`watermark` is the ``NextEvent.watermark``
  Beam's generator reports, less ``watermark_holdback_sec`` as its
  ``UnboundedEventSource`` applies; after the last event Beam's source jumps to
  the end of time, which is the caller's to do.
* The person/auction/bid proportions are configuration fields (Beam: constants
  of ``GeneratorConfig``; the defaults are Beam's 1:3:46). The hot-batch sizes
  (100) and id leads (10) stay constants, as in Beam.
* ``Math.pow`` and ``Math.cos`` come from the C library here, not the JVM: both
  are within an ulp of the true value, so a price could in principle differ
  by a cent when ``10**(6u) * 100`` lands within an ulp of a half. None does in
  the ranges the tests compare against a JVM run of Beam's code.
* Events are :mod:`._model`'s dataclasses (Beam's ``Event`` wrapper holds
  exactly one of them); invalid configurations raise ``ValueError`` up front.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from radon_actors import portable

from ._javarandom import JavaRandom, java_div, java_rem, java_round
from ._model import Auction, Bid, Event, Person

__all__ = [
    "BASE_TIME",
    "DEFAULT_CONFIG",
    "FIRST_AUCTION_ID",
    "FIRST_CATEGORY_ID",
    "FIRST_PERSON_ID",
    "NexmarkConfig",
    "event",
    "event_id",
    "event_timestamp",
    "events",
    "inter_event_delays_us",
    "watermark",
]

BASE_TIME = 1_436_918_400_000
"""2015-07-15T00:00:00.000Z in ms: Beam's ``NexmarkUtils.BASE_TIME``, the first event's time."""

# Ids start above zero so that queries find matches even in small runs (GeneratorConfig).
FIRST_PERSON_ID = 1000
FIRST_AUCTION_ID = 1000
FIRST_CATEGORY_ID = 10

_NUM_CATEGORIES = 5  # AuctionGenerator: few categories, so Q3 and Q4 find results
_PERSON_ID_LEAD = 10  # people and auctions not yet created that may already be referred to
_AUCTION_ID_LEAD = 10
_HOT_BATCH = 100  # HOT_SELLER_RATIO, HOT_AUCTION_RATIO, HOT_BIDDER_RATIO: the hot one of each 100
_MIN_STRING_LENGTH = 3
_OUT_OF_ORDER_SCRAMBLE = 953  # GeneratorConfig.nextAdjustedEventNumber's multiplier
_SINE_STEPS = 10  # RateShape.N: steps approximating a sine wave

# PersonGenerator's lists, in Beam's order (the index drawn picks the entry).
_US_STATES = ("AZ", "CA", "ID", "OR", "WA", "WY")
_US_CITIES = (
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
)
_FIRST_NAMES = (
    "Peter",
    "Paul",
    "Luke",
    "John",
    "Saul",
    "Vicky",
    "Kate",
    "Julie",
    "Sarah",
    "Deiter",
    "Walter",
)
_LAST_NAMES = (
    "Shultz",
    "Abrams",
    "Spencer",
    "White",
    "Bartels",
    "Walton",
    "Smith",
    "Jones",
    "Noris",
)

_US_PER_UNIT = {"per_second": 1_000_000, "per_minute": 60_000_000}


@portable
@dataclass(frozen=True, slots=True)
class NexmarkConfig:
    """What the generator and the queries need of Beam's ``NexmarkConfiguration``.

    Defaults are Beam's, except ``num_event_generators`` (1, as Beam's
    ``QueryTest``; Beam's default is 100). Rates are events per ``rate_unit``
    over all generators; times are ms since the epoch; sizes are bytes.
    """

    # -- event rate (NexmarkConfiguration, RateShape, RateUnit) --
    first_event_rate: int = 10_000
    next_event_rate: int = 10_000
    rate_unit: Literal["per_second", "per_minute"] = "per_second"
    rate_shape: Literal["square", "sine"] = "sine"
    """Beam's default. While ``first_event_rate == next_event_rate`` the rate is constant."""
    rate_period_sec: int = 600
    num_event_generators: int = 1
    base_time: int = BASE_TIME

    # -- which generator (GeneratorConfig) --
    first_event_id: int = 0
    first_event_number: int = 0
    out_of_order_group_size: int = 1
    """Events are shuffled within groups of this many; 1 keeps them in order."""
    watermark_holdback_sec: int = 0

    # -- event mix and references (GeneratorConfig, NexmarkConfiguration) --
    person_proportion: int = 1
    auction_proportion: int = 3
    bid_proportion: int = 46
    num_active_people: int = 1000
    num_in_flight_auctions: int = 100
    hot_auction_ratio: int = 2
    """A bid is for the current hot auction with probability 1 - 1/this (see the module notes)."""
    hot_sellers_ratio: int = 4
    hot_bidders_ratio: int = 4

    # -- padding: each event's ``extra`` brings it to about this size --
    avg_person_byte_size: int = 200
    avg_auction_byte_size: int = 500
    avg_bid_byte_size: int = 100

    # -- query parameters --
    auction_skip: int = 123
    """Query 2 keeps bids on auctions whose id is a multiple of this."""
    window_size_sec: int = 10
    """Queries 4 and 5 (sliding) and 7 and 8 (fixed): window length."""
    window_period_sec: int = 5
    """Queries 4 and 5: how often a sliding window starts."""
    max_auctions_waiting_time: int = 600
    """Beam's Query 3 drops join state this long after a key's last event (see the oracle)."""

    def __post_init__(self) -> None:
        positive = (
            "first_event_rate",
            "next_event_rate",
            "rate_period_sec",
            "num_event_generators",
            "out_of_order_group_size",
            "person_proportion",
            "auction_proportion",
            "bid_proportion",
            "num_active_people",
            "num_in_flight_auctions",
            "hot_auction_ratio",
            "hot_sellers_ratio",
            "hot_bidders_ratio",
            "auction_skip",
            "window_size_sec",
            "window_period_sec",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"NexmarkConfig.{name} must be positive")
        if self.rate_unit not in _US_PER_UNIT:
            raise ValueError(f"unknown rate_unit {self.rate_unit!r}")
        if self.rate_shape not in ("square", "sine"):
            raise ValueError(f"unknown rate_shape {self.rate_shape!r}")
        if self.first_event_id < 0 or self.first_event_number < 0:
            raise ValueError("first_event_id and first_event_number must not be negative")

    @property
    def proportion_denominator(self) -> int:
        """Events per round of the person/auction/bid mix (50 by default)."""
        return self.person_proportion + self.auction_proportion + self.bid_proportion


DEFAULT_CONFIG = NexmarkConfig()
"""Beam's defaults (with one event generator)."""


# ----------------------------------------------------------------------
# Event rate and timestamps (RateShape, RateUnit, GeneratorConfig)
# ----------------------------------------------------------------------
def _rate_to_period_us(config: NexmarkConfig, rate: int) -> int:
    if rate <= 0:
        raise ValueError(f"a rate of {rate} events per unit has no period")
    us_per_unit = _US_PER_UNIT[config.rate_unit]
    return (us_per_unit + rate // 2) // rate  # RateUnit.rateToPeriodUs: rounded to the nearest


@functools.lru_cache(maxsize=64)
def inter_event_delays_us(config: NexmarkConfig) -> tuple[int, ...]:
    """Each generator's delay between events, in µs, for each step of the rate shape.

    Beam's ``RateShape.interEventDelayUs``: one entry while the first and next
    rates are equal; else two (square) or ten (a sine sampled at ten points).
    """
    n = config.num_event_generators
    first, nxt = config.first_event_rate, config.next_event_rate
    if first == nxt:
        return (_rate_to_period_us(config, first) * n,)
    if config.rate_shape == "square":
        return (_rate_to_period_us(config, first) * n, _rate_to_period_us(config, nxt) * n)
    mid = (first + nxt) / 2.0
    amp = (first - nxt) / 2.0  # may be negative: the sine then starts at its trough
    delays = []
    for i in range(_SINE_STEPS):
        rate = mid + amp * math.cos((2.0 * math.pi * i) / _SINE_STEPS)
        delays.append(_rate_to_period_us(config, java_round(rate)) * n)
    return tuple(delays)


@dataclass(frozen=True, slots=True)
class _Epochs:
    """A rate shape's cycle: how long each step lasts, and a whole cycle in events and ms."""

    step_length_sec: int
    events_per_epoch: int
    epoch_period_ms: int


@functools.lru_cache(maxsize=64)
def _epochs(config: NexmarkConfig) -> _Epochs:
    steps = 2 if config.rate_shape == "square" else _SINE_STEPS
    step_length_sec = (config.rate_period_sec + steps - 1) // steps  # RateShape.stepLengthSec
    events_per_epoch = epoch_period_ms = 0
    delays = inter_event_delays_us(config)
    if len(delays) > 1:
        for delay in delays:
            events_in_step = (step_length_sec * 1_000_000) // delay
            events_per_epoch += events_in_step
            epoch_period_ms += (events_in_step * delay) // 1000
        if events_per_epoch == 0:
            raise ValueError("rate_period_sec is too short for any event at these rates")
    return _Epochs(step_length_sec, events_per_epoch, epoch_period_ms)


def _timestamp_for(config: NexmarkConfig, event_number: int) -> int:
    """``GeneratorConfig.timestampAndInterEventDelayUsForEvent(n).getKey()``."""
    delays = inter_event_delays_us(config)
    if len(delays) == 1:
        return config.base_time + (event_number * delays[0]) // 1000
    epochs = _epochs(config)
    epoch, n = divmod(event_number, epochs.events_per_epoch)
    offset_in_epoch_ms = 0
    for delay in delays:
        events_in_step = (epochs.step_length_sec * 1_000_000) // delay
        if n < events_in_step:
            return (
                config.base_time
                + epoch * epochs.epoch_period_ms
                + offset_in_epoch_ms
                + (n * delay) // 1000
            )
        n -= events_in_step
        offset_in_epoch_ms += (events_in_step * delay) // 1000
    raise AssertionError("events_per_epoch is the sum of the steps' events")  # pragma: no cover


def _adjusted_event_number(config: NexmarkConfig, count: int) -> int:
    """``nextAdjustedEventNumber``: the event number, shuffled within its out-of-order group."""
    n = config.out_of_order_group_size
    number = config.first_event_number + count
    return (number // n) * n + (number * _OUT_OF_ORDER_SCRAMBLE) % n


def event_id(config: NexmarkConfig, event_number: int) -> int:
    """The id Beam gives the ``event_number``-th event: its random seed and its kind."""
    _check_number(event_number)
    return config.first_event_id + _adjusted_event_number(config, event_number)


def event_timestamp(config: NexmarkConfig, event_number: int) -> int:
    """The event time (ms) of the ``event_number``-th event (jittered by out-of-order groups)."""
    _check_number(event_number)
    return _timestamp_for(config, _adjusted_event_number(config, event_number))


def watermark(config: NexmarkConfig, event_number: int) -> int:
    """The watermark Beam's generator reports with the ``event_number``-th event (ms).

    The time of the first event of its out-of-order group, so never later than
    this or any later event's timestamp, less ``watermark_holdback_sec``. It
    never decreases with ``event_number``. After the last event a source
    should advance the watermark past every window (Beam: the end of time).
    """
    _check_number(event_number)
    n = config.out_of_order_group_size
    number = config.first_event_number + event_number
    return _timestamp_for(config, (number // n) * n) - config.watermark_holdback_sec * 1000


def event(config: NexmarkConfig, event_number: int) -> tuple[int, Event]:
    """The ``event_number``-th event (from 0) and its event time in ms: Beam's ``nextEvent``.

    Deterministic: the kind follows from the event id (per round of
    ``proportion_denominator`` ids: people first, then auctions, then bids) and
    every field from a ``java.util.Random`` seeded with it.
    """
    _check_number(event_number)
    eid = event_id(config, event_number)
    timestamp = event_timestamp(config, event_number)
    rnd = JavaRandom(eid)
    rem = eid % config.proportion_denominator
    made: Event
    if rem < config.person_proportion:
        made = _next_person(config, eid, rnd, timestamp)
    elif rem < config.person_proportion + config.auction_proportion:
        made = _next_auction(config, event_number, eid, rnd, timestamp)
    else:
        made = _next_bid(config, eid, rnd, timestamp)
    return timestamp, made


def events(config: NexmarkConfig, count: int, start: int = 0) -> Iterator[tuple[int, Event]]:
    """Events ``start`` to ``start + count - 1``, as :func:`event` makes them."""
    if count < 0:
        raise ValueError(f"count must not be negative, not {count}")
    for number in range(start, start + count):
        yield event(config, number)


def _check_number(event_number: int) -> None:
    if event_number < 0:
        raise ValueError(f"event numbers start at 0, not {event_number}")


# ----------------------------------------------------------------------
# Ids (PersonGenerator, AuctionGenerator, LongGenerator)
# ----------------------------------------------------------------------
def _next_long(rnd: JavaRandom, n: int) -> int:
    """``LongGenerator.nextLong``: uniform in ``[0, n)`` for an int-sized ``n``."""
    if n < (1 << 31) - 1:
        return rnd.next_int(n)
    # Beam's fallback for huge ranges (skewed, as Beam's comment admits): |nextLong() % n|.
    return abs(java_rem(rnd.next_long(), n))


def _last_base0_person_id(config: NexmarkConfig, eid: int) -> int:
    """The newest person id (from 0) as of event ``eid``: its own if it makes a person."""
    epoch, offset = divmod(eid, config.proportion_denominator)
    if offset >= config.person_proportion:  # an auction or bid: the round's last person
        offset = config.person_proportion - 1
    return epoch * config.person_proportion + offset


def _last_base0_auction_id(config: NexmarkConfig, eid: int) -> int:
    """The newest auction id (from 0) as of event ``eid``: its own if it makes an auction."""
    epoch, offset = divmod(eid, config.proportion_denominator)
    if offset < config.person_proportion:  # a person: the previous round's last auction
        epoch -= 1
        offset = config.auction_proportion - 1
    elif offset >= config.person_proportion + config.auction_proportion:  # a bid
        offset = config.auction_proportion - 1
    else:
        offset -= config.person_proportion
    return epoch * config.auction_proportion + offset


def _next_base0_person_id(config: NexmarkConfig, eid: int, rnd: JavaRandom) -> int:
    """A random recent person (from 0): among the last ``num_active_people``, or a few ahead."""
    num_people = _last_base0_person_id(config, eid) + 1
    active = min(num_people, config.num_active_people)
    return num_people - active + _next_long(rnd, active + _PERSON_ID_LEAD)


def _next_base0_auction_id(config: NexmarkConfig, eid: int, rnd: JavaRandom) -> int:
    """A random auction (from 0) likely still open, or a few not yet created."""
    newest = _last_base0_auction_id(config, eid)
    oldest = max(newest - config.num_in_flight_auctions, 0)
    return oldest + _next_long(rnd, newest - oldest + 1 + _AUCTION_ID_LEAD)


# ----------------------------------------------------------------------
# Strings and prices (StringsGenerator, PriceGenerator)
# ----------------------------------------------------------------------
def _next_string(rnd: JavaRandom, max_length: int) -> str:
    """Lower-case letters and about 1/13 spaces, 3 to ``max_length - 1`` long before trimming."""
    length = _MIN_STRING_LENGTH + rnd.next_int(max_length - _MIN_STRING_LENGTH)
    chars = []
    for _ in range(length):
        if rnd.next_int(13) == 0:
            chars.append(" ")
        else:
            chars.append(chr(ord("a") + rnd.next_int(26)))
    return "".join(chars).strip(" ")  # Java's trim(); only spaces can be at the ends


def _next_exact_string(rnd: JavaRandom, length: int) -> str:
    """``length`` characters, six per ``nextInt()`` in base 26.

    Beam takes Java's ``%`` and ``/`` of a possibly negative int, so negative
    draws give characters below ``'a'`` (``'H'`` to ``'`'``); kept for fidelity.
    """
    chars = []
    rnd_value = 0
    left = 0
    for _ in range(length):
        if left == 0:
            rnd_value = rnd.next_int()
            left = 6  # log_26(2**31)
        chars.append(chr(ord("a") + java_rem(rnd_value, 26)))
        rnd_value = java_div(rnd_value, 26)
        left -= 1
    return "".join(chars)


def _next_extra(rnd: JavaRandom, current_size: int, desired_average_size: int) -> str:
    """Padding that brings an event of ``current_size`` to the desired size on average (±20%)."""
    if current_size > desired_average_size:
        return ""
    desired = desired_average_size - current_size
    delta = java_round(desired * 0.2)
    min_size = desired - delta
    size = min_size + (0 if delta == 0 else rnd.next_int(2 * delta))
    return _next_exact_string(rnd, size)


def _next_price(rnd: JavaRandom) -> int:
    """A price in cents, log-uniform between $1 and $1,000,000."""
    return java_round(math.pow(10.0, rnd.next_double() * 6.0) * 100.0)


# ----------------------------------------------------------------------
# The three kinds of event
# ----------------------------------------------------------------------
def _next_person(config: NexmarkConfig, eid: int, rnd: JavaRandom, timestamp: int) -> Person:
    """``PersonGenerator.nextPerson``: the fields in Beam's order of draws."""
    pid = _last_base0_person_id(config, eid) + FIRST_PERSON_ID
    name = _FIRST_NAMES[rnd.next_int(len(_FIRST_NAMES))]
    name += " " + _LAST_NAMES[rnd.next_int(len(_LAST_NAMES))]
    email = _next_string(rnd, 7) + "@" + _next_string(rnd, 5) + ".com"
    credit_card = " ".join(f"{rnd.next_int(10000):04d}" for _ in range(4))
    city = _US_CITIES[rnd.next_int(len(_US_CITIES))]
    state = _US_STATES[rnd.next_int(len(_US_STATES))]
    size = 8 + len(name) + len(email) + len(credit_card) + len(city) + len(state)
    extra = _next_extra(rnd, size, config.avg_person_byte_size)
    return Person(
        id=pid,
        name=name,
        email_address=email,
        credit_card=credit_card,
        city=city,
        state=state,
        date_time=timestamp,
        extra=extra,
    )


def _next_auction(
    config: NexmarkConfig, count: int, eid: int, rnd: JavaRandom, timestamp: int
) -> Auction:
    """``AuctionGenerator.nextAuction``: mostly the current hot seller's, open for a while."""
    aid = _last_base0_auction_id(config, eid) + FIRST_AUCTION_ID
    if rnd.next_int(config.hot_sellers_ratio) > 0:
        # The hot seller: the first person of the latest batch of 100.
        seller = (_last_base0_person_id(config, eid) // _HOT_BATCH) * _HOT_BATCH
    else:
        seller = _next_base0_person_id(config, eid, rnd)
    seller += FIRST_PERSON_ID
    category = FIRST_CATEGORY_ID + rnd.next_int(_NUM_CATEGORIES)
    initial_bid = _next_price(rnd)
    expires = timestamp + _next_auction_length_ms(config, count, rnd, timestamp)
    item_name = _next_string(rnd, 20)
    description = _next_string(rnd, 100)
    reserve = initial_bid + _next_price(rnd)
    size = 8 + len(item_name) + len(description) + 8 + 8 + 8 + 8 + 8
    extra = _next_extra(rnd, size, config.avg_auction_byte_size)
    return Auction(
        id=aid,
        item_name=item_name,
        description=description,
        initial_bid=initial_bid,
        reserve=reserve,
        date_time=timestamp,
        expires=expires,
        seller=seller,
        category=category,
        extra=extra,
    )


def _next_auction_length_ms(
    config: NexmarkConfig, count: int, rnd: JavaRandom, timestamp: int
) -> int:
    """An auction's length: on average the time until ``num_in_flight_auctions`` more open."""
    current = _adjusted_event_number(config, count)
    events_for_auctions = (
        config.num_in_flight_auctions * config.proportion_denominator
    ) // config.auction_proportion
    horizon_ms = _timestamp_for(config, current + events_for_auctions) - timestamp
    return 1 + _next_long(rnd, max(horizon_ms * 2, 1))


def _next_bid(config: NexmarkConfig, eid: int, rnd: JavaRandom, timestamp: int) -> Bid:
    """``BidGenerator.nextBid``: mostly on the hot auction, mostly by the hot bidder."""
    if rnd.next_int(config.hot_auction_ratio) > 0:
        # The hot auction: the first of the latest batch of 100 auctions.
        auction = (_last_base0_auction_id(config, eid) // _HOT_BATCH) * _HOT_BATCH
    else:
        auction = _next_base0_auction_id(config, eid, rnd)
    auction += FIRST_AUCTION_ID
    if rnd.next_int(config.hot_bidders_ratio) > 0:
        # The hot bidder: the second person of the latest batch (the first is the hot seller).
        bidder = (_last_base0_person_id(config, eid) // _HOT_BATCH) * _HOT_BATCH + 1
    else:
        bidder = _next_base0_person_id(config, eid, rnd)
    bidder += FIRST_PERSON_ID
    price = _next_price(rnd)
    extra = _next_extra(rnd, 8 + 8 + 8 + 8, config.avg_bid_byte_size)
    return Bid(auction=auction, bidder=bidder, price=price, date_time=timestamp, extra=extra)
