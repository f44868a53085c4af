"""DeathStarBench's hotelReservation on atoms: its data and its services.

A port of ``hotelReservation`` from delimitrou/DeathStarBench: the seed data of
its databases (``_data``) and its services as atoms (``_services``), in one
process or wherever their Refs point. No HTTP frontend yet: :class:`Frontend`
answers each of the original's HTTP requests with the original's JSON body.

Both modules import only the standard library and ``radon_actors``, so the
services can run inside the WebAssembly sandbox.
"""

from __future__ import annotations

from ._data import (
    CAPACITIES,
    GEO_POINTS,
    PROFILES,
    RATE_PLANS,
    RECOMMENDATIONS,
    SEED_RESERVATIONS,
    USERS,
    workload_user,
)
from ._services import (
    BadRequest,
    Frontend,
    Geo,
    HotelBookings,
    Profile,
    Rate,
    Recommendation,
    Reservation,
    Search,
    UnknownHotel,
    User,
    spawn_services,
)

__all__ = [
    "CAPACITIES",
    "GEO_POINTS",
    "PROFILES",
    "RATE_PLANS",
    "RECOMMENDATIONS",
    "SEED_RESERVATIONS",
    "USERS",
    "BadRequest",
    "Frontend",
    "Geo",
    "HotelBookings",
    "Profile",
    "Rate",
    "Recommendation",
    "Reservation",
    "Search",
    "UnknownHotel",
    "User",
    "spawn_services",
    "workload_user",
]
