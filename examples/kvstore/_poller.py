"""Client connections read through one epoll set, each served by its own task.

Why: a request/reply protocol with many clients and one small request in flight
on each (``redis-benchmark``'s default: 50 clients, no pipelining) is where
trio's ``SocketStream`` costs the most. Every request pays a receive that
finds nothing, a readiness registration (an ``epoll_ctl`` call), a scheduler
pass to wake the task, the receive, and the checkpoints ``receive_some`` and
``send_all`` make. Answering at once with no store behind it, such a server
serves about 0.4x what ``redis-server`` does on the same machine.

Here the client sockets are registered once, in an epoll set of the server's
own, and trio waits on that set's descriptor (an epoll descriptor is itself
pollable). One *poller* task reads every socket the set reports ready and hands
the bytes to the connection's task, rescheduling it if it waits: per request,
one read and one task switch, and the registration cost is paid per batch of
ready sockets, not per request. Replies go straight to the socket with one
``os.write``; only when the socket's buffer is full does a connection wait, in
trio's ``send_all``. The same answer-at-once server served about 0.7x
``redis-server`` this way, twice what a task per trio stream serves.

A connection may also be given a *responder*: a function the poller calls with
the bytes it read, when the connection's task is idle (waiting in
``receive``), to answer them there and then. Its replies are written after
every ready socket has been read, one ``os.write`` each; none of it involves
the connection's task, so a request costs no task switch at all. A responder
that cannot finish (a command that must wait) keeps what is left for the task
and returns None; the poller wakes the task, which goes on from there. The
store's frontend answers most commands so (``Store.execute_now``): in one
process, about 1.6x the requests per second of answering in the tasks, and
an answer-at-once server as much as ``redis-server`` (``bench/resp_floor.py
--polled``; without ``--polled``, a task per trio stream). The
poller calls at most ``ROUND_CALLS`` responders per pass over the ready
sockets and sends the rest to the tasks, so that one pass, which other tasks
wait for, stays short.

Backpressure: the poller stops reading a connection (takes it out of the set)
once ``MAX_UNREAD`` bytes wait for its task, and reads it again when the task
has taken them, so a client that pipelines faster than its commands run holds
that much memory at most. A client that sends and never reads its replies
blocks only its own task, in ``send_all``.

Where ``select.epoll`` does not exist (not Linux), ``EPOLL`` is false and the
frontend uses :class:`StreamConnection`: the same interface, trio's costs.
"""

from __future__ import annotations

import contextlib
import os
import select
from collections.abc import Callable
from typing import Any, Protocol

import trio

__all__ = [
    "EPOLL",
    "MAX_UNREAD",
    "ROUND_CALLS",
    "Connection",
    "Poller",
    "Responder",
    "StreamConnection",
]

CHUNK = 65536
MAX_UNREAD = 1 << 20  # bytes a connection's task has not taken yet, at most
ROUND_CALLS = 128  # responders the poller calls per pass, at most
EPOLL = hasattr(select, "epoll")

Responder = Callable[[bytes], "bytes | bytearray | None"]
"""Answers bytes read from a connection, in the poller's task: returns the
reply bytes to write, or None when the connection's task must go on (the
responder then keeps what it has not answered, for the task to find)."""


class Connection(Protocol):
    """One client's byte stream, as the frontend reads and writes it."""

    async def receive(self) -> bytes:
        """What the client sent since the last call; ``b""`` once it has closed."""
        ...

    async def send_all(self, data: bytes | bytearray) -> None:
        """Write ``data`` (all of it, waiting for room if the socket is full)."""
        ...

    async def aclose(self) -> None:
        """Close the connection (and stop watching it)."""
        ...


class StreamConnection:
    """A connection through trio's own stream (no epoll: the fallback)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream

    async def receive(self) -> bytes:
        return bytes(await self._stream.receive_some(CHUNK))

    async def send_all(self, data: bytes | bytearray) -> None:
        await self._stream.send_all(data)

    async def aclose(self) -> None:
        await self._stream.aclose()


class _PolledConnection:
    """A connection whose reads the :class:`Poller` does (see the module docs)."""

    __slots__ = (
        "_abort",
        "_eof",
        "_fd",
        "_inbox",
        "_paused",
        "_poller",
        "_respond",
        "_stream",
        "_unread",
        "_unsent",
        "_waiter",
    )

    def __init__(
        self, poller: Poller, stream: trio.SocketStream, respond: Responder | None
    ) -> None:
        self._poller = poller
        self._respond = respond
        self._unsent: bytes | None = None  # a reply the poller could not write whole
        self._stream = stream
        self._fd = stream.socket.fileno()
        self._inbox: list[bytes] = []
        self._unread = 0
        self._eof = False
        self._paused = False
        self._waiter: Any = None  # the task waiting in ``receive``
        self._abort = self._aborted  # bound once, not per wait

    def _aborted(self, _: Any) -> trio.lowlevel.Abort:
        # Cancelled while waiting: no one to wake any more.
        self._waiter = None
        return trio.lowlevel.Abort.SUCCEEDED

    # the poller's side ------------------------------------------------------
    def readable(self) -> bytes | bytearray | None:
        """The set says the socket has bytes (or has closed): take them. When
        the responder answers them now, the reply to write (after this pass's
        reads: :meth:`write_now`) is returned."""
        try:
            data = os.read(self._fd, CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""  # reset by the peer: the end, as a close
        poller = self._poller
        if data and self._waiter is not None and self._respond is not None and poller.calls:
            # The task is idle (so nothing is unread or unsent): answer here.
            poller.calls -= 1
            out = self._respond(data)
            if out is not None:
                return out
            self._wake()  # the task goes on with what the responder kept
            return None
        if data:
            self._inbox.append(data)
            self._unread += len(data)
            if self._unread >= MAX_UNREAD:
                self._paused = True
                poller.pause(self._fd)
        else:
            self._eof = True
            poller.forget(self._fd)
        self._wake()
        return None

    def write_now(self, data: bytes | bytearray) -> None:
        """Write a responder's reply; what the socket cannot take now, the
        task sends (it is idle: a responder ran), before it reads again."""
        try:
            sent = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            # The client is gone: the task ends the connection.
            self._eof = True
            self._poller.forget(self._fd)
            self._wake()
            return
        if sent < len(data):
            self._unsent = bytes(data[sent:])
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            trio.lowlevel.reschedule(waiter)

    # the connection task's side --------------------------------------------
    async def receive(self) -> bytes:
        """What the client sent; ``b""`` at its end, or when a responder left
        work for this task (the responder's owner knows which)."""
        if self._inbox:
            # Bytes came while this task was busy: a checkpoint, as any receive
            # makes, so a client that keeps pipelining cannot hog the scheduler.
            await trio.lowlevel.checkpoint()
        else:
            while not self._eof and not self._inbox:
                self._waiter = trio.lowlevel.current_task()
                await trio.lowlevel.wait_task_rescheduled(self._abort)
                unsent = self._unsent
                if unsent is None or self._inbox:
                    break  # bytes, the end, or a responder's leftovers
                # Woken to finish a reply the poller could not write whole.
                self._unsent = None
                await self._stream.send_all(unsent)
        inbox = self._inbox
        if not inbox:
            return b""
        data = inbox[0] if len(inbox) == 1 else b"".join(inbox)
        inbox.clear()
        self._unread = 0
        if self._paused and not self._eof:
            self._paused = False
            self._poller.resume(self._fd)
        return data

    async def send_all(self, data: bytes | bytearray) -> None:
        unsent = self._unsent
        if unsent is not None:  # a responder's reply goes first
            self._unsent = None
            await self._stream.send_all(unsent)
        try:
            sent = os.write(self._fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            raise trio.BrokenResourceError(f"the client's connection failed: {exc!r}") from exc
        if sent < len(data):
            # The socket's buffer is full (a client slow to read): wait in trio.
            await self._stream.send_all(memoryview(data)[sent:])

    async def aclose(self) -> None:
        self._poller.forget(self._fd)
        await self._stream.aclose()


class Poller:
    """The epoll set of one server's connections, and the task that reads them."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._connections: dict[int, _PolledConnection] = {}
        self.calls = 0  # responder calls left in this pass

    def watch(self, stream: trio.SocketStream, respond: Responder | None = None) -> Connection:
        """Read ``stream``'s socket through the set from now on; ``respond``
        answers what it reads while the connection's task is idle."""
        conn = _PolledConnection(self, stream, respond)
        self._connections[conn._fd] = conn
        self._epoll.register(conn._fd, select.EPOLLIN)
        return conn

    def pause(self, fd: int) -> None:
        self._epoll.modify(fd, 0)

    def resume(self, fd: int) -> None:
        if fd in self._connections and not self._epoll.closed:
            self._epoll.modify(fd, select.EPOLLIN)

    def forget(self, fd: int) -> None:
        if self._connections.pop(fd, None) is not None and not self._epoll.closed:
            # An error: the socket was closed already, and left the set with it.
            with contextlib.suppress(OSError):
                self._epoll.unregister(fd)

    async def run(self) -> None:
        """Read every socket the set reports ready, until cancelled."""
        epoll = self._epoll
        fd = epoll.fileno()
        poll = epoll.poll
        connections = self._connections
        replies: list[tuple[_PolledConnection, bytes | bytearray]] = []
        try:
            while True:
                await trio.lowlevel.wait_readable(fd)
                self.calls = ROUND_CALLS
                for ready, _ in poll(0):
                    conn = connections.get(ready)
                    if conn is not None:
                        out = conn.readable()
                        if out:
                            replies.append((conn, out))
                # The replies after the reads: clients woken by them send their
                # next requests while this pass still runs, which made it slower.
                for conn, out in replies:
                    conn.write_now(out)
                replies.clear()
        finally:
            # The connections' tasks end with the server (they share its
            # nursery); a connection closed after this has nothing to forget.
            connections.clear()
            trio.lowlevel.notify_closing(fd)
            epoll.close()
