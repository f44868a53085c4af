"""``Parked``: a child's task handed over to its supervisor.

A supervisor never runs a child's code in its own task: ``on_stop``, the
constructor and ``on_start`` of a restarted child all run in the child's task,
as they would in any turn. While the supervisor handles a failure, each child
it acts on *parks* its task here and serves the supervisor's commands one by
one: ``terminate`` (stop the child's own children, cancel its timers, run
``on_stop`` within its shutdown timeout), ``start`` (build a fresh instance from
the spec), ``resume`` (go back to the mailbox, whose messages were kept), or
``finish`` (stop for good). That is how a strategy can stop a group of children
in reverse order and start them again in order, each in its own task, while
the cell (and therefore every Ref to it, and its mailbox) stays the same.

The failing child parks itself (in its failure path); a sibling is parked by a
``call`` control message, which it serves between two turns. The cell's
``parked`` slot points here while the handover lasts, so that a stop request, or
the child failing on its own, joins the handover instead of starting another.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import trio

from ..runtime import CellState

if TYPE_CHECKING:
    from ..runtime import AtomCell

__all__ = ["Parked"]

_STOPPING = CellState.STOPPING


class _Reply:
    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.error: BaseException | None = None


class Parked:
    """One handover of one child's task to its supervisor (see the module docs)."""

    def __init__(self, cell: AtomCell) -> None:
        self.cell = cell
        send, recv = trio.open_memory_channel[tuple[str, Any, _Reply]](math.inf)
        self._send = send
        self._recv = recv
        self.terminated = False
        """True between ``terminate`` and a successful ``start``."""
        self.done = False
        """True once the child left the handover (resumed or stopped)."""
        self.lagging = False
        """True once the child did not answer within its shutdown timeout: the
        supervisor queues the remaining commands without waiting for them."""
        self.start_error: BaseException | None = None
        self._serving = trio.Event()
        cell.parked = self
        # Should the child stop without ever serving (its mailbox closed under a
        # pending ``call``), nobody may wait for it forever.
        cell.add_stop_callback(self._cell_stopped)

    def _cell_stopped(self, cell: AtomCell, reason: BaseException | None) -> None:
        self.done = True
        if cell.parked is self:
            cell.parked = None
        self._answer_all()

    def _answer_all(self) -> list[Any]:
        """Answer every queued command; return the arguments of queued ``finish``es."""
        finishes: list[Any] = []
        while True:
            try:
                op, arg, reply = self._recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return finishes
            if op == "finish":
                finishes.append(arg)
            reply.done.set()

    # supervisor side --------------------------------------------------
    async def request(
        self, op: str, arg: Any = None, timeout: float | None = None
    ) -> BaseException | None:
        """Have the child run ``op``; returns its error (``start`` only), or None.

        Returns at once if the child already left the handover (it stopped). With
        ``timeout``, a child that does not park in time (it is still in a turn,
        perhaps waiting for this very supervisor) is marked ``lagging``: it will run
        this command and the next ones when its turn ends, unattended. (Once
        parked, its ``on_stop`` is bounded by its own shutdown timeout.)
        """
        if self.done:
            return None
        reply = _Reply()
        self._send.send_nowait((op, arg, reply))
        if self.lagging:
            return None
        if timeout is not None and not self._serving.is_set():
            with trio.move_on_after(timeout):
                await self._serving.wait()
            if not self._serving.is_set() and not self.done:
                self.lagging = True
                self.cell.log.warning("supervisor.child_unresponsive", command=op, timeout=timeout)
                return None
        await reply.done.wait()
        return reply.error

    def stop_requested(self, reason: BaseException | None) -> None:
        """A stop request reached the parked child: finish it as soon as it serves."""
        if not self.done:
            self._send.send_nowait(("finish", reason, _Reply()))

    # child side ---------------------------------------------------------
    async def serve(self) -> None:
        """Serve the supervisor's commands in the child's task until resumed or stopped."""
        if self.done:
            return
        self._serving.set()
        cell = self.cell
        cell.busy = True
        try:
            while True:
                op, arg, reply = await self._recv.receive()
                try:
                    if op == "terminate":
                        await self._terminate()
                    elif op == "start":
                        reply.error = self.start_error = await self._start()
                    elif op == "finish":
                        await self._terminate()
                        cell.state = _STOPPING
                        cell.finish(arg)
                        return
                    elif op == "resume":
                        if self.terminated:
                            # Its restart failed and nobody was waiting to retry
                            # (a lagging child): it stops with the start error.
                            cell.state = _STOPPING
                            cell.finish(self.start_error)
                        return
                    else:  # pragma: no cover
                        raise AssertionError(f"unknown supervisor command {op!r}")
                finally:
                    reply.done.set()
        finally:
            self.done = True
            if cell.parked is self:
                cell.parked = None
            with contextlib.suppress(ValueError):
                cell.remove_stop_callback(self._cell_stopped)
            if cell.state < _STOPPING:
                cell.busy = False
            # Anything still queued is answered; a stop request that came after
            # ``resume`` goes back to the mailbox, where the atom will see it.
            late_stop = self._answer_all()
            if late_stop:
                cell.requeue_stop(late_stop[0])

    async def _terminate(self) -> None:
        if self.terminated:
            return
        cell = self.cell
        await cell.terminate_incarnation()
        cell.instance = None
        self.terminated = True

    async def _start(self) -> BaseException | None:
        cell = self.cell
        await self._terminate()
        cell.restarts += 1
        try:
            await cell.start_incarnation()
        except Exception as exc:
            cell.log.error("atom.restart_failed", reason=repr(exc), restarts=cell.restarts)
            return exc
        self.terminated = False
        # The old incarnation may have stopped itself and then failed: the new
        # one does not inherit that stop.
        cell.drop_self_stop()
        cell.log.info("atom.restarted", restarts=cell.restarts)
        return None
