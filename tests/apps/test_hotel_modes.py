"""The hotel services give the same answers wherever they run (issue #17):
in this process, on worker hosts, and in the WebAssembly sandbox, with the
same service code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from cluster_helpers import cluster

from examples.hotel import BadRequest, Frontend, spawn_services, workload_user
from radon_actors import Ref, SQLiteStore, open_system

# Workload points (the Lua script's ranges), dates, and each request kind.
POINTS = [(38.0235, -122.095), (37.7835, -122.41), (37.9, -122.2), (38.2, -122.3)]


async def answers(frontend: Ref[Frontend]) -> list[Any]:
    """The same requests, in order; an error is kept as its type and message."""
    user, password = workload_user(7)
    out: list[Any] = []
    for lat, lon in POINTS:
        out.append(await frontend.ask(Frontend.hotels, "2015-04-09", "2015-04-11", lat, lon))
    for require in ("dis", "rate", "price"):
        out.append(await frontend.ask(Frontend.recommendations, require, *POINTS[1]))
    out.append(await frontend.ask(Frontend.user, user, password))
    out.append(await frontend.ask(Frontend.user, user, "wrong"))
    for number in (3, 500):  # fits; does not
        out.append(
            await frontend.ask(
                Frontend.reservation,
                "2015-04-09",
                "2015-04-11",
                None,
                None,
                "2",
                "Ann",
                user,
                password,
                number,
            )
        )
    try:
        await frontend.ask(Frontend.hotels, "2015-04-09", None, 38.0, -122.0)
    except BadRequest as exc:
        out.append(("BadRequest", str(exc)))
    return out


async def run_mode(tmp_path: Path, mode: str) -> list[Any]:
    store = SQLiteStore(tmp_path / f"{mode}.db")
    if mode == "hosts":
        async with cluster("w1", "w2", state_store=store) as system:
            frontend = await spawn_services(system, mode="hosts", hosts=["w1", "w2"])
            return await answers(frontend)
    async with open_system(state_store=store) as system:
        return await answers(await spawn_services(system, mode=mode))


async def test_every_request_gives_the_same_answers_in_every_mode(tmp_path: Path) -> None:
    with trio.fail_after(600):
        local = await run_mode(tmp_path, "local")
        assert local[-1][0] == "BadRequest"
        assert local[-5] == {"message": "Login successfully!"}
        assert local[-4] == {"message": "Failed. Please check your username and password. "}
        assert local[-3] == {"message": "Reserve successfully!"}
        assert local[-2] == {"message": "Failed. Already reserved. "}
        for mode in ("hosts", "sandboxed"):
            assert await run_mode(tmp_path, mode) == local, mode


async def test_an_unknown_mode_is_refused() -> None:
    async with open_system() as system:
        with pytest.raises(ValueError, match="mode is one of"):
            await spawn_services(system, mode="cloud")
        with pytest.raises(ValueError, match="needs worker hosts"):
            await spawn_services(system, mode="hosts")
