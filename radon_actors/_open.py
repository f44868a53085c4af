"""``open_system``: the runtime composed with supervision, the sandbox and placement.

This is the one place that knows every layer. The runtime defines the seams
(``runtime.Extensions``); here each extension is wired in as a factory that
imports its layer on first use, so a system that never sandboxes or places an
atom never imports wasmtime or opens a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs

from .runtime import (
    DEFAULT_MAILBOX_SIZE,
    DEFAULT_SHUTDOWN_TIMEOUT,
    Durability,
    Extensions,
    Isolation,
    Placement,
    System,
    run_system,
)
from .supervisor import start_root

if TYPE_CHECKING:
    from .cluster import Cluster
    from .durable import StateStore
    from .supervisor import ChildSpec

__all__ = ["EXTENSIONS", "open_system"]


def _isolation() -> Isolation:
    # Imported only when used: it needs wasmtime.
    from .sandbox.host import ISOLATION

    return ISOLATION


def _placement(system: System) -> Placement:
    from .placement import make_node

    return make_node(system)


def _durability(store: StateStore | None) -> Callable[[System], Durability]:
    def make(system: System) -> Durability:
        from .durable import make_durability

        made: Durability = make_durability(store)(system)
        return made

    return make


EXTENSIONS = Extensions(
    isolation=_isolation,
    placement=_placement,
    durability=_durability(None),
    start_root=start_root,
)
"""Every extension radon-actors ships, as ``open_system`` composes them."""


@asynccontextmanager
async def open_system(
    *,
    mailbox_size: int = DEFAULT_MAILBOX_SIZE,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    root: ChildSpec | None = None,
    state_store: StateStore | None = None,
    cluster: Cluster | None = None,
) -> AsyncIterator[System]:
    """Open an atom system for the duration of an ``async with`` block.

    Leaving the block stops every atom (children before parents, ``on_stop`` run)
    and waits for them, at most ``shutdown_timeout`` seconds, after which whatever
    is left is cancelled. An exception leaving the block is re-raised unchanged
    after the shutdown.

    ``root`` declares the root supervisor (``Supervisor.spec(children, ...)``); its
    children start before the block runs. If the root gives up (its restart
    intensity is exceeded, or a failure escalates to it), the block is cancelled
    and ``open_system`` raises the root's reason
    (:class:`~radon_actors.RestartIntensityExceeded` or
    :class:`~radon_actors.Escalated`).

    ``state_store`` keeps durable atoms' state (:func:`~radon_actors.state`;
    docs/durability.md): a :class:`~radon_actors.SQLiteStore`, a
    :class:`~radon_actors.RedisStore`, or any ``StateStore``. Default: an
    SQLite file, ``radon-state.sqlite3`` in the working directory (or the file
    the ``RADON_STATE`` environment variable names), opened by the first
    durable atom.

    ``cluster`` (a :class:`~radon_actors.Cluster`) makes the system a member
    of a cluster: systems that share one state store and one directory of
    on-demand atoms, so that each key is active in one member at a time
    (docs/cluster.md). The system joins before its root starts, and leaves
    (its activations stopped, its membership cleared) before it closes.
    """
    extensions = EXTENSIONS
    if state_store is not None:
        extensions = attrs.evolve(EXTENSIONS, durability=_durability(state_store))
    if cluster is not None:
        async with _clustered(mailbox_size, shutdown_timeout, root, extensions, cluster) as system:
            yield system
        return
    async with run_system(
        mailbox_size=mailbox_size,
        shutdown_timeout=shutdown_timeout,
        root=root,
        extensions=extensions,
    ) as system:
        if state_store is not None:
            # Its reminders are served from the start (``durable._reminders``).
            system.durability()
        yield system


@asynccontextmanager
async def _clustered(
    mailbox_size: int,
    shutdown_timeout: float,
    root: ChildSpec | None,
    extensions: Extensions,
    cluster: Cluster,
) -> AsyncIterator[System]:
    from .cluster import Member, attach, membership

    member: Member | None = None
    start_root = extensions.start_root
    assert start_root is not None

    async def join_then_start_root(system: System, spec: object) -> None:
        # Joined before the root's children start: an on-demand Ref they make
        # names the cluster's directory.
        nonlocal member
        member = attach(system, cluster)
        await member.start()
        await start_root(system, spec)

    async with run_system(
        mailbox_size=mailbox_size,
        shutdown_timeout=shutdown_timeout,
        root=root,
        extensions=attrs.evolve(extensions, start_root=join_then_start_root),
    ) as system:
        assert member is not None
        async with membership(member):
            yield system
