"""The seed data of DeathStarBench's hotelReservation, as frozen ``@portable`` records.

Follows the ``initializeDatabase`` functions of ``hotelReservation/cmd/*/db.go``
in delimitrou/DeathStarBench (commit 6ecb097, June 2024), table by table:

* :data:`GEO_POINTS` (``cmd/geo/db.go``): hotels 1-6 at their listed coordinates,
  hotels 7-80 on the line ``lat = 37.7835 + i/500*3``, ``lon = -122.41 + i/500*4``,
  computed in float64 as Go does.
* :data:`PROFILES` (``cmd/profile/db.go``): name, phone, description and
  address; hotels 7-80 repeat hotel 6's text with the phone ``(415) 284-40<i>``.
  The address's coordinates are float32 there, and so is the generated
  formula's arithmetic (each operation rounded to float32).
* :data:`RATE_PLANS` (``cmd/rate/db.go``): plans for hotels 1, 2 and 3, then one
  for every multiple of 3 from 9 to 78, its end date and rates chosen by ``i % 2``
  and ``i % 5``.
* :data:`CAPACITIES` and :data:`SEED_RESERVATIONS` (``cmd/reservation/db.go``):
  200 rooms for hotels 1-6; from hotel 7 on, 300 when ``i % 3 == 1``, 250 when
  ``i % 3 == 2``, else 200; and one existing reservation (Alice, hotel 4, the
  night of 2015-04-09, one room).
* :data:`RECOMMENDATIONS` (``cmd/recommendation/db.go``): position, rate and price
  of every hotel (hotel 3 at latitude 37.7834 here, as in the profiles, where the
  geo table has 37.7854: both as in the original).
* :data:`USERS` (``cmd/user/db.go``): users 0-500, password ``str(n)`` repeated
  ten times, stored as the hex SHA-256 of the password, which is how the user
  service checks it.

Where this differs from the original:

* **User names.** The original stores user ``n`` as ``Cornell_`` followed by the
  *hex encoding* of the decimal string (``fmt.Sprintf("Cornell_%x", "42")`` is
  ``Cornell_3432``), while its own workload
  (``wrk2/scripts/hotel-reservation/mixed-workload_type_1.lua``) logs in as
  ``Cornell_42``, so every login and every reservation of the workload is
  refused there. Here user ``n`` is stored as ``Cornell_<n>``, the name the
  workload sends (:func:`workload_user`); the original's name is
  :func:`deathstarbench_username`, and does not log in here.
* **Float32 coordinates.** A profile's latitude and longitude are float32 in the
  original; they are kept here as the shortest decimal that reads back as the
  same float32 (``37.7867``, not ``37.786701202392578``), which is exactly what
  the original frontend's JSON shows.
* **Fused multiply-add.** Go may fuse ``a*b + c`` on some architectures (arm64);
  the generated coordinates here are those of a build that does not (amd64),
  each operation rounded separately.
* What the original never seeds is absent here too (profile images, a rate
  plan's currency); the tables are tuples of records, not MongoDB collections,
  and there is no memcached in front of them.

This module imports only the standard library and ``radon_actors`` (it is
bundled into sandboxed services).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from radon_actors import portable

__all__ = [
    "CAPACITIES",
    "GEO_POINTS",
    "HOTEL_IDS",
    "PROFILES",
    "RATE_PLANS",
    "RECOMMENDATIONS",
    "SEED_RESERVATIONS",
    "USERS",
    "Address",
    "Capacity",
    "GeoPoint",
    "HotelProfile",
    "RatePlan",
    "RecommendedHotel",
    "ReservationRecord",
    "RoomType",
    "UserAccount",
    "deathstarbench_username",
    "float32",
    "is_decimal",
    "parse_float32",
    "password_hash",
    "shortest_float32",
    "workload_user",
]


# ----------------------------------------------------------------------
# Records
# ----------------------------------------------------------------------
@portable
@dataclass(frozen=True, slots=True)
class GeoPoint:
    """A hotel's position in the geo service's table (``cmd/geo``'s ``point``)."""

    hotel_id: str
    lat: float
    lon: float


@portable
@dataclass(frozen=True, slots=True)
class Address:
    """A profile's address (``cmd/profile``'s ``Address``; lat/lon are float32 there)."""

    street_number: str
    street_name: str
    city: str
    state: str
    country: str
    postal_code: str
    lat: float
    lon: float


@portable
@dataclass(frozen=True, slots=True)
class HotelProfile:
    """A hotel's profile (``cmd/profile``'s ``Hotel``)."""

    id: str
    name: str
    phone_number: str
    description: str
    address: Address


@portable
@dataclass(frozen=True, slots=True)
class RoomType:
    """The room a rate plan is for (``cmd/rate``'s ``RoomType``)."""

    bookable_rate: float
    code: str
    room_description: str
    total_rate: float
    total_rate_inclusive: float


@portable
@dataclass(frozen=True, slots=True)
class RatePlan:
    """A hotel's rate plan (``cmd/rate``'s ``RatePlan``)."""

    hotel_id: str
    code: str
    in_date: str
    out_date: str
    room_type: RoomType


@portable
@dataclass(frozen=True, slots=True)
class Capacity:
    """How many rooms a hotel has (``cmd/reservation``'s ``Number``)."""

    hotel_id: str
    rooms: int


@portable
@dataclass(frozen=True, slots=True)
class ReservationRecord:
    """Rooms booked at a hotel for one stay (``cmd/reservation``'s ``Reservation``)."""

    hotel_id: str
    customer_name: str
    in_date: str
    out_date: str
    number: int


@portable
@dataclass(frozen=True, slots=True)
class RecommendedHotel:
    """What the recommendation service knows of a hotel (``cmd/recommendation``'s ``Hotel``)."""

    hotel_id: str
    lat: float
    lon: float
    rate: float
    price: float


@portable
@dataclass(frozen=True, slots=True)
class UserAccount:
    """A user: the name and the hex SHA-256 of the password (``cmd/user``'s ``User``)."""

    username: str
    password_sha256: str


# ----------------------------------------------------------------------
# Float32, as Go computes, parses and prints it
# ----------------------------------------------------------------------
def float32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even), as Go's ``float32(x)``;
    infinite beyond float32's range."""
    try:
        value: float = struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)
    return value


def _bits32(x: float) -> int:
    bits: int = struct.unpack("<I", struct.pack("<f", x))[0]
    return bits


def _from_bits32(bits: int) -> float:
    value: float = struct.unpack("<f", struct.pack("<I", bits))[0]
    return value


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_FLOAT32 = _from_bits32(0x7F7FFFFF)
_MIN_NORMAL32 = 2.0**-126
_LOW29 = (1 << 29) - 1
_HALF29 = 1 << 28


def is_decimal(text: str) -> bool:
    """Whether ``text`` is a plain decimal number (digits, a point, an exponent; at
    most 64 characters): the lat/lon syntax accepted here."""
    return len(text) <= 64 and _DECIMAL.fullmatch(text) is not None


def parse_float32(text: str) -> float:
    """The float32 nearest to the decimal number ``text`` (ties to even), as Go's
    ``strconv.ParseFloat(text, 32)`` rounds it: straight from the decimal, not
    through a float64 first (which can land on a float32 half-way point and
    round the wrong way). Infinite beyond float32's range; ``ValueError`` for
    anything but a plain decimal (digits, a point, an exponent; at most 64
    characters)."""
    if not is_decimal(text):
        raise ValueError(f"not a decimal number: {text!r}")
    # Fast path: through float64 is right unless the float64 lands exactly on a
    # float32 half-way point (every such point is a float64, so the decimal and
    # its nearest float64 cannot lie on opposite sides of one), in float32's
    # normal range, where the half-way points are the float64s whose 29 bits
    # below float32's precision read 1000...0.
    quick = float(text)
    if _MIN_NORMAL32 <= abs(quick) < _MAX_FLOAT32:
        low: int = struct.unpack("<Q", struct.pack("<d", quick))[0] & _LOW29
        if low != _HALF29:
            return float32(quick)
    return parse_float32_exact(text)


def parse_float32_exact(text: str) -> float:
    """:func:`parse_float32` by exact arithmetic alone (the reference its fast
    path is tested against)."""
    try:
        number = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"not a decimal number: {text!r}") from exc
    negative = number.is_signed()
    if number.is_zero() or number.adjusted() < -50:  # far below half the least subnormal
        return -0.0 if negative else 0.0
    if number.adjusted() > 40:  # far beyond the largest float32
        return -math.inf if negative else math.inf
    exact = abs(Fraction(number))
    guess = float32(float(exact))  # within one float32 step of the answer
    if math.isinf(guess):
        return -math.inf if negative else math.inf
    bits = _bits32(guess)
    candidates = [guess, _from_bits32(bits + 1)]
    if bits > 0:
        candidates.append(_from_bits32(bits - 1))
    finite = [c for c in candidates if not math.isinf(c)]
    best = min(finite, key=lambda c: (abs(Fraction(c) - exact), _bits32(c) & 1))
    if best == _MAX_FLOAT32 and exact - Fraction(best) >= Fraction(2**103):
        best = math.inf  # at least half a step past the largest float32: overflow
    return -best if negative else best


def shortest_float32(x: float) -> float:
    """The shortest decimal that reads back as the float32 ``x``, as a float: what
    Go's ``encoding/json`` writes for a float32 field."""
    for digits in range(1, 10):
        text = f"{x:.{digits}g}"
        if parse_float32(text) == x:
            return float(text)
    return x  # pragma: no cover - nine significant digits always round-trip a float32


# ----------------------------------------------------------------------
# The generated hotels' coordinates
# ----------------------------------------------------------------------
FIRST_GENERATED = 7
LAST_HOTEL = 80
HOTEL_IDS: tuple[str, ...] = tuple(str(i) for i in range(1, LAST_HOTEL + 1))


def _generated_lat_lon(i: int) -> tuple[float, float]:
    # ``37.7835 + float64(i)/500.0*3``: left to right, each step rounded to float64.
    return 37.7835 + i / 500.0 * 3, -122.41 + i / 500.0 * 4


_F32_BASE_LAT = parse_float32("37.7835")  # Go converts the constants to float32
_F32_BASE_LON = parse_float32("-122.41")


def _generated_lat_lon32(i: int) -> tuple[float, float]:
    # ``37.7835 + float32(i)/500.0*3``: the same formula with every operation
    # rounded to float32 (a float64 operation on float32 operands, rounded to
    # float32, is the correctly rounded float32 operation).
    step = float32(float32(i) / 500.0)
    lat = float32(_F32_BASE_LAT + float32(step * 3.0))
    lon = float32(_F32_BASE_LON + float32(step * 4.0))
    return lat, lon


# ----------------------------------------------------------------------
# geo (cmd/geo/db.go)
# ----------------------------------------------------------------------
def _geo_points() -> tuple[GeoPoint, ...]:
    points = [
        GeoPoint("1", 37.7867, -122.4112),
        GeoPoint("2", 37.7854, -122.4005),
        GeoPoint("3", 37.7854, -122.4071),
        GeoPoint("4", 37.7936, -122.3930),
        GeoPoint("5", 37.7831, -122.4181),
        GeoPoint("6", 37.7863, -122.4015),
    ]
    for i in range(FIRST_GENERATED, LAST_HOTEL + 1):
        points.append(GeoPoint(str(i), *_generated_lat_lon(i)))
    return tuple(points)


GEO_POINTS: tuple[GeoPoint, ...] = _geo_points()
"""Every hotel's position, as the geo service indexes it (hotels 1-80, in order)."""


# ----------------------------------------------------------------------
# profile (cmd/profile/db.go)
# ----------------------------------------------------------------------
_SAN_FRANCISCO = ("San Francisco", "CA", "United States")
_ST_REGIS = (
    "St. Regis Museum Tower is a 42-story, 484 ft skyscraper in the South of Market district "
    "of San Francisco, California, adjacent to Yerba Buena Gardens, Moscone Center, PacBell "
    "Building and the San Francisco Museum of Modern Art."
)


def _address(number: str, street: str, postal_code: str, lat: float, lon: float) -> Address:
    # Both float32 in the original: kept as the decimal its JSON shows.
    return Address(
        number,
        street,
        *_SAN_FRANCISCO,
        postal_code,
        shortest_float32(lat),
        shortest_float32(lon),
    )


def _literal_address(number: str, street: str, postal_code: str, lat: str, lon: str) -> Address:
    return _address(number, street, postal_code, parse_float32(lat), parse_float32(lon))


def _profiles() -> tuple[HotelProfile, ...]:
    profiles = [
        HotelProfile(
            "1",
            "Clift Hotel",
            "(415) 775-4700",
            "A 6-minute walk from Union Square and 4 minutes from a Muni Metro station, this "
            "luxury hotel designed by Philippe Starck features an artsy furniture collection "
            "in the lobby, including work by Salvador Dali.",
            _literal_address("495", "Geary St", "94102", "37.7867", "-122.4112"),
        ),
        HotelProfile(
            "2",
            "W San Francisco",
            "(415) 777-5300",
            "Less than a block from the Yerba Buena Center for the Arts, this trendy hotel is "
            "a 12-minute walk from Union Square.",
            _literal_address("181", "3rd St", "94103", "37.7854", "-122.4005"),
        ),
        HotelProfile(
            "3",
            "Hotel Zetta",
            "(415) 543-8555",
            "A 3-minute walk from the Powell Street cable-car turnaround and BART rail "
            "station, this hip hotel 9 minutes from Union Square combines high-tech lodging "
            "with artsy touches.",
            _literal_address("55", "5th St", "94103", "37.7834", "-122.4071"),
        ),
        HotelProfile(
            "4",
            "Hotel Vitale",
            "(415) 278-3700",
            "This waterfront hotel with Bay Bridge views is 3 blocks from the Financial "
            "District and a 4-minute walk from the Ferry Building.",
            _literal_address("8", "Mission St", "94105", "37.7936", "-122.3930"),
        ),
        HotelProfile(
            "5",
            "Phoenix Hotel",
            "(415) 776-1380",
            "Located in the Tenderloin neighborhood, a 10-minute walk from a BART rail "
            "station, this retro motor lodge has hosted many rock musicians and other "
            "celebrities since the 1950s. It\u2019s a 4-minute walk from the historic Great "
            "American Music Hall nightclub.",
            _literal_address("601", "Eddy St", "94109", "37.7831", "-122.4181"),
        ),
        HotelProfile(
            "6",
            "St. Regis San Francisco",
            "(415) 284-4000",
            _ST_REGIS,
            _literal_address("125", "3rd St", "94109", "37.7863", "-122.4015"),
        ),
    ]
    for i in range(FIRST_GENERATED, LAST_HOTEL + 1):
        lat, lon = _generated_lat_lon32(i)
        profiles.append(
            HotelProfile(
                str(i),
                "St. Regis San Francisco",
                f"(415) 284-40{i}",
                _ST_REGIS,
                _address("125", "3rd St", "94109", lat, lon),
            )
        )
    return tuple(profiles)


PROFILES: tuple[HotelProfile, ...] = _profiles()
"""Every hotel's profile (hotels 1-80, in order)."""


# ----------------------------------------------------------------------
# rate (cmd/rate/db.go)
# ----------------------------------------------------------------------
_KING = ("KNG", "King sized bed")


def _rate_plans() -> tuple[RatePlan, ...]:
    plans = [
        RatePlan("1", "RACK", "2015-04-09", "2015-04-10", RoomType(109.00, *_KING, 109.00, 123.17)),
        RatePlan(
            "2",
            "RACK",
            "2015-04-09",
            "2015-04-10",
            RoomType(139.00, "QN", "Queen sized bed", 139.00, 153.09),
        ),
        RatePlan("3", "RACK", "2015-04-09", "2015-04-10", RoomType(109.00, *_KING, 109.00, 123.17)),
    ]
    by_remainder = {1: (120.00, 140.00), 2: (124.00, 144.00), 3: (132.00, 158.00)}
    by_remainder[4] = (232.00, 258.00)
    for i in range(FIRST_GENERATED, LAST_HOTEL + 1):
        if i % 3 != 0:
            continue
        end = "2015-04-17" if i % 2 == 0 else "2015-04-24"
        rate, inclusive = by_remainder.get(i % 5, (109.00, 123.17))
        plans.append(
            RatePlan(str(i), "RACK", "2015-04-09", end, RoomType(rate, *_KING, rate, inclusive))
        )
    return tuple(plans)


RATE_PLANS: tuple[RatePlan, ...] = _rate_plans()
"""The rate plans, in the original's insertion order (27: hotels 1, 2, 3, 9, 12 ... 78)."""


# ----------------------------------------------------------------------
# reservation (cmd/reservation/db.go)
# ----------------------------------------------------------------------
def _capacities() -> tuple[Capacity, ...]:
    rooms = {str(i): 200 for i in range(1, FIRST_GENERATED)}
    for i in range(FIRST_GENERATED, LAST_HOTEL + 1):
        rooms[str(i)] = {1: 300, 2: 250}.get(i % 3, 200)
    return tuple(Capacity(hotel_id, n) for hotel_id, n in rooms.items())


CAPACITIES: tuple[Capacity, ...] = _capacities()
"""How many rooms each hotel has (hotels 1-80, in order)."""

SEED_RESERVATIONS: tuple[ReservationRecord, ...] = (
    ReservationRecord("4", "Alice", "2015-04-09", "2015-04-10", 1),
)
"""The reservations the original starts with: one room at hotel 4, one night."""


# ----------------------------------------------------------------------
# recommendation (cmd/recommendation/db.go)
# ----------------------------------------------------------------------
def _recommendations() -> tuple[RecommendedHotel, ...]:
    hotels = [
        RecommendedHotel("1", 37.7867, -122.4112, 109.00, 150.00),
        RecommendedHotel("2", 37.7854, -122.4005, 139.00, 120.00),
        RecommendedHotel("3", 37.7834, -122.4071, 109.00, 190.00),
        RecommendedHotel("4", 37.7936, -122.3930, 129.00, 160.00),
        RecommendedHotel("5", 37.7831, -122.4181, 119.00, 140.00),
        RecommendedHotel("6", 37.7863, -122.4015, 149.00, 200.00),
    ]
    by_remainder = {1: (120.00, 140.00), 2: (124.00, 144.00), 3: (132.00, 158.00)}
    by_remainder[4] = (232.00, 258.00)
    for i in range(FIRST_GENERATED, LAST_HOTEL + 1):
        rate, price = 135.00, 179.00
        if i % 3 == 0:
            rate, price = by_remainder.get(i % 5, (109.00, 123.17))
        hotels.append(RecommendedHotel(str(i), *_generated_lat_lon(i), rate, price))
    return tuple(hotels)


RECOMMENDATIONS: tuple[RecommendedHotel, ...] = _recommendations()
"""What the recommendation service ranks by (hotels 1-80, in order)."""


# ----------------------------------------------------------------------
# user (cmd/user/db.go)
# ----------------------------------------------------------------------
USER_COUNT = 501


def password_hash(password: str) -> str:
    """The hex SHA-256 of a password's UTF-8 bytes: how users' passwords are stored
    and checked (the user service's ``fmt.Sprintf("%x", sha256.Sum256(...))``)."""
    # (Lone surrogates, which no HTTP request can carry, are encoded rather than refused.)
    return hashlib.sha256(password.encode("utf-8", "surrogatepass")).hexdigest()


def workload_user(n: int) -> tuple[str, str]:
    """User ``n``'s name and password as the workload sends them (``get_user`` in
    ``mixed-workload_type_1.lua``): ``Cornell_<n>``, and ``n`` ten times."""
    return f"Cornell_{n}", str(n) * 10


def deathstarbench_username(n: int) -> str:
    """The name the original stores user ``n`` under (``Cornell_%x`` of the decimal
    string: hex of its bytes), which its workload never sends."""
    return "Cornell_" + str(n).encode().hex()


def _users() -> tuple[UserAccount, ...]:
    accounts = []
    for n in range(USER_COUNT):
        name, password = workload_user(n)
        accounts.append(UserAccount(name, password_hash(password)))
    return tuple(accounts)


USERS: tuple[UserAccount, ...] = _users()
"""Users 0-500, stored under the names the workload logs in with."""
