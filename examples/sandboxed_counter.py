"""A counter atom whose handlers run inside WebAssembly.

    python examples/sandboxed_counter.py

The first run builds the atom's component (this module plus a small guest
runtime, about 10-60 s depending on the machine), showing its progress on
stderr (``radon_actors.prebuild``), and caches it; later runs load it in
milliseconds. ``radon build sandboxed_counter`` (run from this directory)
prebuilds it too.

The atom classes live at the top of this module, which imports only the standard
library and ``radon_actors``: that is what lets the module run inside the guest.
The demo (which needs trio) is in ``main``, imported lazily. A script's classes
belong to ``__main__``, which the sandbox cannot package, so the demo spawns the
classes of this file imported under its module name.
"""

from __future__ import annotations

from typing import Any

from radon_actors import Atom, Ref, handler


class Counter(Atom):
    """Always sandboxed: the class attribute is the default for every spawn."""

    sandbox = True

    def __init__(self, start: int = 0) -> None:
        self.value = start

    @handler
    def incr(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @handler
    def get(self) -> int:
        return self.value


class Doubler(Atom):
    """An ``async`` handler that asks another atom from inside the sandbox."""

    sandbox = True

    @handler
    async def double(self, counter: Ref[Counter]) -> int:
        current = await counter.ask(Counter.get)
        return await counter.ask(Counter.incr, current)

    @handler
    def spin(self) -> Any:
        while True:  # stopped by the sandbox's CPU budget
            pass


def _progress(message: str) -> None:
    import sys

    print(f"... {message}", file=sys.stderr, flush=True)


async def main() -> None:
    import trio

    from radon_actors import SandboxConfig, SandboxCrashed, open_system, prebuild

    # The first run on a machine builds the component (10-60 s); say so as it goes.
    await prebuild(Counter, Doubler, progress=_progress)
    async with open_system() as system:
        started = trio.current_time()
        counter = await system.spawn(Counter, 5)
        print(f"spawned a sandboxed counter in {trio.current_time() - started:.3f} s")
        print("incr(2) ->", await counter.ask(Counter.incr, 2))
        doubler = await system.spawn(Doubler, sandbox=SandboxConfig(fuel=200_000_000))
        print("double ->", await doubler.ask(Doubler.double, counter))
        try:
            await doubler.ask(Doubler.spin)
        except SandboxCrashed as exc:
            print("spin ->", type(exc).__name__, str(exc).splitlines()[0][:90])
        # The doubler was restarted by its supervisor; the counter never noticed.
        print("double again ->", await doubler.ask(Doubler.double, counter))
        print("native counter:", await (await system.spawn(Counter, 1, sandbox=False)).ask("incr"))


if __name__ == "__main__":
    import logging
    import sys

    import structlog
    import trio

    # Quiet: the crash of `spin` is logged at error level with its traceback.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    sys.path.insert(0, __import__("os").path.dirname(__file__))
    import sandboxed_counter  # this file again, as a module the sandbox can package

    try:
        trio.run(sandboxed_counter.main)
    except* KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C: the system stopped its atoms on the way out
