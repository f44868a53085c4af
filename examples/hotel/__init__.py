"""DeathStarBench's hotelReservation on atoms: its data, its services, an HTTP
frontend and a load generator.

A port of ``hotelReservation`` from delimitrou/DeathStarBench: the seed data of
its databases (``_data``), its services as atoms (``_services``; each
:class:`Frontend` handler answers one of the original's HTTP requests with the
original's JSON body), the HTTP/1.1 server in front of them (``_http``, run by
``python -m examples.hotel serve``) and an open-loop load generator with the
original's mixed workload (``_load``, ``python -m examples.hotel load``). See
examples/hotel/README.md.

``_data`` and ``_services`` import only the standard library and
``radon_actors``, so the services can run inside the WebAssembly sandbox.
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
    spawn_frontends,
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
    "spawn_frontends",
    "spawn_services",
    "workload_user",
]
