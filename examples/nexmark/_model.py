"""Nexmark's events, as Apache Beam's Nexmark models them (``org.apache.beam.sdk.nexmark.model``).

Plain frozen dataclasses registered with ``@portable``: they cross between
hosts and into sandboxed operators as records of the value format, and this
module imports nothing but the standard library and ``radon_actors`` (it is
bundled into sandboxed operators' components). Times are milliseconds since
the epoch (Beam's ``Instant``); prices are in cents, as in Beam.
"""

from __future__ import annotations

from dataclasses import dataclass

from radon_actors import portable

__all__ = ["Auction", "Bid", "Event", "Person"]


@portable
@dataclass(frozen=True, slots=True)
class Person:
    """A person who may sell and bid (Beam's ``Person``)."""

    id: int
    name: str
    email_address: str
    credit_card: str
    city: str
    state: str
    date_time: int
    extra: str


@portable
@dataclass(frozen=True, slots=True)
class Auction:
    """An item put up for auction by a seller (Beam's ``Auction``)."""

    id: int
    item_name: str
    description: str
    initial_bid: int
    reserve: int
    date_time: int
    expires: int
    seller: int
    category: int
    extra: str


@portable
@dataclass(frozen=True, slots=True)
class Bid:
    """A bid on an auction (Beam's ``Bid``)."""

    auction: int
    bidder: int
    price: int
    date_time: int
    extra: str


Event = Person | Auction | Bid
"""One event of the stream (Beam's ``Event`` holds exactly one of these)."""
