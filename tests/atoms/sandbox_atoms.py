"""Atom classes the sandbox tests run both natively and inside WebAssembly.

This module is packaged into the guest: it may import only the standard library
and the guest-safe part of radon_actors (no trio, no pytest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from radon_actors import Atom, Ref, Rejection, SandboxDenied, handler, portable, state


@portable
class Boom(Exception):
    """A user exception, raised inside handlers."""


class Unregistered(ValueError):
    """A user exception not registered with @portable: it leaves the sandbox
    as a ForeignError."""


@portable
class Overdrawn(Rejection):
    """A business error: an answer to the asker, not a crash."""


@portable
@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Counter(Atom):
    def __init__(self, start: int = 0) -> None:
        self.value = start

    @handler
    def incr(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @handler
    def get(self) -> int:
        return self.value

    @handler
    async def aget(self) -> int:  # async, but without an await: cannot suspend
        return self.value

    @handler
    def fail(self, message: str) -> None:
        raise Boom(message)

    @handler
    def fail_plain(self, message: str) -> None:
        raise Unregistered(message)

    @handler
    def take(self, n: int) -> int:
        if n > self.value:
            raise Overdrawn(f"cannot take {n} of {self.value}")
        self.value -= n
        return self.value

    @handler(raises=KeyError)
    def lookup(self, key: str) -> int:
        return {"value": self.value}[key]

    @handler
    def move(self, p: Point, dx: int) -> Point:
        return Point(p.x + dx, p.y)

    @handler
    def echo(self, value: Any) -> Any:
        return value

    @handler
    def me(self) -> Ref[Any]:
        return self.ref

    @handler
    def shout(self, text: str) -> str:
        print(text)  # the guest's stdout goes nowhere; printing must not fail
        return text.upper()

    @handler
    def hue(self, r: float, g: float, b: float) -> float:
        # A standard-library import inside a handler: the build preloads it.
        import colorsys

        return colorsys.rgb_to_hsv(r, g, b)[0]


class Relay(Atom):
    """Async handlers that ask other atoms: suspension across the boundary."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @handler
    async def forward(self, target: Ref[Counter], by: int) -> int:
        first = await target.ask(Counter.incr, by)
        second = await target.ask("incr", by)
        self.seen.append(second)
        return first + second

    @handler
    async def forward_failure(self, target: Ref[Counter]) -> str:
        try:
            await target.ask(Counter.fail, "inner")
        except Boom as exc:
            return f"caught {exc}"
        return "not raised"

    @handler
    def notify(self, target: Ref[Counter], by: int) -> None:
        target.tell(Counter.incr, by)

    @handler
    async def make_child(self, start: int) -> int:
        child = await self.spawn(Counter, start)
        return await child.ask(Counter.incr, 1)

    @handler
    async def spawn_sandboxed_child(self, start: int) -> int:
        child = await self.spawn(SandboxedCounter, start)
        return await child.ask(SandboxedCounter.incr, 1)

    @handler
    async def make_child_as(self, cls: type[Counter], start: int, sandbox: Any) -> Ref[Counter]:
        # sandbox=None follows the class attribute, True/False override it.
        return await self.spawn(cls, start, sandbox=sandbox)

    @handler
    async def ask_self(self) -> int:
        return await self.ref.ask(Relay.history)  # type: ignore[arg-type]

    @handler
    def history(self) -> list[int]:
        return list(self.seen)

    @handler
    def timed(self, delay: float) -> bool:
        timer = self.send_after(delay, Relay.record, 99)
        return timer.active

    @handler
    def record(self, value: int) -> None:
        self.seen.append(value)

    @handler
    def log_something(self, word: str) -> str:
        # warning: the project's test configuration filters out info events
        self.log.warning("relay.said", word=word)
        return word


class SandboxedCounter(Counter):
    """A class-level default: always sandboxed unless spawn says otherwise."""

    sandbox = True


class Starter(Atom):
    """Exercises on_start/on_stop in the guest."""

    def __init__(self, target: Ref[Counter]) -> None:
        self.target = target

    async def on_start(self) -> None:
        await self.target.ask(Counter.incr, 100)

    def on_stop(self) -> None:
        self.target.tell(Counter.incr, 1000)

    @handler
    def ping(self) -> str:
        return "pong"


class Hostile(Atom):
    """Handlers that attack the sandbox."""

    def __init__(self) -> None:
        self.turns = 0

    @handler
    def ok(self) -> int:
        self.turns += 1
        return self.turns

    @handler
    def spin(self) -> None:
        while True:
            pass

    @handler
    def hog(self) -> int:
        blocks = []
        while True:
            blocks.append(bytearray(8 * 1024 * 1024))
            if len(blocks) > 10_000:  # never reached in the sandbox
                return len(blocks)

    @handler
    def recurse(self, depth: int = 0) -> int:
        return self.recurse(depth + 1) + 1  # type: ignore[no-any-return]

    @handler
    def read_file(self, path: str) -> str:
        with open(path) as f:
            return f.read()

    @handler
    def connect(self, host: str, port: int) -> str:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            sock.connect((host, port))
            return "connected"

    @handler
    def environ(self) -> dict[str, str]:
        import os

        return dict(os.environ)

    @handler
    def flood_timers(self, n: int, period: float) -> tuple[int, str]:
        """Try to set ``n`` periodic timers: how many the host granted, and its
        refusal (empty if none)."""
        granted = 0
        try:
            for _ in range(n):
                self.send_every(period, Hostile.ok)
                granted += 1
        except SandboxDenied as exc:
            return granted, str(exc)
        return granted, ""

    @handler
    async def spawn_many(self, n: int) -> tuple[int, str]:
        """Try to spawn ``n`` children: how many the host granted, and its refusal."""
        granted = 0
        try:
            for _ in range(n):
                await self.spawn(Counter)
                granted += 1
        except SandboxDenied as exc:
            return granted, str(exc)
        return granted, ""

    @handler
    async def spawn_below(self, n: int) -> tuple[int, str]:
        """Spawn a Hostile child that tries to spawn ``n`` children of its own."""
        child = await self.spawn(Hostile)
        result: tuple[int, str] = await child.ask(Hostile.spawn_many, n)
        return result

    @handler
    def flood_logs(self, n: int) -> int:
        for i in range(n):
            self.log.warning("hostile.flood", i=i)
        return n

    @handler
    def flood_tells(self, n: int) -> tuple[int, str]:
        """Try to tell itself ``n`` times in one turn: how many went, and the refusal."""
        sent = 0
        try:
            for _ in range(n):
                self.ref.tell(Hostile.ok)
                sent += 1
        except SandboxDenied as exc:
            return sent, str(exc)
        return sent, ""

    @handler
    def flood_big_tells(self, n: int, size: int) -> tuple[int, str]:
        """Try to tell itself ``n`` messages of ``size`` characters in one turn
        (each held by the host in its mailbox): how many went, and the refusal."""
        sent = 0
        payload = "x" * size
        try:
            for _ in range(n):
                self.ref.tell(Hostile.take, payload)
                sent += 1
        except SandboxDenied as exc:
            return sent, str(exc)
        return sent, ""

    @handler
    def take(self, payload: str) -> None:
        pass

    # Attacks on the boundary itself: each writes raw text where the guest
    # runtime would write a value, as a hostile component could. They import the
    # guest runtime inside the handler (it exists only in the guest).
    @handler
    def raw_result(self, text: str) -> list[int]:
        """Make this turn's outcome ``"d" + text``."""
        from radon_actors.sandbox import _guest

        _guest._done = lambda _value: "d" + text
        return []  # not a scalar: goes through the (replaced) writer

    @handler
    def raw_failure(self, text: str) -> None:
        """Make this turn's outcome ``"f" + text``."""
        from radon_actors.sandbox import _guest

        _guest._failed = lambda _exc, _answers=(): "f" + text
        raise Boom("replaced")

    @handler
    def raw_tell(self, target: int, text: str) -> str:
        """Tell ``get`` to handle ``target`` with ``text`` as the message."""
        from wit_world.imports import host  # type: ignore[import-not-found]

        error = host.tell(target, "get", text)
        return "sent" if error is None else error

    @handler
    def long_handler_tell(self, n: int) -> str:
        """Tell itself a handler whose name is ``n`` characters long."""
        from wit_world.imports import host

        error = host.tell(0, "h" * n, "[]")
        return "sent" if error is None else error

    @handler
    def raw_log(self, text: str) -> str:
        from wit_world.imports import host

        host.log("warning", "hostile.log", text)
        return "logged"

    @handler
    def raw_timer(self, text: str) -> str:
        from componentize_py_types import Err  # type: ignore[import-not-found]
        from wit_world.imports import host

        try:
            host.start_timer(0.001, False, "ok", text)
        except Err as err:
            return str(err.value)
        return "armed"

    @handler
    async def raw_spawn(self, class_name: str) -> Any:
        """Ask the host to spawn a class named by the guest."""
        from wit_world.imports import types as wt  # type: ignore[import-not-found]

        from radon_actors.sandbox import _guest

        request = wt.SpawnRequest(class_name, "[]", None, wt.Isolation.SANDBOXED)
        return await _guest._HostOp(wt.Operation_Spawn(request))

    @handler
    async def forged_ask(self, atom_id: str) -> Any:
        """Ask an atom this guest was never given, by its id."""
        from radon_actors import _ref

        forged: Ref[Counter] = _ref._restore(atom_id, None)
        return await forged.ask(Counter.get)

    @handler
    def raw_on_demand(self, class_name: str, key: str) -> str:
        """Ask the host for an on-demand reference by any class name and key."""
        from componentize_py_types import Err
        from wit_world.imports import host

        try:
            return "granted " + host.on_demand(class_name, key)
        except Err as err:
            return str(err.value)

    @handler
    def forged_tell(self, handle: int) -> str:
        """Tell by a handle number this guest was never given."""
        from wit_world.imports import host

        error = host.tell(handle, "incr", "[1000]")
        return "sent" if error is None else error


class Keeper(Atom):
    """State of every kind a snapshot must carry: Refs held plainly and inside
    objects with no portable form (a deque), a Fraction, a record."""

    def __init__(self, target: Ref[Counter]) -> None:
        from collections import deque
        from fractions import Fraction

        self.target = target
        self.queue = deque([target, target])
        self.ratio = Fraction(1, 3)
        self.point = Point(1, 2)

    @handler
    async def poke(self) -> list[Any]:
        first = await self.target.ask(Counter.incr, 1)
        second = await self.queue[0].ask(Counter.incr, 10)
        return [first, second, str(self.ratio), self.point]


class Cruncher(Atom):
    """CPU-bound work, for the parallel speedup (bench) and fuel tests."""

    @handler
    def crunch(self, n: int) -> int:
        total = 0
        for i in range(n):
            total = (total + i * i) % 1_000_003
        return total


class Gatekeeper(Atom):
    """Stashes work until it is opened; stops itself on request; cancels timers."""

    def __init__(self) -> None:
        self.open = False
        self.done: list[int] = []

    @handler
    def work(self, x: int) -> int:
        if not self.open:
            self.stash()
            return -1  # never seen: the message is set aside, unanswered
        self.done.append(x)
        return x * 10

    @handler
    def opening(self) -> None:
        self.open = True
        self.unstash_all()

    @handler
    def history(self) -> list[int]:
        return list(self.done)

    @handler
    def timer_then_cancel(self, delay: float) -> tuple[bool, bool]:
        timer = self.send_after(delay, Gatekeeper.work, 7)
        before = timer.active
        timer.cancel()
        return before, timer.active

    @handler
    def quit(self) -> str:
        self.stop()
        return "bye"

    @handler
    def make_lambda(self) -> Any:
        return lambda: 1


class Faulty(Atom):
    def __init__(self, fail: bool) -> None:
        if fail:
            raise Boom("constructor refused")

    @handler
    def ping(self) -> str:
        return "pong"


@dataclass
class Ledger:
    """An account's durable state: a dataclass, so a guest can rebuild it."""

    total: int = 0
    memos: list[str] = field(default_factory=list)
    payee: Ref[Any] | None = None


class Account(Atom):
    """A durable atom that runs natively or sandboxed, on the same stored state."""

    durable_type = "account"
    ledger = state(Ledger)

    def on_start(self) -> None:
        self.started_with = self.ledger.value.total  # loaded before on_start

    @handler
    async def deposit(self, n: int, memo: str = "", save: bool = True) -> int:
        self.ledger.value.total += n
        if memo:
            self.ledger.value.memos.append(memo)
        if save:
            await self.ledger.save()
        return self.ledger.value.total

    @handler
    def balance(self) -> int:
        return self.ledger.value.total

    @handler
    def info(self) -> list[Any]:
        value = self.ledger.value
        return [self.ledger.etag, self.ledger.exists, self.started_with, value.memos]

    @handler
    async def set_payee(self, payee: Ref[Any]) -> None:
        self.ledger.value.payee = payee
        await self.ledger.save()

    @handler
    async def pay(self, n: int) -> Any:
        payee = self.ledger.value.payee
        assert payee is not None
        return await payee.ask("incr", n)

    @handler
    async def clear(self) -> None:
        await self.ledger.clear()

    @handler
    async def reload(self) -> int:
        await self.ledger.reload()
        return self.ledger.value.total

    @handler
    def crash(self) -> None:
        raise RuntimeError("crash")

    @handler
    async def save_many(self, n: int, size: int) -> tuple[int, str]:
        """Save the ledger ``n`` times with a memo of ``size`` characters: how
        many saves the host took, and its refusal (empty if none)."""
        saved = 0
        try:
            for _ in range(n):
                self.ledger.value.memos = ["x" * size]
                await self.ledger.save()
                saved += 1
        except SandboxDenied as exc:
            return saved, str(exc)
        return saved, ""

    @handler
    async def remind_me(self, due: float) -> None:
        await self.remind("later", Account.deposit, 100, "reminded", due=due)

    @handler
    async def raw_read(self, name: str) -> Any:
        """What a hostile guest can try: read a state its class does not declare."""
        return await self._radon_ctx.read_state(name)

    @handler
    async def raw_write(self, doc: Any) -> Any:
        """... or write its own state with any document."""
        return await self._radon_ctx.write_state("ledger", doc, self.ledger.etag)


class Reminding(Atom):
    """An on-demand sandboxed atom that tries to keep too many reminders, or to
    have them fire too often (the sandbox's reminder quotas)."""

    sandbox = True
    daemon = True

    @handler
    def ok(self) -> None:
        pass

    @handler
    async def flood_reminders(self, n: int, period: float | None) -> tuple[int, str]:
        """Try to set reminders r0..r<n-1>: how many the host stored, and its
        refusal (empty if none)."""
        granted = 0
        try:
            for i in range(n):
                await self.remind(f"r{i}", Reminding.ok, due=3600.0, period=period)
                granted += 1
        except SandboxDenied as exc:
            return granted, str(exc)
        return granted, ""

    @handler
    async def forget(self, name: str) -> bool:
        return await self.forget_reminder(name)

    @handler
    async def big_reminder(self, name_size: int, message_size: int) -> str:
        """Try one reminder with a name and a message of these sizes: its refusal."""
        try:
            await self.remind("n" * name_size, Reminding.ok, "m" * message_size, due=3600.0)
        except SandboxDenied as exc:
            return str(exc)
        return ""


class SandboxedAccount(Account):
    """Account, sandboxed on demand (``system.get``), on the same stored state."""

    durable_type = "account"
    sandbox = True
    collect_after = 60.0


class Refused(Rejection):
    """A business error the host does not know (not @portable): it reaches the
    asker as a ForeignError that is also a Rejection, as a JavaScript one does."""


class Polyglot(Atom):
    """The Python twin of tests/atoms/js/polyglot.js (same handlers, same
    observable behaviour): tests/sandbox/test_sandbox_polyglot.py runs one
    scenario against both."""

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.value = start
        self.seen: list[Any] = []

    @handler
    def incr(self, by: int = 1) -> int:
        self.value += by
        return self.value

    @handler
    def get(self) -> int:
        return self.value

    @handler
    def me(self) -> Ref[Any]:
        return self.ref

    @handler
    def echo(self, value: Any) -> Any:
        return value

    @handler
    def remember(self, value: Any) -> int:
        self.seen.append(value)
        return len(self.seen)

    @handler
    def history(self) -> list[Any]:
        return self.seen

    @handler
    def fail(self, message: str) -> None:
        raise Unregistered(message)

    @handler
    def take(self, n: int) -> int:
        if n > self.value:
            raise Refused(f"cannot take {n} of {self.value}")
        self.value -= n
        return self.value

    @handler
    async def forward(self, target: Ref[Any], by: int) -> int:
        first: int = await target.ask("incr", by)
        second: int = await target.ask("incr", by)
        return first + second

    @handler
    def notify(self, target: Ref[Any], by: int) -> None:
        target.tell("incr", by)

    @handler
    async def deposit(self, who: str, n: int) -> int:
        return await self.on_demand(Wallet, who).ask(Wallet.add, n)

    @handler
    async def fill(self, target: Ref[Any], n: int) -> int:
        for i in range(n):
            await target.send("remember", i)  # waits whenever the mailbox is full
        return n

    @handler
    def flood(self, target: Ref[Any], n: int) -> int:
        for i in range(n):
            target.tell("remember", i)  # raises MailboxFull when it is full
        return n

    @handler
    async def rescue(self, target: Ref[Any]) -> str:
        try:
            await target.ask("fail", "inner")
        except Exception as exc:
            return f"caught {exc}"
        return "not raised"

    @handler
    async def child(self, start: int) -> Ref[Any]:
        child = await self.spawn(Polyglot, start)
        await child.ask(Polyglot.incr, 1)
        return child

    @handler
    def later(self, delay: float, value: Any) -> None:
        self.send_after(delay, Polyglot.remember, value)

    @handler
    def hold(self, value: Any) -> Any:
        # Stashed until `release`; the asker waits meanwhile.
        if self.value < 100:
            self.stash()
            return None
        return value

    @handler
    def release(self) -> None:
        self.value = 100
        self.unstash_all()

    @handler
    def spin(self) -> None:
        while True:
            pass

    @handler
    def grow(self) -> None:
        chunks = []
        while True:
            chunks.append(bytearray(1 << 20))


class Wallet(Atom):
    """An on-demand atom (native in the tests) that sandboxed tellers reach by key."""

    def __init__(self) -> None:
        self.coins = 0

    @handler
    def add(self, n: int) -> int:
        self.coins += n
        return self.coins

    @handler
    def owner(self) -> str | None:
        return self.key


class Teller(Atom):
    """Reaches wallets by key (``on_demand``), as far as its grant allows."""

    def __init__(self) -> None:
        self.held: Ref[Wallet] | None = None

    @handler
    async def deposit(self, who: str, n: int) -> int:
        return await self.on_demand(Wallet, who).ask(Wallet.add, n)

    @handler
    def drop_in(self, who: str, n: int) -> None:
        self.on_demand(Wallet, who).tell(Wallet.add, n)

    @handler
    def wallet(self, who: str) -> Ref[Wallet]:
        return self.on_demand(Wallet, who)

    @handler
    def hold(self, who: str) -> None:
        self.held = self.on_demand(Wallet, who)

    @handler
    async def add_to_held(self, n: int) -> int:
        assert self.held is not None
        return await self.held.ask(Wallet.add, n)
