"""Atoms for bench/sandbox.py; packaged into the WebAssembly guest (stdlib only)."""

from __future__ import annotations

from radon_actors import Atom, handler


class Echo(Atom):
    @handler
    def ping(self, x: int) -> int:
        return x

    @handler
    async def aping(self, x: int) -> int:  # async, but no await: runs inline too
        return x

    @handler
    async def qping(self, x: int) -> int:
        # Has an await (never reached), so it may suspend: always a queued turn.
        if x < 0:
            await self.ref.ask(Echo.ping, x)
        return x

    @handler
    def guest_work_ns(self, n: int) -> float:
        """Inside the guest: mean ns of what the guest runtime does for one
        ``ping`` turn (decode the message, run the handler, encode the outcome),
        without the component-model bindings. Only works sandboxed."""
        import time

        from radon_actors.sandbox import _guest

        message = _guest._writer.message((1,), {})  # as the guest writes it
        handle = _guest.Guest().handle  # the export's body, minus the bindings
        t0 = time.perf_counter_ns()
        for _ in range(n):
            handle("ping", message)
        return (time.perf_counter_ns() - t0) / n


class Cruncher(Atom):
    @handler
    def crunch(self, n: int) -> int:
        total = 0
        for i in range(n):
            total = (total + i * i) % 1_000_003
        return total
