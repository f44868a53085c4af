"""DeathStarBench's hotelReservation services as atoms, one atom class per service.

Follows ``hotelReservation/services/*/server.go`` of delimitrou/DeathStarBench
(commit 6ecb097, June 2024) and the go-geoindex it vendors
(``github.com/hailocab/go-geoindex``):

* :class:`Geo` (``services/geo``): ``nearby`` runs go-geoindex's
  ``ClusteringIndex.KNearest`` over the hotels' positions: at most
  :data:`MAX_RESULTS` (5) hotels within :data:`SEARCH_RADIUS_M` (10 km), found on
  go-geoindex's 500 m grid ring by ring until more than 5 turned up, ordered by
  its approximate (flat) distance, cut at the first beyond the radius by the
  haversine distance.
* :class:`Rate` (``services/rate``): the rate plans of the hotels asked for,
  highest total rate first.
* :class:`Profile` (``services/profile``): the profiles of the hotels asked for.
* :class:`Recommendation` (``services/recommendation``): ``"dis"``, the hotels
  nearest to a point (haversine); ``"rate"``, those with the highest rate;
  ``"price"``, those with the lowest price.
* :class:`User` (``services/user``): a user's password checked against its
  stored SHA-256.
* :class:`Reservation` (``services/reservation``): ``check_availability`` and
  ``make_reservation``; a stay is the nights from the check-in date up to the
  day before the check-out date, and a booking of ``number`` rooms is refused
  when any of its nights would have more than the hotel's capacity booked
  (``count + number > capacity``), else added to every night. Each hotel's
  nights are kept and decided by one :class:`HotelBookings` atom, on demand and
  durable, keyed by hotel id.
* :class:`Search` (``services/search``): geo, then rates; the hotels that have a
  rate plan, in the rates' order.
* :class:`Frontend` (``services/frontend``): one handler per HTTP request of the
  original (``/hotels``, ``/recommendations``, ``/user``, ``/reservation``),
  each returning what the original writes as its JSON body (the GeoJSON
  feature collection, ``{"message": ...}`` with the original's exact
  messages), and raising :class:`BadRequest` where the original answers 400.
  It gets the Refs of the services it calls in its constructor (as
  :class:`Search` does), so where each service runs (this process, a worker
  host, the sandbox) is decided by whoever spawns them, not by this code;
  :func:`spawn_services` spawns them all in the system's process.

Where this differs from the original:

* **No overbooking.** The original reads each night's count (from memcached or
  MongoDB) and writes the new reservations afterwards, with nothing between two
  concurrent requests, so two of them can both pass the check. Here one
  :class:`HotelBookings` atom per hotel decides, one message at a time, and
  saves the nights before it answers; a second incarnation of the same hotel
  (two systems on one store) is refused by the store's revision check
  (:class:`~radon_actors.StateConflict`), and :class:`Reservation` then asks
  again, which reads the stored nights afresh.
* **Only counts are kept.** The original inserts one record per night with the
  customer's name and never reads the name back; here a hotel's state is the
  rooms booked per night (``customerName`` is still required by
  ``Frontend.reservation``, as in the original).
* **A failed login books nothing.** The original's ``/reservation`` makes the
  reservation even when the password is wrong (only the message changes); here
  it answers ``"Failed. Please check your username and password. "`` and books
  nothing.
* **Rates are per hotel.** Since the MongoDB driver change of November 2023
  (347e0fe) the original's rate service loads *every* plan in the table for
  each hotel id not in memcached (``Find`` with an empty filter), so a search
  returns every hotel that has a plan, wherever it is. Here, as before that
  change, a hotel's plans are its own. Neither filters plans by date (the
  request's dates are not used, here or there).
* **Availability as intended.** The original's ``CheckAvailability`` keys
  capacities read from memcached by ``"<id>_cap"`` but looks them up by
  ``"<id>"`` (capacity 0: unavailable), and queries MongoDB for missing ones
  with a malformed filter (``{"$in": ids}`` at the top level). Here a hotel is
  available when every night of the stay has room for ``number`` more rooms, as
  the code sets out to decide; a hotel without a capacity is unavailable (as a
  missing capacity is there).
* **Deterministic order.** Where the original's order comes from Go map
  iteration or from goroutines finishing (profiles, available hotels,
  recommendations, rate plans with equal rates, geo points at equal
  distance), here it is the request's order (ties in the rates and geo sorts
  keep the order they came in; recommendations in hotel-id order), with
  duplicates dropped where the original's maps drop them.
* **Bad requests.** What the original answers 400 is :class:`BadRequest` here,
  with the same message and checked in the same order. Beyond that, values the
  original parses while ignoring errors are refused here: dates that are not
  calendar dates ``YYYY-MM-DD`` (also for ``/hotels``, which checks none) and
  stays longer than :data:`MAX_NIGHTS` nights; a ``lat``/``lon`` that is not a
  finite decimal number (the original takes 0); a ``number`` of rooms that is
  not a whole number from 0 to 2**31-1 (the original takes 0 for garbage and
  books a negative number as given, freeing rooms). ``lat``/``lon`` of
  ``/reservation`` are ignored, as there (the workload sends ``nil``). A
  reservation at a hotel that does not exist raises :class:`UnknownHotel`
  (the original's service panics). :class:`Geo` and :class:`Recommendation`
  refuse non-finite coordinates with :class:`BadRequest` (the original computes
  NaN distances).
* **Floating point.** Coordinates are rounded to float32 where the original's
  messages carry them as protobuf ``float`` (the ``/hotels`` path), and a
  profile's coordinates are the decimal the original's JSON shows (see
  ``_data``). Sines, cosines and arc tangents come from the C library here and
  from Go's own ``math`` package there, which may differ in the last bit.
* No memcached, MongoDB, Consul, tracing or TLS; no reviews or attractions
  (services the frontend also has); a profile request's locale is ignored, as
  the original's profile service ignores it.

Each atom handles one message at a time, and a turn of :class:`Frontend`,
:class:`Search` or :class:`Reservation` includes the asks it awaits: one
frontend serves one request at a time. Several frontends (and reservation
atoms) can share the other services to serve requests side by side, as the
tests' concurrent reservations do; no decision depends on there being one,
since each hotel's bookings are decided by its own :class:`HotelBookings`.

This module runs in every deployment, natively, on worker hosts and inside the
WebAssembly sandbox: it imports only the standard library and ``radon_actors``.
"""

from __future__ import annotations

import datetime
import functools
import hmac
import math
import re
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from radon_actors import Atom, Ref, Rejection, StateConflict, handler, portable, state

from ._data import (
    CAPACITIES,
    GEO_POINTS,
    PROFILES,
    RATE_PLANS,
    RECOMMENDATIONS,
    SEED_RESERVATIONS,
    USERS,
    GeoPoint,
    HotelProfile,
    RatePlan,
    float32,
    is_decimal,
    parse_float32,
    password_hash,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from radon_actors import System

__all__ = [
    "ALREADY_RESERVED",
    "MODES",
    "CAPACITY",
    "LOGIN_FAILED",
    "LOGIN_OK",
    "MAX_NIGHTS",
    "MAX_RESULTS",
    "RESERVED",
    "SEARCH_RADIUS_M",
    "BadRequest",
    "Frontend",
    "Geo",
    "HotelBookings",
    "Nights",
    "Profile",
    "Rate",
    "Recommendation",
    "Reservation",
    "Search",
    "UnknownHotel",
    "User",
    "approximate_square_distance",
    "distance",
    "geojson",
    "k_nearest",
    "stay_nights",
    "spawn_services",
]


# ----------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------
@portable
class BadRequest(Rejection):
    """A request the frontend refuses (missing or malformed parameters): the
    original answers these with HTTP 400 and the message, ``str(exc)``."""


@portable
class UnknownHotel(BadRequest):
    """A reservation at a hotel id the data does not have."""


# ----------------------------------------------------------------------
# Distances, as go-geoindex computes them
# ----------------------------------------------------------------------
SEARCH_RADIUS_M = 10_000.0
"""The geo service's ``maxSearchRadius`` (10 km)."""
MAX_RESULTS = 5
"""The geo service's ``maxSearchResults``."""

EARTH_RADIUS_M = 6_371_000.0  # go-geoindex's earthRadius
CELL_M = 500.0  # the street-level PointsIndex's resolution (ClusteringIndex.KNearest uses it)
LAT_DEGREE_M = 111_000.0  # latDegreeLength: the grid's and the flat distance's degree of latitude
LON_DEGREE_M = 85_000.0  # lonDegreeLength: the grid's degree of longitude


def _radians(x: float) -> float:
    return x * math.pi / 180.0  # toRadians, in Go's order of operations


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0.0 else math.nan  # Go's Sqrt of a negative is NaN


def distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (go-geoindex's ``Distance``: haversine on a
    sphere of radius 6371 km)."""
    sin_lat = math.sin(_radians(lat2 - lat1) / 2)
    sin_lon = math.sin(_radians(lon2 - lon1) / 2)
    a = sin_lat * sin_lat + sin_lon * sin_lon * math.cos(_radians(lat1)) * math.cos(_radians(lat2))
    return EARTH_RADIUS_M * (2 * math.atan2(_sqrt(a), _sqrt(1 - a)))


def _lon_degree_m(lat: float) -> float:
    # lonLength.get: the length of a degree of longitude at the latitude
    # truncated to a tenth of a degree.
    return _lon_degree_at(int(lat * 10))


@functools.lru_cache(maxsize=4096)
def _lon_degree_at(tenths: int) -> float:
    rounded = tenths / 10
    return distance(rounded, 0.0, rounded, 1.0)


def approximate_square_distance(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """go-geoindex's ``approximateSquareDistance``: the square of a flat distance in
    metres, which ``KNearest`` sorts by."""
    lat_m = abs(lat1 - lat2) * LAT_DEGREE_M
    lon_m = abs(lon1 - lon2) * _lon_degree_m((lat1 + lat2) / 2.0)
    return lat_m * lat_m + lon_m * lon_m


def _cell(lat: float, lon: float) -> tuple[int, int]:
    # cellOf: the grid cell, counted from (-90, -180); int() truncates as Go's does.
    return (
        int((90.0 + lat) * LAT_DEGREE_M / CELL_M),
        int((180.0 + lon) * LON_DEGREE_M / CELL_M),
    )


def k_nearest(
    points: Iterable[GeoPoint],
    lat: float,
    lon: float,
    k: int = MAX_RESULTS,
    max_distance: float = SEARCH_RADIUS_M,
) -> list[GeoPoint]:
    """go-geoindex's ``PointsIndex.KNearest`` with every point accepted.

    It takes the points of the query's cell, then the rings of cells around it
    (ring ``d``: the cells ``d`` steps away in either direction), stopping after
    the first ring that brings the count of ring points past ``k`` or when the
    rings reach twice ``max_distance``; sorts what it took by the approximate
    distance (ties: the order of ``points``); and returns the leading points up
    to ``k``, cut at the first one farther than ``max_distance`` (haversine).
    That is not always the true ``k`` nearest: a point in a further ring can be
    nearer than one taken, and the sort and the cut use different distances.
    """
    return _k_nearest(_cells(points), lat, lon, k, max_distance)


def _cells(points: Iterable[GeoPoint]) -> tuple[tuple[int, int, GeoPoint], ...]:
    # Each point's grid cell: the geo service computes them once (its index).
    return tuple((*_cell(p.lat, p.lon), p) for p in points)


def _k_nearest(
    cells: tuple[tuple[int, int, GeoPoint], ...],
    lat: float,
    lon: float,
    k: int,
    max_distance: float,
) -> list[GeoPoint]:
    cx, cy = _cell(lat, lon)
    # Ring d holds the points whose cell is d cells away (Chebyshev): the same
    # points the original's four loops over the ring's cells find.
    by_ring: dict[int, list[tuple[int, GeoPoint]]] = {}
    for order, (px, py, p) in enumerate(cells):
        by_ring.setdefault(max(abs(px - cx), abs(py - cy)), []).append((order, p))
    taken = list(by_ring.get(0, ()))  # the query's own cell, not counted below
    in_rings = 0
    reach = max(max_distance * 2.0, CELL_M * 2.0 + 0.01)  # "search at least one square away"
    d = 1
    while d * CELL_M <= reach:
        ring = by_ring.get(d, ())
        taken.extend(ring)
        in_rings += len(ring)
        if in_rings > k:
            break
        d += 1
    # The original's sort.Sort leaves ties in whatever order its maps gave; here
    # they keep the order of ``points``.
    taken.sort(key=lambda e: (approximate_square_distance(e[1].lat, e[1].lon, lat, lon), e[0]))
    nearest: list[GeoPoint] = []
    for _, p in taken[: max(k, 0)]:
        if distance(lat, lon, p.lat, p.lon) > max_distance:
            break
        nearest.append(p)
    return nearest


def _finite(*values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise BadRequest("coordinates must be finite numbers")


# ----------------------------------------------------------------------
# Stays
# ----------------------------------------------------------------------
MAX_NIGHTS = 366
"""The longest stay a request may name (the original has no limit)."""

_DATE_FORMAT = "Please check inDate/outDate format (YYYY-MM-DD)"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # the frontend's checkDataFormat


def _date(text: str) -> datetime.date:
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise BadRequest(_DATE_FORMAT)
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(_DATE_FORMAT) from None


def stay_nights(in_date: str, out_date: str) -> list[str]:
    """The nights of a stay, each named by its date: ``in_date`` up to the day
    before ``out_date`` (none if ``out_date`` is not later), as the reservation
    service walks them (its records run from one night's date to the next's).
    :class:`BadRequest` for a date that is not ``YYYY-MM-DD`` or a stay longer
    than :data:`MAX_NIGHTS`."""
    return list(_stay(in_date, out_date))


@functools.lru_cache(maxsize=4096)
def _stay(in_date: str, out_date: str) -> tuple[str, ...]:
    # Cached: a workload names few distinct stays. Refusals are not cached.
    first, end = _date(in_date), _date(out_date)
    if (end - first).days > MAX_NIGHTS:
        raise BadRequest(f"Please choose a stay of at most {MAX_NIGHTS} nights")
    nights = []
    night = first
    while night < end:
        nights.append(night.isoformat())
        night += datetime.timedelta(days=1)
    return tuple(nights)


_MAX_ROOMS = 2**31 - 1  # the request's roomNumber is an int32


def _check_number(number: int) -> None:
    if type(number) is not int or not 0 <= number <= _MAX_ROOMS:
        raise BadRequest("Please check number params (a whole number of rooms, 0 or more)")


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


# ----------------------------------------------------------------------
# Geo, Rate, Profile, Recommendation, User
# ----------------------------------------------------------------------
class Geo(Atom):
    """The geo service: hotels near a point."""

    def __init__(self) -> None:
        self.cells = _cells(GEO_POINTS)

    @handler
    def nearby(self, lat: float, lon: float) -> list[str]:
        """The ids of the nearest hotels within 10 km, at most 5, nearest first."""
        lat, lon = float32(lat), float32(lon)  # the request's lat/lon are protobuf floats
        _finite(lat, lon)
        nearest = _k_nearest(self.cells, lat, lon, MAX_RESULTS, SEARCH_RADIUS_M)
        return [p.hotel_id for p in nearest]


class Rate(Atom):
    """The rate service: hotels' rate plans."""

    def __init__(self) -> None:
        self.plans: dict[str, list[RatePlan]] = {}
        for plan in RATE_PLANS:
            self.plans.setdefault(plan.hotel_id, []).append(plan)

    @handler
    def get_rates(self, hotel_ids: list[str], in_date: str, out_date: str) -> list[RatePlan]:
        """The plans of the hotels, highest total rate first (equal rates in the
        order asked); the dates are not used, as in the original."""
        plans = [plan for hotel_id in _unique(hotel_ids) for plan in self.plans.get(hotel_id, ())]
        # The original sorts by TotalRate, descending; sorted() is stable.
        return sorted(plans, key=lambda plan: plan.room_type.total_rate, reverse=True)


class Profile(Atom):
    """The profile service: hotels' profiles."""

    def __init__(self) -> None:
        self.profiles = {p.id: p for p in PROFILES}

    @handler
    def get_profiles(self, hotel_ids: list[str], locale: str = "en") -> list[HotelProfile]:
        """The profiles of the hotels, in the order asked, each once; unknown ids are
        skipped (the original appends a nil profile). ``locale`` is not used."""
        return [self.profiles[i] for i in _unique(hotel_ids) if i in self.profiles]


class Recommendation(Atom):
    """The recommendation service: hotels by distance, rate or price."""

    def __init__(self) -> None:
        self.hotels = RECOMMENDATIONS

    @handler
    def get_recommendations(self, require: str, lat: float, lon: float) -> list[str]:
        """``"dis"``: the hotels nearest to (lat, lon); ``"rate"``: those with the
        highest rate; ``"price"``: those with the lowest price; anything else: none.
        Every hotel tied for the best, in hotel-id order."""
        if require == "dis":
            _finite(lat, lon)
            scores = [distance(lat, lon, h.lat, h.lon) / 1000 for h in self.hotels]
            best = _least(scores)
        elif require == "rate":
            scores = [h.rate for h in self.hotels]
            best = 0.0  # the original starts from 0 and keeps the greatest
            for s in scores:
                if s > best:
                    best = s
        elif require == "price":
            scores = [h.price for h in self.hotels]
            best = _least(scores)
        else:
            return []  # the original logs a warning and answers no hotels
        return [h.hotel_id for h, s in zip(self.hotels, scores, strict=True) if s == best]


def _least(scores: list[float]) -> float:
    # As the original: from the largest float down, so a NaN is never the least.
    least = sys.float_info.max
    for s in scores:
        if s < least:
            least = s
    return least


class User(Atom):
    """The user service: checks passwords."""

    def __init__(self) -> None:
        self.passwords = {u.username: u.password_sha256 for u in USERS}

    @handler
    def check_user(self, username: str, password: str) -> bool:
        """Whether ``username`` exists and the SHA-256 of ``password`` is its stored one."""
        stored = self.passwords.get(username)
        return stored is not None and hmac.compare_digest(stored, password_hash(password))


# ----------------------------------------------------------------------
# Reservation, and each hotel's bookings
# ----------------------------------------------------------------------
CAPACITY: dict[str, int] = {c.hotel_id: c.rooms for c in CAPACITIES}


def _seed_nights(hotel_id: str) -> dict[str, int]:
    booked: dict[str, int] = {}
    for r in SEED_RESERVATIONS:
        if r.hotel_id == hotel_id:
            for night in stay_nights(r.in_date, r.out_date):
                booked[night] = booked.get(night, 0) + r.number
    return booked


@portable
@dataclass
class Nights:
    """A hotel's bookings: the rooms booked on each night, by the night's date
    (the original's per-night records, summed)."""

    booked: dict[str, int] = field(default_factory=dict)


class HotelBookings(Atom):
    """One hotel's bookings, on demand and durable, keyed by hotel id
    (``system.get(HotelBookings, "4")``): the only place a hotel's reservations
    are decided, one message at a time, each saved before it is answered."""

    durable_type = "hotel.bookings"
    nights = state(Nights)

    def on_start(self) -> None:
        if not self.nights.exists:  # never saved: the original's seed reservations
            self.nights.value = Nights(_seed_nights(self._hotel_id()))

    def _hotel_id(self) -> str:
        return str(self.key)

    def _capacity(self) -> int:
        capacity = CAPACITY.get(self._hotel_id())
        if capacity is None:
            raise UnknownHotel(f"Unknown hotelId {self._hotel_id()}")
        return capacity

    def _fits(self, nights: list[str], number: int) -> bool:
        capacity = self._capacity()
        booked = self.nights.value.booked
        # The original refuses when ``count + number > capacity`` on any night.
        return all(booked.get(night, 0) + number <= capacity for night in nights)

    @handler
    def available(self, in_date: str, out_date: str, number: int) -> bool:
        """Whether ``number`` more rooms fit on every night of the stay."""
        _check_number(number)
        return self._fits(stay_nights(in_date, out_date), number)

    @handler
    async def reserve(self, in_date: str, out_date: str, number: int) -> bool:
        """Book ``number`` rooms for every night of the stay, if they fit on every
        night; saved before answering. False (nothing booked) if any night is full.
        A stay of no nights is accepted and books nothing, as in the original."""
        _check_number(number)
        nights = stay_nights(in_date, out_date)
        if not self._fits(nights, number):
            return False
        if not nights:
            return True
        booked = dict(self.nights.value.booked)
        for night in nights:
            booked[night] = booked.get(night, 0) + number
        self.nights.value = Nights(booked)
        # A stale incarnation's save raises StateConflict: this activation stops
        # and the asker hears of it before anything is answered as booked.
        await self.nights.save()
        return True

    @handler
    def booked(self) -> dict[str, int]:
        """The rooms booked on each night that has any."""
        return {night: n for night, n in sorted(self.nights.value.booked.items()) if n}

    @handler
    def capacity(self) -> int:
        """The hotel's number of rooms."""
        return self._capacity()


_ATTEMPTS = 3  # asks of a hotel's bookings when its save meets a newer incarnation's


class Reservation(Atom):
    """The reservation service: availability, and bookings, each hotel's decided by
    its :class:`HotelBookings` atom."""

    @handler
    async def check_availability(
        self, hotel_ids: list[str], in_date: str, out_date: str, number: int
    ) -> list[str]:
        """The hotels (in the order asked, each once) where ``number`` rooms are free
        on every night of the stay. With no nights, every hotel, as in the original."""
        _check_number(number)
        nights = stay_nights(in_date, out_date)
        available = []
        for hotel_id in _unique(hotel_ids):
            if not nights:
                available.append(hotel_id)  # nothing to check
            elif hotel_id in CAPACITY and await self.on_demand(HotelBookings, hotel_id).ask(
                HotelBookings.available, in_date, out_date, number
            ):
                available.append(hotel_id)
        return available

    @handler
    async def make_reservation(
        self, hotel_id: str, in_date: str, out_date: str, number: int
    ) -> list[str]:
        """Book ``number`` rooms at the hotel for every night of the stay: ``[hotel_id]``
        if booked, ``[]`` if some night has not enough rooms left (the original's
        result). :class:`UnknownHotel` for a hotel that does not exist."""
        _check_number(number)
        stay_nights(in_date, out_date)
        if hotel_id not in CAPACITY:
            raise UnknownHotel(f"Unknown hotelId {hotel_id}")
        bookings = self.on_demand(HotelBookings, hotel_id)
        for attempt in range(_ATTEMPTS):
            try:
                booked = await bookings.ask(HotelBookings.reserve, in_date, out_date, number)
            except StateConflict:
                # Nothing was written; the refused activation stopped, and the next
                # ask activates one that reads the stored nights afresh.
                if attempt == _ATTEMPTS - 1:
                    raise
                continue
            return [hotel_id] if booked else []
        raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------------
# Search
# ----------------------------------------------------------------------
class Search(Atom):
    """The search service: nearby hotels that have rates."""

    def __init__(self, geo: Ref[Geo], rate: Ref[Rate]) -> None:
        self.geo = geo
        self.rate = rate

    @handler
    async def nearby(self, lat: float, lon: float, in_date: str, out_date: str) -> list[str]:
        """The hotels near (lat, lon), in the order of their rate plans."""
        lat, lon = float32(lat), float32(lon)  # protobuf floats, as in the original
        hotel_ids = await self.geo.ask(Geo.nearby, lat, lon)
        plans = await self.rate.ask(Rate.get_rates, hotel_ids, in_date, out_date)
        return [plan.hotel_id for plan in plans]


# ----------------------------------------------------------------------
# Frontend
# ----------------------------------------------------------------------
LOGIN_OK = "Login successfully!"
LOGIN_FAILED = "Failed. Please check your username and password. "
RESERVED = "Reserve successfully!"
ALREADY_RESERVED = "Failed. Already reserved. "


def geojson(profiles: Iterable[HotelProfile]) -> dict[str, Any]:
    """The original's ``geoJSONResponse``: a GeoJSON feature collection of the
    hotels, a point at each address (longitude first)."""
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": p.id,
                "properties": {"name": p.name, "phone_number": p.phone_number},
                "geometry": {"type": "Point", "coordinates": [p.address.lon, p.address.lat]},
            }
            for p in profiles
        ],
    }


def _absent(value: object) -> bool:
    return value is None or value == ""  # an absent query parameter reads as ""


def _given(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value != ""  # present, and text


_COORDINATE = "Please check lat/lon params (finite decimal numbers)"


def _coordinate(value: float | str | None, *, single: bool) -> float:
    """A lat/lon parameter (decimal text, or a number) as the original parses it:
    ``single``, rounded to float32 straight from the decimal as Go's
    ``strconv.ParseFloat(s, 32)`` does; else to float64 (``ParseFloat(s, 64)``).
    Refused unless finite (the original takes 0 for what it cannot parse)."""
    if isinstance(value, str):
        if not is_decimal(value):
            raise BadRequest(_COORDINATE)
        number = parse_float32(value) if single else float(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float32(float(value)) if single else float(value)
    else:
        raise BadRequest(_COORDINATE)
    if not math.isfinite(number):
        raise BadRequest(_COORDINATE)
    return number


def _rooms(value: int | str | None) -> int:
    """The number of rooms: 0 when absent (as in the original), else a whole number
    from 0 to 2**31-1 (text as Go's ``strconv.Atoi`` reads it)."""
    if value is None or value == "":
        return 0
    number = -1  # refused below
    if isinstance(value, str):
        if re.fullmatch(r"[+-]?[0-9]{1,12}", value):
            number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    _check_number(number)
    return number


class Frontend(Atom):
    """The frontend: one handler per HTTP request of the original, answering its
    JSON body. Parameters are the query parameters (None or "" when absent;
    numbers as text or as numbers)."""

    def __init__(
        self,
        search: Ref[Search],
        profile: Ref[Profile],
        recommendation: Ref[Recommendation],
        user: Ref[User],
        reservation: Ref[Reservation],
    ) -> None:
        self.search = search
        self.profile = profile
        self.recommendation = recommendation
        self.user_service = user  # not ``user``: that is a handler's name
        self.reservation_service = reservation

    @handler
    async def hotels(
        self,
        in_date: str | None = None,
        out_date: str | None = None,
        lat: float | str | None = None,
        lon: float | str | None = None,
    ) -> dict[str, Any]:
        """``/hotels``: the available hotels near (lat, lon) with a room for the
        stay, as a GeoJSON feature collection."""
        if not (_given(in_date) and _given(out_date)):
            raise BadRequest("Please specify inDate/outDate params")
        if _absent(lat) or _absent(lon):
            raise BadRequest("Please specify location params")
        stay_nights(in_date, out_date)  # not checked there: calendar dates, not too long a stay
        lat32, lon32 = _coordinate(lat, single=True), _coordinate(lon, single=True)
        hotel_ids = await self.search.ask(Search.nearby, lat32, lon32, in_date, out_date)
        available = await self.reservation_service.ask(
            Reservation.check_availability, hotel_ids, in_date, out_date, 1
        )
        profiles = await self.profile.ask(Profile.get_profiles, available, "en")
        return geojson(profiles)

    @handler
    async def recommendations(
        self,
        require: str | None = None,
        lat: float | str | None = None,
        lon: float | str | None = None,
    ) -> dict[str, Any]:
        """``/recommendations``: the recommended hotels (``require``: ``"dis"``,
        ``"rate"`` or ``"price"``), as a GeoJSON feature collection."""
        if _absent(lat) or _absent(lon):
            raise BadRequest("Please specify location params")
        if require not in ("dis", "rate", "price"):
            raise BadRequest("Please specify require params")
        lat64, lon64 = _coordinate(lat, single=False), _coordinate(lon, single=False)
        hotel_ids = await self.recommendation.ask(
            Recommendation.get_recommendations, require, lat64, lon64
        )
        profiles = await self.profile.ask(Profile.get_profiles, hotel_ids, "en")
        return geojson(profiles)

    @handler
    async def user(
        self, username: str | None = None, password: str | None = None
    ) -> dict[str, Any]:
        """``/user``: whether the login is right, as ``{"message": ...}``."""
        if not (_given(username) and _given(password)):
            raise BadRequest("Please specify username and password")
        correct = await self.user_service.ask(User.check_user, username, password)
        return {"message": LOGIN_OK if correct else LOGIN_FAILED}

    @handler
    async def reservation(
        self,
        in_date: str | None = None,
        out_date: str | None = None,
        lat: float | str | None = None,
        lon: float | str | None = None,
        hotel_id: str | None = None,
        customer_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        number: int | str | None = None,
    ) -> dict[str, Any]:
        """``/reservation``: book ``number`` rooms (0 when absent) at the hotel
        for the stay, as ``{"message": ...}``. ``lat``/``lon`` are not used."""
        del lat, lon  # sent by the workload (as "nil"), read by nobody
        if not (_given(in_date) and _given(out_date)):
            raise BadRequest("Please specify inDate/outDate params")
        if not _DATE.fullmatch(in_date) or not _DATE.fullmatch(out_date):
            raise BadRequest(_DATE_FORMAT)
        if not _given(hotel_id):
            raise BadRequest("Please specify hotelId params")
        if not _given(customer_name):
            raise BadRequest("Please specify customerName params")
        if not (_given(username) and _given(password)):
            raise BadRequest("Please specify username and password")
        rooms = _rooms(number)
        stay_nights(in_date, out_date)  # calendar dates, and not too long a stay
        if not await self.user_service.ask(User.check_user, username, password):
            return {"message": LOGIN_FAILED}  # the original books anyway
        booked = await self.reservation_service.ask(
            Reservation.make_reservation, hotel_id, in_date, out_date, rooms
        )
        return {"message": RESERVED if booked else ALREADY_RESERVED}


# ----------------------------------------------------------------------
# Deployment
# ----------------------------------------------------------------------
MODES = ("local", "hosts", "sandboxed")
"""Where :func:`spawn_services` puts the services (the frontend stays here)."""


async def spawn_services(
    system: System, *, mode: str = "local", hosts: Sequence[str] = ()
) -> Ref[Frontend]:
    """Spawn every service once, wired as the original's frontend and search
    call them; returns the frontend, which runs in the system's process.

    ``mode`` places the services: ``local`` (this process), ``hosts`` (round
    robin over the worker hosts named in ``hosts``, started already) or
    ``sandboxed`` (each in the WebAssembly sandbox, in this process;
    :class:`Reservation` is granted the on-demand :class:`HotelBookings`,
    ``SandboxConfig(on_demand=[HotelBookings])``, which it reaches by hotel
    id). The service code is the same in every mode. Each hotel's bookings (on
    demand, native) are activated at the system's process.
    """
    (frontend,) = await spawn_frontends(system, 1, mode=mode, hosts=hosts)
    return frontend


async def spawn_frontends(
    system: System, count: int, *, mode: str = "local", hosts: Sequence[str] = ()
) -> list[Ref[Frontend]]:
    """As :func:`spawn_services`, with ``count`` frontends to serve ``count``
    requests at once (an atom answers one message at a time; the original's
    services serve each request on its own goroutine).

    The services that wait on others while they answer, :class:`Search` and
    :class:`Reservation`, get one atom per frontend too; the others (geo,
    rate, profile, recommendation, user) answer without waiting and are
    spawned once, shared by all.
    """
    if mode not in MODES:
        raise ValueError(f"mode is one of {', '.join(MODES)}, not {mode!r}")
    if mode == "hosts" and not hosts:
        raise ValueError("the hosts mode needs worker hosts: start some and name them")
    if count < 1:
        raise ValueError(f"count is the number of frontends, at least 1, not {count}")
    from radon_actors import SandboxConfig  # host-only: this module also runs as a guest

    # Reservation reaches each hotel's bookings by key: a capability the host
    # grants a sandboxed atom class by class.
    reservation_sandbox = SandboxConfig(on_demand=[HotelBookings])
    placed = 0

    async def spawn(cls: type[Atom], *args: Any) -> Ref[Any]:
        nonlocal placed
        options: dict[str, Any] = {}
        if mode == "hosts":
            options["host"] = hosts[placed % len(hosts)]
            placed += 1
        elif mode == "sandboxed":
            options["sandbox"] = reservation_sandbox if cls is Reservation else True
        return await system.spawn(cls, *args, **options)

    geo = await spawn(Geo)
    rate = await spawn(Rate)
    profile = await spawn(Profile)
    recommendation = await spawn(Recommendation)
    user = await spawn(User)
    frontends = []
    for _ in range(count):
        search = await spawn(Search, geo, rate)
        reservation = await spawn(Reservation)
        frontends.append(
            await system.spawn(Frontend, search, profile, recommendation, user, reservation)
        )
    return frontends
