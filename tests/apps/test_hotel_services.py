"""DeathStarBench's hotelReservation on atoms (examples/hotel): the seed data, each
service, every frontend request with inputs from the workload's ranges, and no
overbooking under concurrency, across a restart and against a stale incarnation.

Expected values are derived from the original's data and code by hand; each
test says how. Workload inputs follow
``wrk2/scripts/hotel-reservation/mixed-workload_type_1.lua``: a search or a
recommendation at ``lat = 38.0235 + (a - 240.5)/1000`` (``a`` in 0..481) and
``lon = -122.095 + (b - 157)/1000`` (``b`` in 0..325), sent as Lua's ``tostring``
prints them (``%.14g``); stays from 2015-04-09 on; user ``n`` in 0..500 logging in
as ``Cornell_<n>`` with ``n`` ten times as the password.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import sqlite3
import struct
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.hotel import (
    BadRequest,
    Frontend,
    Geo,
    HotelBookings,
    Profile,
    Rate,
    Recommendation,
    User,
    spawn_frontends,
    spawn_services,
)
from examples.hotel import _data as data
from examples.hotel._data import GeoPoint, float32, parse_float32, parse_float32_exact
from examples.hotel._services import (
    ALREADY_RESERVED,
    LOGIN_FAILED,
    LOGIN_OK,
    RESERVED,
    approximate_square_distance,
    distance,
    k_nearest,
)
from radon_actors import Ref, SQLiteStore, System, open_system

ROOT = Path(__file__).resolve().parents[2]


def workload_point(a: int, b: int) -> tuple[str, str]:
    """A search's or recommendation's lat/lon as the workload sends them."""
    return f"{38.0235 + (a - 240.5) / 1000.0:.14g}", f"{-122.095 + (b - 157.0) / 1000.0:.14g}"


def feature(hotel_id: str, lon: float, lat: float) -> dict[str, Any]:
    """One hotel of a GeoJSON answer. Every hotel from 7 on is named and described
    as hotel 6 (St. Regis), with the phone ``(415) 284-40<id>``."""
    return {
        "type": "Feature",
        "id": hotel_id,
        "properties": {
            "name": "St. Regis San Francisco",
            "phone_number": f"(415) 284-40{hotel_id}",
        },
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture
async def hotel(tmp_path: Path) -> AsyncIterator[tuple[System, Ref[Frontend]]]:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        yield system, await spawn_services(system)


def stored_nights(db: Path, hotel_id: str) -> dict[str, int]:
    """A hotel's nights as the store holds them (read with sqlite3, not through atoms)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT document FROM radon_state WHERE atom_type = ? AND key = ? AND name = ?",
            ("hotel.bookings", hotel_id, "nights"),
        ).fetchone()
    if row is None or row[0] is None:
        return {}
    booked: dict[str, int] = json.loads(row[0])["fields"]["booked"]
    return booked


# ----------------------------------------------------------------------
# The data
# ----------------------------------------------------------------------
def test_the_tables_hold_the_originals_seed_data() -> None:
    assert [p.hotel_id for p in data.GEO_POINTS] == [str(i) for i in range(1, 81)]
    assert data.GEO_POINTS[0] == GeoPoint("1", 37.7867, -122.4112)
    assert data.GEO_POINTS[2] == GeoPoint("3", 37.7854, -122.4071)  # 37.7854 in cmd/geo
    # Hotel i from 7 on: 37.7835 + i/500*3, -122.41 + i/500*4 in float64.
    assert data.GEO_POINTS[6] == GeoPoint("7", 37.7835 + 7 / 500 * 3, -122.41 + 7 / 500 * 4)
    assert data.GEO_POINTS[79] == GeoPoint("80", 37.7835 + 80 / 500 * 3, -122.41 + 80 / 500 * 4)
    assert math.isclose(data.GEO_POINTS[79].lat, 38.2635) and math.isclose(
        data.GEO_POINTS[79].lon, -121.77
    )

    profiles = {p.id: p for p in data.PROFILES}
    assert len(profiles) == 80
    assert (profiles["1"].name, profiles["1"].phone_number) == ("Clift Hotel", "(415) 775-4700")
    assert (profiles["1"].address.street_number, profiles["1"].address.street_name) == (
        "495",
        "Geary St",
    )
    assert profiles["3"].address.lat == 37.7834  # 37.7834 in cmd/profile (and recommendation)
    assert "It\u2019s a 4-minute walk" in profiles["5"].description  # a typographic apostrophe
    assert profiles["7"].phone_number == "(415) 284-407"
    assert profiles["80"].phone_number == "(415) 284-4080"
    assert profiles["80"].description == profiles["6"].description
    # Float32 arithmetic (37.7835f + 7f/500f*3f ...), printed as the shortest text
    # that reads back as the same float32: the same digits as C's float arithmetic
    # with strtof gives for these hotels.
    assert (profiles["7"].address.lat, profiles["7"].address.lon) == (37.8255, -122.354004)
    assert (profiles["9"].address.lat, profiles["9"].address.lon) == (37.8375, -122.338005)
    assert (profiles["80"].address.lat, profiles["80"].address.lon) == (38.2635, -121.770004)

    # Plans for 1, 2, 3 and the multiples of 3 from 9 to 78; rates by i % 5
    # (1: 120, 2: 124, 3: 132, 4: 232, 0: 109), end date by i % 2.
    plans = {p.hotel_id: p for p in data.RATE_PLANS}
    assert list(plans) == ["1", "2", "3", *(str(i) for i in range(9, 79, 3))]
    assert len(data.RATE_PLANS) == 27
    assert plans["2"].room_type.total_rate == 139.0
    assert plans["2"].room_type.room_description == "Queen sized bed"
    assert (plans["9"].room_type.total_rate, plans["9"].out_date) == (232.0, "2015-04-24")
    assert (plans["12"].room_type.total_rate, plans["12"].out_date) == (124.0, "2015-04-17")
    assert (plans["15"].room_type.total_rate, plans["15"].room_type.total_rate_inclusive) == (
        109.0,
        123.17,
    )
    assert plans["21"].room_type.total_rate_inclusive == 140.0

    # 200 rooms for 1-6, then by i % 3: 1 -> 300, 2 -> 250, 0 -> 200.
    capacities = {c.hotel_id: c.rooms for c in data.CAPACITIES}
    assert [capacities[str(i)] for i in (1, 6, 7, 8, 9, 79, 80)] == [
        200,
        200,
        300,
        250,
        200,
        300,
        250,
    ]
    alice = data.ReservationRecord("4", "Alice", "2015-04-09", "2015-04-10", 1)
    seeded = data.SEED_RESERVATIONS
    assert seeded == (alice,)

    recommended = {h.hotel_id: h for h in data.RECOMMENDATIONS}
    assert (recommended["3"].lat, recommended["3"].rate, recommended["3"].price) == (
        37.7834,
        109.0,
        190.0,
    )
    assert (recommended["7"].rate, recommended["7"].price) == (135.0, 179.0)  # not a multiple of 3
    assert (recommended["15"].rate, recommended["15"].price) == (109.0, 123.17)  # 15 % 5 == 0
    assert (recommended["9"].lat, recommended["9"].lon) == (
        data.GEO_POINTS[8].lat,
        data.GEO_POINTS[8].lon,
    )


def test_users_are_stored_under_the_names_the_workload_logs_in_with() -> None:
    assert len(data.USERS) == 501
    assert data.USERS[0].username == "Cornell_0"
    assert data.USERS[500].username == "Cornell_500"
    # printf 0000000000 | sha256sum
    assert data.USERS[0].password_sha256 == (
        "84d9c4b849506b6d8f8075a9000e7e0a254be71060ea889fad3c88395988f4fc"
    )
    assert data.workload_user(42) == ("Cornell_42", "42424242424242424242")
    # The original's name: "Cornell_%x" of "42", the hex of its bytes.
    assert data.deathstarbench_username(42) == "Cornell_3432"


# ----------------------------------------------------------------------
# Float32, as Go parses it
# ----------------------------------------------------------------------
def test_parse_float32_rounds_straight_from_the_decimal() -> None:
    assert parse_float32("38.023") == float32(38.023)
    assert parse_float32("-0") == 0.0 and math.copysign(1, parse_float32("-0")) == -1
    assert parse_float32("1e39") == math.inf
    # 1 + 2**-24 + 2**-60 lies just above the half-way point between the float32s
    # 1 and 1 + 2**-23, so it rounds up; through float64 it becomes exactly the
    # half-way point, which rounds to even (1).
    above_half = "1.000000059604644776257986737988403547205962240695953369140625"
    assert parse_float32(above_half) == 1 + 2**-23
    assert float32(float(above_half)) == 1.0
    for bad in ("", " 1", "1 ", "nan", "inf", "0x1p3", "1_0", "--1", "1e", "٣"):
        with pytest.raises(ValueError, match="not a decimal number"):
            parse_float32(bad)


def _float32_bits(x: float) -> int:
    bits: int = struct.unpack("<I", struct.pack("<f", x))[0]
    return bits


def _from_float32_bits(bits: int) -> float:
    value: float = struct.unpack("<f", struct.pack("<I", bits))[0]
    return value


@given(
    mantissa=st.integers(min_value=0, max_value=10**12),
    exponent=st.integers(min_value=-55, max_value=30),
)
def test_parse_float32_is_the_nearest_float32(mantissa: int, exponent: int) -> None:
    exact = Fraction(mantissa) * Fraction(10) ** exponent
    got = parse_float32(f"{mantissa}e{exponent}")
    largest = _from_float32_bits(0x7F7FFFFF)
    if math.isinf(got):  # at least half a step (2**104) past the largest float32
        assert exact >= Fraction(largest) + 2**103
        return
    assert float32(got) == got
    error = abs(Fraction(got) - exact)
    bits = _float32_bits(got)
    for neighbour in (bits - 1, bits + 1):  # the float32s on either side
        if 0 <= neighbour < 0x7F800000:
            other = abs(Fraction(_from_float32_bits(neighbour)) - exact)
            assert error < other or (error == other and bits % 2 == 0)  # ties to even


@given(
    # float32s from 2**-4 to 2**30: where lat/lon live, and their decimals fit
    # the 64 characters a coordinate may have.
    bits=st.integers(min_value=123 << 23, max_value=157 << 23),
    offset=st.sampled_from([Fraction(0), Fraction(1, 2**31), Fraction(-1, 2**31)]),
    negative=st.booleans(),
)
def test_parse_float32_fast_path_agrees_near_half_way_points(
    bits: int, offset: Fraction, negative: bool
) -> None:
    # The decimals that try a float64 detour hardest: a float32 half-way point,
    # and points a hair either side of it, written out exactly (a/2**k is
    # a*5**k/10**k).
    low, high = Fraction(_from_float32_bits(bits)), Fraction(_from_float32_bits(bits + 1))
    exact = (low + high) / 2 + offset * (high - low)
    k = exact.denominator.bit_length() - 1
    text = ("-" if negative else "") + f"{exact.numerator * 5**k}e-{k}"
    assert len(text) <= 64
    assert parse_float32(text) == parse_float32_exact(text)


# ----------------------------------------------------------------------
# Geo: go-geoindex's KNearest
# ----------------------------------------------------------------------
def go_knearest(
    points: Sequence[GeoPoint], lat: float, lon: float, k: int, max_distance: float
) -> list[GeoPoint]:
    """go-geoindex's PointsIndex.KNearest written as its Go code walks the grid (a
    map of 500 m cells, the query's cell, then each ring's four sides of cells),
    against which the ring-grouping of examples/hotel is checked. Ties in the
    sort go by the points' order, as there."""
    resolution = 500.0

    def cell(la: float, lo: float) -> tuple[int, int]:
        return int((90.0 + la) * 111000.0 / resolution), int((180.0 + lo) * 85000.0 / resolution)

    grid: dict[tuple[int, int], list[tuple[int, GeoPoint]]] = {}
    for order, p in enumerate(points):
        grid.setdefault(cell(p.lat, p.lon), []).append((order, p))

    def cells(minx: int, maxx: int, miny: int, maxy: int) -> list[tuple[int, GeoPoint]]:
        found = []
        for x in range(minx, maxx + 1):
            for y in range(miny, maxy + 1):
                found.extend(grid.get((x, y), []))
        return found

    x, y = cell(lat, lon)
    nearby = list(grid.get((x, y), []))
    total = 0
    coarse = max(max_distance * 2.0, resolution * 2.0 + 0.01)
    d = 1
    while d * resolution <= coarse:
        old = len(nearby)
        nearby += cells(x - d, x + d, y + d, y + d)
        nearby += cells(x - d, x + d, y - d, y - d)
        nearby += cells(x - d, x - d, y - d + 1, y + d - 1)
        nearby += cells(x + d, x + d, y - d + 1, y + d - 1)
        total += len(nearby) - old
        if total > k:
            break
        d += 1
    nearby.sort(key=lambda e: (approximate_square_distance(e[1].lat, e[1].lon, lat, lon), e[0]))
    k = min(k, len(nearby))
    for i, (_, p) in enumerate(nearby):
        if distance(lat, lon, p.lat, p.lon) > max_distance or i == k:
            k = i
            break
    return [p for _, p in nearby[:k]]


async def test_nearest_hotels_for_workload_points() -> None:
    async with open_system() as system:
        geo = await system.spawn(Geo)
        # (38.023, -122.095), a=240 b=157: hotel i is at (37.7835 + 0.006i,
        # -122.41 + 0.008i); a degree of latitude is 111.2 km, of longitude
        # 111.2 km * cos(38.02) = 87.6 km. Hotel 40 (38.0235, -122.09): 0.0005 and
        # 0.005 degrees off, 56 m and 438 m: 0.44 km. Hotel 39 (38.0175, -122.098):
        # 0.61 km and 0.26 km: 0.67 km. 41: 1.35 km, 38: 1.60 km, 42: 2.31 km,
        # then 37 at 2.56 km is the sixth. Every other hotel is farther.
        assert await geo.ask(Geo.nearby, *map(float, workload_point(240, 157))) == [
            "40",
            "39",
            "41",
            "38",
            "42",
        ]
        # (37.927, -122.218), a=144 b=34: 56 m south of hotel 24 (37.9275, -122.218);
        # 23 and 25 are one step along the line (0.93 and 1.01 km), 22 and 26 two.
        assert await geo.ask(Geo.nearby, 37.927, -122.218) == ["24", "23", "25", "22", "26"]
        # (37.99, -122.134), a=207 b=118: between 34 (37.9875, -122.138: 0.45 km)
        # and 35 (37.9935, -122.13: 0.52 km); then 33, 36, 32.
        assert await geo.ask(Geo.nearby, 37.99, -122.134) == ["34", "35", "33", "36", "32"]
        # (38.264, -122.252), a=481 b=0: the hotels' line runs south-west to
        # north-east; this corner is 29 km from its nearest point (hotel 49): none
        # within 10 km.
        assert await geo.ask(Geo.nearby, 38.264, -122.252) == []
        # At hotel 1's own position (outside the workload's longitudes): hotel 1
        # (0 m), 3 (0.39 km), 5 (0.73 km), 6 (0.85 km), 2 (0.95 km); 4 is 1.77 km.
        assert await geo.ask(Geo.nearby, 37.7867, -122.4112) == ["1", "3", "5", "6", "2"]


_LATS = st.floats(min_value=37.78, max_value=38.27)
_LONS = st.floats(min_value=-122.42, max_value=-121.76)


@settings(max_examples=150, deadline=None)
@given(
    points=st.lists(st.tuples(_LATS, _LONS), max_size=40),
    lat=_LATS,
    lon=_LONS,
    k=st.integers(min_value=0, max_value=8),
    max_distance=st.sampled_from([10_000.0, 3_000.0, 500.0]),
)
def test_k_nearest_is_go_geoindexs(
    points: list[tuple[float, float]], lat: float, lon: float, k: int, max_distance: float
) -> None:
    geo_points = [GeoPoint(str(i), la, lo) for i, (la, lo) in enumerate(points)]
    got = k_nearest(geo_points, lat, lon, k, max_distance)
    assert got == go_knearest(geo_points, lat, lon, k, max_distance)
    assert len(got) <= k
    assert all(distance(lat, lon, p.lat, p.lon) <= max_distance for p in got)
    ranks = [approximate_square_distance(p.lat, p.lon, lat, lon) for p in got]
    assert ranks == sorted(ranks)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(min_value=0, max_value=481), b=st.integers(min_value=0, max_value=325))
def test_geo_over_the_hotels_is_go_geoindexs_for_every_workload_point(a: int, b: int) -> None:
    text_lat, text_lon = workload_point(a, b)
    lat, lon = parse_float32(text_lat), parse_float32(text_lon)  # the search path's float32s
    assert k_nearest(data.GEO_POINTS, lat, lon) == go_knearest(data.GEO_POINTS, lat, lon, 5, 10e3)


def test_k_nearest_stops_at_the_first_ring_with_more_than_k_points() -> None:
    # go-geoindex is not an exact k-nearest search: six points in the ring of
    # cells around the query's cell end the search, so a nearer point two cells
    # away is never looked at. Cell (x, y) spans x*500/111000 - 90 degrees of
    # latitude and y*500/85000 - 180 of longitude.
    def at(x: float, y: float, name: str) -> GeoPoint:
        return GeoPoint(name, x * 500 / 111000 - 90, y * 500 / 85000 - 180)

    x, y = 28393, 49003  # about (37.9, -122.3)
    query = at(x + 0.05, y + 0.5, "query")
    near = at(x - 1.05, y + 0.5, "near")  # two cells west: 1.1 cells (550 m) away
    ring = [at(x + 1.9, y + 0.1 * (i + 2), f"r{i}") for i in range(6)]  # next cell: ~925 m
    points = [near, *ring]
    assert min(points, key=lambda p: distance(query.lat, query.lon, p.lat, p.lon)) == near
    got = k_nearest(points, query.lat, query.lon)
    assert len(got) == 5 and near not in got
    assert got == go_knearest(points, query.lat, query.lon, 5, 10e3)


# ----------------------------------------------------------------------
# The services behind the frontend
# ----------------------------------------------------------------------
async def test_rates_profiles_recommendations_and_users() -> None:
    async with open_system() as system:
        rate = await system.spawn(Rate)
        # Highest total rate first: 2 (139), then 1 and 3 (109 each, in the order
        # asked); 4 has no plan. Each id once.
        plans = await rate.ask(
            Rate.get_rates, ["3", "4", "1", "2", "3"], "2015-04-09", "2015-04-10"
        )
        assert [p.hotel_id for p in plans] == ["2", "3", "1"]
        plans = await rate.ask(Rate.get_rates, ["1", "3"], "2015-04-20", "2015-04-21")
        assert [p.hotel_id for p in plans] == ["1", "3"]  # dates are not used, as there
        assert plans[0].room_type.total_rate_inclusive == 123.17

        profile = await system.spawn(Profile)
        got = await profile.ask(Profile.get_profiles, ["9", "nope", "2", "9"], "en")
        assert [p.id for p in got] == ["9", "2"]
        assert got[1].name == "W San Francisco"

        recommendation = await system.spawn(Recommendation)
        # rate: the highest rate is 232, at the multiples of 3 with i % 5 == 4.
        assert await recommendation.ask(
            Recommendation.get_recommendations, "rate", 38.023, -122.095
        ) == ["9", "24", "39", "54", "69"]
        # price: the lowest is hotel 2's 120.00 (then 123.17 at 15, 30 ...).
        assert await recommendation.ask(
            Recommendation.get_recommendations, "price", 38.023, -122.095
        ) == ["2"]
        # dis: the nearest hotel, whatever the distance: 40 (0.44 km, see above).
        assert await recommendation.ask(
            Recommendation.get_recommendations, "dis", 38.023, -122.095
        ) == ["40"]
        # 29 km from every hotel, the nearest is still one: hotel 49 (29.13 km).
        assert await recommendation.ask(
            Recommendation.get_recommendations, "dis", 38.264, -122.252
        ) == ["49"]
        assert await recommendation.ask(Recommendation.get_recommendations, "x", 0.0, 0.0) == []

        user = await system.spawn(User)
        assert await user.ask(User.check_user, *data.workload_user(0)) is True
        assert await user.ask(User.check_user, *data.workload_user(500)) is True
        assert await user.ask(User.check_user, "Cornell_500", "500") is False
        assert await user.ask(User.check_user, *data.workload_user(501)) is False


# ----------------------------------------------------------------------
# The frontend's requests
# ----------------------------------------------------------------------
async def test_hotels(hotel: tuple[System, Ref[Frontend]]) -> None:
    _, frontend = hotel
    # a=240 b=157: geo gives 40, 39, 41, 38, 42 (see test_nearest_hotels...); of
    # those only 39 (232) and 42 (124) have rate plans, highest first; both have
    # rooms (no bookings). Coordinates from the profile table in float32:
    # 37.7835f + 39f/500f*3f = 38.0175f, -122.41f + 39f/500f*4f = -122.09801f.
    lat, lon = workload_point(240, 157)
    assert (lat, lon) == ("38.023", "-122.095")
    assert await frontend.ask(Frontend.hotels, "2015-04-09", "2015-04-10", lat, lon) == collection(
        feature("39", -122.09801, 38.0175), feature("42", -122.074005, 38.0355)
    )
    # The same point as numbers (a later HTTP layer may parse them itself).
    assert await frontend.ask(
        Frontend.hotels, "2015-04-09", "2015-04-10", 38.023, -122.095
    ) == collection(feature("39", -122.09801, 38.0175), feature("42", -122.074005, 38.0355))
    # a=144 b=34: geo gives 24, 23, 25, 22, 26, of which only 24 has a plan.
    assert await frontend.ask(
        Frontend.hotels, "2015-04-12", "2015-04-15", *workload_point(144, 34)
    ) == collection(feature("24", -122.218, 37.9275))
    # a=207 b=118: geo gives 34, 35, 33, 36, 32; plans: 33 (132), then 36 (120).
    assert await frontend.ask(
        Frontend.hotels, "2015-04-20", "2015-04-24", *workload_point(207, 118)
    ) == collection(feature("33", -122.146, 37.981503), feature("36", -122.122, 37.9995))
    # a=481 b=0: no hotel within 10 km.
    assert (
        await frontend.ask(Frontend.hotels, "2015-04-09", "2015-04-10", *workload_point(481, 0))
        == collection()
    )


async def test_hotels_leaves_out_a_hotel_with_no_room_left(
    hotel: tuple[System, Ref[Frontend]],
) -> None:
    _, frontend = hotel
    lat, lon = workload_point(240, 157)
    name, password = data.workload_user(7)
    # Hotel 39 has 200 rooms (39 % 3 == 0): book them all for the night of the 12th.
    answer = await frontend.ask(
        Frontend.reservation,
        "2015-04-12",
        "2015-04-13",
        None,
        None,
        "39",
        name,
        name,
        password,
        "200",
    )
    assert answer == {"message": RESERVED}
    only_42 = collection(feature("42", -122.074005, 38.0355))
    assert await frontend.ask(Frontend.hotels, "2015-04-12", "2015-04-13", lat, lon) == only_42
    assert await frontend.ask(Frontend.hotels, "2015-04-10", "2015-04-14", lat, lon) == only_42
    both = collection(feature("39", -122.09801, 38.0175), feature("42", -122.074005, 38.0355))
    assert await frontend.ask(Frontend.hotels, "2015-04-13", "2015-04-14", lat, lon) == both


async def test_recommendations(hotel: tuple[System, Ref[Frontend]]) -> None:
    _, frontend = hotel
    lat, lon = workload_point(240, 157)
    # See test_rates_profiles...: dis -> 40, rate -> 9, 24, 39, 54, 69, price -> 2.
    assert await frontend.ask(Frontend.recommendations, "dis", lat, lon) == collection(
        feature("40", -122.090004, 38.023502)
    )
    assert await frontend.ask(Frontend.recommendations, "rate", lat, lon) == collection(
        feature("9", -122.338005, 37.8375),
        feature("24", -122.218, 37.9275),
        feature("39", -122.09801, 38.0175),
        feature("54", -121.978004, 38.107502),
        feature("69", -121.858, 38.197502),
    )
    price = await frontend.ask(Frontend.recommendations, "price", lat, lon)
    assert price == collection(
        {
            "type": "Feature",
            "id": "2",
            "properties": {"name": "W San Francisco", "phone_number": "(415) 777-5300"},
            "geometry": {"type": "Point", "coordinates": [-122.4005, 37.7854]},
        }
    )


async def test_user_login(hotel: tuple[System, Ref[Frontend]]) -> None:
    _, frontend = hotel
    name, password = data.workload_user(123)
    assert await frontend.ask(Frontend.user, name, password) == {"message": "Login successfully!"}
    assert LOGIN_OK == "Login successfully!"
    failed = {"message": "Failed. Please check your username and password. "}
    assert await frontend.ask(Frontend.user, name, password + "3") == failed
    assert await frontend.ask(Frontend.user, "Cornell_501", "501" * 10) == failed
    # The original stores user 123 as Cornell_313233, which does not log in here.
    assert await frontend.ask(Frontend.user, data.deathstarbench_username(123), password) == failed


async def test_a_reservation_that_fits_and_one_that_does_not(
    hotel: tuple[System, Ref[Frontend]],
) -> None:
    system, frontend = hotel
    name, password = data.workload_user(5)

    async def reserve(in_date: str, out_date: str, hotel_id: str, number: str) -> str:
        answer = await frontend.ask(
            Frontend.reservation,
            in_date,
            out_date,
            "nil",
            "nil",
            hotel_id,
            name,
            name,
            password,
            number,
        )
        message: str = answer["message"]
        return message

    bookings = system.get(HotelBookings, "4")
    # Hotel 4: 200 rooms, and the seed's one room (Alice) on the night of the 9th.
    assert await bookings.ask(HotelBookings.booked) == {"2015-04-09": 1}
    assert await reserve("2015-04-09", "2015-04-11", "4", "199") == "Reserve successfully!"
    assert await bookings.ask(HotelBookings.booked) == {"2015-04-09": 200, "2015-04-10": 199}
    # 200 + 1 > 200 on the 9th: refused, and nothing booked on the 8th either.
    assert await reserve("2015-04-08", "2015-04-10", "4", "1") == "Failed. Already reserved. "
    # The 10th still has one room.
    assert await reserve("2015-04-10", "2015-04-11", "4", "2") == ALREADY_RESERVED
    assert await reserve("2015-04-10", "2015-04-11", "4", "1") == RESERVED
    assert await bookings.ask(HotelBookings.booked) == {"2015-04-09": 200, "2015-04-10": 200}
    # As in the original: no rooms (number absent, or 0) fits even a full night,
    # and a stay with no nights books nothing and succeeds.
    assert await reserve("2015-04-09", "2015-04-10", "4", "") == RESERVED
    assert await reserve("2015-04-12", "2015-04-12", "4", "500") == RESERVED
    assert await bookings.ask(HotelBookings.booked) == {"2015-04-09": 200, "2015-04-10": 200}


async def test_a_failed_login_books_nothing(hotel: tuple[System, Ref[Frontend]]) -> None:
    system, frontend = hotel
    name, _ = data.workload_user(9)
    answer = await frontend.ask(
        Frontend.reservation, "2015-04-09", "2015-04-10", None, None, "2", name, name, "wrong", "1"
    )
    assert answer == {"message": LOGIN_FAILED}
    assert await system.get(HotelBookings, "2").ask(HotelBookings.booked) == {}


_HOTELS = ("2015-04-09", "2015-04-10", "38.023", "-122.095")
_RESERVE = ("2015-04-09", "2015-04-10", None, None, "1", "c", "Cornell_1", "1" * 10, "1")


def _with(args: Sequence[Any], index: int, value: Any) -> tuple[Any, ...]:
    return (*args[:index], value, *args[index + 1 :])


@pytest.mark.parametrize(
    ("handler", "args", "message"),
    [
        # The original's 400s, with its messages.
        ("hotels", (), "Please specify inDate/outDate params"),
        ("hotels", _with(_HOTELS, 1, ""), "Please specify inDate/outDate params"),
        ("hotels", _with(_HOTELS, 3, None), "Please specify location params"),
        ("recommendations", ("dis", "", "1"), "Please specify location params"),
        ("recommendations", ("near", "38", "-122"), "Please specify require params"),
        ("recommendations", (None, "x", "-122"), "Please specify require params"),
        ("user", ("Cornell_1", ""), "Please specify username and password"),
        ("reservation", _with(_RESERVE, 0, None), "Please specify inDate/outDate params"),
        ("reservation", _with(_RESERVE, 1, "2015-4-10"), "Please check inDate/outDate format"),
        ("reservation", _with(_RESERVE, 4, ""), "Please specify hotelId params"),
        ("reservation", _with(_RESERVE, 5, None), "Please specify customerName params"),
        ("reservation", _with(_RESERVE, 7, ""), "Please specify username and password"),
        # What the original lets through and reads as zero time or zero here.
        ("hotels", _with(_HOTELS, 0, "2015-02-30"), "Please check inDate/outDate format"),
        ("hotels", _with(_HOTELS, 2, "north"), "Please check lat/lon params"),
        ("hotels", _with(_HOTELS, 3, "1e40"), "Please check lat/lon params"),
        ("recommendations", ("dis", "38", "nan"), "Please check lat/lon params"),
        ("reservation", _with(_RESERVE, 1, "2015-13-01"), "Please check inDate/outDate format"),
        ("reservation", _with(_RESERVE, 1, "2016-04-11"), "Please choose a stay of at most"),
        ("reservation", _with(_RESERVE, 8, "-3"), "Please check number params"),
        ("reservation", _with(_RESERVE, 8, "two"), "Please check number params"),
        ("reservation", _with(_RESERVE, 8, str(2**31)), "Please check number params"),
        ("reservation", _with(_RESERVE, 4, "81"), "Unknown hotelId 81"),
        ("reservation", _with(_RESERVE, 8, 2.5), "Please check number params"),
        ("user", (42, "x"), "Please specify username and password"),
        ("hotels", _with(_HOTELS, 2, True), "Please check lat/lon params"),
    ],
)
async def test_bad_requests(
    hotel: tuple[System, Ref[Frontend]], handler: str, args: tuple[Any, ...], message: str
) -> None:
    _, frontend = hotel
    with pytest.raises(BadRequest, match=re.escape(message)):
        await frontend.ask(handler, *args)
    # An answer, not a crash: the frontend goes on.
    assert await frontend.ask(Frontend.user, *data.workload_user(1)) == {"message": LOGIN_OK}


# ----------------------------------------------------------------------
# No overbooking
# ----------------------------------------------------------------------
async def test_concurrent_reservations_never_overbook_and_outlive_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    capacity = 200  # hotel 1
    stay = ("2015-04-10", "2015-04-13")  # three nights
    nights = ["2015-04-10", "2015-04-11", "2015-04-12"]
    answers: list[str] = []
    async with open_system(state_store=SQLiteStore(db)) as system:
        frontends = await spawn_frontends(system, 4)

        async def reserve(i: int) -> None:
            name, password = data.workload_user(i)
            answer = await frontends[i % 4].ask(
                Frontend.reservation, *stay, None, None, "1", name, name, password, "4"
            )
            answers.append(answer["message"])
            # What the store holds never passes the capacity, at any point.
            assert all(n <= capacity for n in stored_nights(db, "1").values())

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(reserve, i)
        # 60 asks for 4 rooms, 240 in all: exactly 200 / 4 = 50 fit.
        assert answers.count(RESERVED) == 50
        assert answers.count(ALREADY_RESERVED) == 10
        assert stored_nights(db, "1") == dict.fromkeys(nights, capacity)

    async with open_system(state_store=SQLiteStore(db)) as system:
        # A new process on the same store: the bookings are there, and still full.
        bookings = system.get(HotelBookings, "1")
        assert await bookings.ask(HotelBookings.booked) == dict.fromkeys(nights, capacity)
        (frontend,) = await spawn_frontends(system, 1)
        name, password = data.workload_user(61)
        full = await frontend.ask(
            Frontend.reservation,
            "2015-04-12",
            "2015-04-14",
            None,
            None,
            "1",
            name,
            name,
            password,
            "1",
        )
        assert full == {"message": ALREADY_RESERVED}
        free = await frontend.ask(
            Frontend.reservation,
            "2015-04-13",
            "2015-04-14",
            None,
            None,
            "1",
            name,
            name,
            password,
            "1",
        )
        assert free == {"message": RESERVED}
    assert stored_nights(db, "1") == {**dict.fromkeys(nights, capacity), "2015-04-13": 1}


async def test_concurrent_overlapping_stays_fill_but_never_pass_the_capacity(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    capacity = 250  # hotel 8 (8 % 3 == 2)
    rng = random.Random(8)
    requests = []
    for _ in range(60):
        first = 10 + rng.randrange(5)
        requests.append(
            (f"2015-04-{first}", f"2015-04-{first + 1 + rng.randrange(3)}", 5 + rng.randrange(21))
        )
    accepted: list[tuple[str, str, int]] = []
    async with open_system(state_store=SQLiteStore(db)) as system:
        frontends = await spawn_frontends(system, 3)

        async def reserve(i: int) -> None:
            in_date, out_date, number = requests[i]
            name, password = data.workload_user(i)
            answer = await frontends[i % 3].ask(
                Frontend.reservation,
                in_date,
                out_date,
                None,
                None,
                "8",
                name,
                name,
                password,
                str(number),
            )
            if answer["message"] == RESERVED:
                accepted.append(requests[i])
            else:
                assert answer["message"] == ALREADY_RESERVED
            assert all(n <= capacity for n in stored_nights(db, "8").values())

        async with trio.open_nursery() as nursery:
            for i in range(60):
                nursery.start_soon(reserve, i)

    # Each night holds exactly the rooms of the stays accepted over it, never more
    # than the capacity; the requests ask for more than that (60 stays of 5-25
    # rooms and 1-3 nights over 7 nights), so some were refused.
    expected: dict[str, int] = {}
    for in_date, out_date, number in accepted:
        for day in range(int(in_date[-2:]), int(out_date[-2:])):
            expected[f"2015-04-{day}"] = expected.get(f"2015-04-{day}", 0) + number
    assert stored_nights(db, "8") == expected
    assert max(expected.values()) <= capacity
    assert len(accepted) < 60
    asked: dict[str, int] = {}
    for in_date, out_date, number in requests:
        for day in range(int(in_date[-2:]), int(out_date[-2:])):
            asked[f"2015-04-{day}"] = asked.get(f"2015-04-{day}", 0) + number
    assert max(asked.values()) > capacity


async def test_a_stale_incarnation_cannot_overbook(tmp_path: Path) -> None:
    # Two systems on one store: each activates its own HotelBookings for hotel 7
    # (300 rooms), both reading the same empty nights. One books all 300 rooms;
    # the other's activation still believes the night is empty and accepts one
    # more room, but its save is refused (the stored revision moved on), it stops,
    # and the Reservation atom asks again: the new activation reads 300 and refuses.
    db = tmp_path / "s.db"
    async with (
        open_system(state_store=SQLiteStore(db)) as one,
        open_system(state_store=SQLiteStore(db)) as two,
    ):
        first, second = await spawn_services(one), await spawn_services(two)
        assert await one.get(HotelBookings, "7").ask(HotelBookings.booked) == {}
        assert await two.get(HotelBookings, "7").ask(HotelBookings.booked) == {}
        name, password = data.workload_user(77)
        stay = ("2015-04-15", "2015-04-16", None, None, "7", name, name, password)
        assert await first.ask(Frontend.reservation, *stay, "300") == {"message": RESERVED}
        assert await second.ask(Frontend.reservation, *stay, "1") == {"message": ALREADY_RESERVED}
        assert await two.get(HotelBookings, "7").ask(HotelBookings.booked) == {"2015-04-15": 300}
    assert stored_nights(db, "7") == {"2015-04-15": 300}


def test_the_services_import_only_the_standard_library_and_radon_actors() -> None:
    # What the WebAssembly sandbox can import: host-only packages are refused.
    code = (
        "import importlib.abc, sys\n"
        "class Refuse(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in {'trio', 'attrs', 'structlog', 'outcome',\n"
        "                                  'cloudpickle', 'wasmtime', 'hypothesis'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "import examples.hotel\n"
        "names = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)\n"
        "outside = {n for n in names if not n.startswith('_')}\n"  # site hooks, __main__
        "assert outside == {'examples', 'radon_actors'}, outside\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
