"""Atoms in another language through the same standard (issue #16): one
scenario (ask, tell, Refs both ways, exceptions, restart, timers, children,
limits, migration) run against a Python sandboxed atom and its JavaScript twin
(tests/atoms/js/polyglot.js), asserting the same observable results. The JS
atom is built with `radon build --js` (componentize-js under Node) and run
from its component alone, as any self-describing component."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import cluster
from sandbox_atoms import Counter, Polyglot, Wallet

from radon_actors import (
    Atom,
    AtomStopped,
    Down,
    ForeignError,
    MailboxFull,
    Rejection,
    SandboxConfig,
    SandboxCrashed,
    SandboxDenied,
    SandboxError,
    SQLiteStore,
    System,
    handler,
    open_system,
)
from radon_actors.sandbox._jsbuild import build_js
from radon_actors.sandbox._manifest import read_manifest
from radon_actors.sandbox.host import load_component

JS = Path(__file__).resolve().parents[1] / "atoms" / "js" / "polyglot.js"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("sandbox_component")

Spawn = Callable[..., Awaitable[Any]]


@pytest.fixture(params=["python", "javascript"])
def spawn_twin(request: pytest.FixtureRequest, js_component: Path) -> Spawn:
    """Spawns the Python atom sandboxed, or the JavaScript one from its component."""

    async def spawn(system: System, *args: Any, **options: Any) -> Any:
        if request.param == "python":
            return await system.spawn(Polyglot, *args, sandbox=options.pop("sandbox", True))
        return await system.spawn_component(js_component, "Polyglot", *args, **options)

    spawn.language = request.param  # type: ignore[attr-defined]
    return spawn


async def test_on_demand_atoms_are_reached_alike_as_granted(
    spawn_twin: Spawn, tmp_path: Path
) -> None:
    async with open_system(state_store=SQLiteStore(tmp_path / "s.db")) as system:
        granted = await spawn_twin(system, sandbox=SandboxConfig(on_demand=[Wallet]))
        assert await granted.ask("deposit", "ann", 5) == 5
        assert await granted.ask("deposit", "ann", 2) == 7
        assert await system.get(Wallet, "ann").ask(Wallet.add, 0) == 7
        plain = await spawn_twin(system, sandbox=True)
        with pytest.raises(SandboxDenied, match="may not reach on-demand atoms of"):
            await plain.ask("deposit", "ann", 1)
        assert await plain.ask("incr", 1) == 1  # and it carries on


async def test_asks_tells_and_values_cross_alike(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 5)
        assert await atom.ask("incr", 2) == 7
        assert await atom.ask("incr", by=3) == 10  # a keyword, by the parameter's name
        atom.tell("incr", 1)
        assert await atom.ask("get") == 11  # a tell before an ask arrives first
        value = {
            "text": "h\u00e9llo \u2603",
            "n": [0, -1, 2**60, -(2**70)],
            "f": [2.5, float("inf")],
            "none": None,
            "flags": [True, False],
            "raw": b"\x00\xffbytes",
            "set": {1, 2, 3},
            "$odd": {"$tag": 1},
        }
        assert await atom.ask("echo", value) == value
        # Integer results, either side of the JavaScript runtime's int32 fast path.
        for n in (0, -1, 7, 2**31 - 1, -(2**31), 2**31, 2**53 - 1, -(2**53 - 1), 2**70):
            echoed = await atom.ask("echo", n)
            assert echoed == n and type(echoed) is int
        assert await atom.ask("echo", -0.5) == -0.5
        assert await atom.ask("remember", {"k": [1, 2]}) == 1
        assert await atom.ask("history") == [{"k": [1, 2]}]
        me = await atom.ask("me")
        assert me.id == atom.id


async def test_refs_cross_both_ways(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 0)
        native = await system.spawn(Counter, 100)
        assert await atom.ask("forward", native, 1) == 101 + 102  # it asks a Python atom
        await atom.ask("notify", native, 10)  # ... tells it
        assert await native.ask(Counter.incr, 0) == 112
        relay = await system.spawn(Polyglot)  # a native Python atom asks it in turn
        assert await relay.ask(Polyglot.forward, atom, 2) == 2 + 4
        child = await atom.ask("child", 40)  # a child of its own class, as a Ref
        assert await child.ask("get") == 41
        assert child.id != atom.id


async def test_send_waits_for_room_where_tell_fails(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 0)
        small = await system.spawn(Polyglot, 0, mailbox_size=2)
        with pytest.raises(MailboxFull):
            await atom.ask("flood", small, 50)
        await trio.testing.wait_all_tasks_blocked()
        before = len(await small.ask("history"))
        assert before < 50
        assert await atom.ask("fill", small, 50) == 50  # every one, in order
        assert await small.ask("history") == [*range(before), *range(50)]


async def test_failures_reach_the_asker_and_the_atom_restarts(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 5)
        await atom.ask("incr", 10)
        with pytest.raises(Rejection, match="cannot take 1000 of 15") as refused:
            await atom.ask("take", 1000)
        assert isinstance(refused.value, ForeignError)  # a type the host does not know
        assert await atom.ask("get") == 15  # an answer, not a crash: no restart
        with pytest.raises(ForeignError, match="boom") as failed:
            await atom.ask("fail", "boom")
        assert failed.value.type_name in ("sandbox_atoms:Unregistered", "js:Error")
        await trio.testing.wait_all_tasks_blocked()
        assert await atom.ask("get") == 5  # restarted from its constructor's arguments
        native = await system.spawn(Counter, 0)
        assert await atom.ask("rescue", native) == "caught inner"  # caught inside


async def test_timers_deliver_to_the_atom(
    spawn_twin: Spawn, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 0)
        await atom.ask("later", 30.0, "tick")
        assert await atom.ask("history") == []
        await trio.sleep(31)
        assert await atom.ask("history") == ["tick"]


async def test_limits_stop_a_runaway_atom_and_it_restarts(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 3, sandbox=SandboxConfig(fuel=50_000_000))
        with pytest.raises(SandboxCrashed, match="ran out of fuel"):
            await atom.ask("spin")
        await trio.testing.wait_all_tasks_blocked()
        assert await atom.ask("get") == 3
        big = await spawn_twin(
            system, 1, sandbox=SandboxConfig(fuel=10**12, memory=96 * 1024 * 1024)
        )
        with pytest.raises(MemoryError):  # past its memory cap: raised inside, a crash
            await big.ask("grow")
        await trio.testing.wait_all_tasks_blocked()
        assert await big.ask("get") == 1


async def test_it_migrates_with_its_state(spawn_twin: Spawn) -> None:
    with trio.fail_after(120):
        async with cluster("w1") as system:
            atom = await spawn_twin(system, 5)
            await atom.ask("incr", 10)
            await atom.ask("remember", {"when": "before", "n": [1, 2]})
            await system.migrate(atom, to="w1")
            assert await atom.ask("get") == 15
            assert await atom.ask("remember", "after") == 2
            assert await atom.ask("history") == [{"when": "before", "n": [1, 2]}, "after"]
            await system.migrate(atom, to="local")
            assert await atom.ask("incr", 1) == 16


async def test_the_js_component_describes_itself(js_component: Path) -> None:
    loaded = await load_component(js_component)
    manifest = await trio.to_thread.run_sync(read_manifest, loaded)
    assert (manifest.standard, manifest.language) == ("0.6.0", "javascript")
    atom = manifest.atom("polyglot:Polyglot")
    assert str(atom.init) == "(self, start=...)"
    assert str(atom.handlers["incr"].signature) == "(self, by=...)"
    assert atom.handlers["forward"].suspends and not atom.handlers["incr"].suspends
    assert "constructor" not in atom.handlers and "onStart" not in atom.handlers
    assert "polyglot:Refused" not in manifest.atoms  # an error class, not an atom


async def test_bad_arguments_are_refused_at_the_sender(js_component: Path) -> None:
    async with open_system() as system:
        atom = await system.spawn_component(js_component, "Polyglot")
        with pytest.raises(TypeError, match="incr"):
            await atom.ask("incr", 1, 2)
        with pytest.raises(SandboxError, match="no atom class"):
            await system.spawn_component(js_component, "Nope")


def test_radon_build_js_builds_and_writes_the_component(tmp_path: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed")
    env = {**os.environ, "RADON_SANDBOX_CACHE": str(tmp_path / "cache")}
    source = tmp_path / "greeter.js"
    source.write_text(
        'import { Atom } from "radon-actors";\n'
        "export class Greeter extends Atom {\n"
        "  greet(name) { return `hello ${name}`; }\n"
        "}\n"
    )
    cmd = [sys.executable, "-m", "radon_actors._cli", "build", "--js", str(source)]
    out = tmp_path / "out"
    env["RADON_COMPONENTIZE_JS"] = str(ROOT / "node_modules/@bytecodealliance/componentize-js")
    done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "building the WebAssembly component of greeter.js" in done.stdout
    # The export glue pass ran (js/glue.mjs; tests/sandbox/test_sandbox_js_glue.py).
    assert "glue: 8 of 9 exports answer a plain value without a promise turn" in done.stdout
    digest = re.search(r"ready \(sha256 ([0-9a-f]{64})\)", done.stdout)
    assert digest is not None
    wasm = out / "greeter.wasm"
    assert hashlib.sha256(wasm.read_bytes()).hexdigest() == digest.group(1)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and "building" not in again.stdout  # cached
    assert digest.group(1) in again.stdout
    broken = tmp_path / "broken" / "broken.js"
    broken.parent.mkdir()
    broken.write_text("export class Broken extends {\n")
    failed = subprocess.run(
        [sys.executable, "-m", "radon_actors._cli", "build", "--js", str(broken)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "building the component of" in failed.stderr and "SyntaxError" in failed.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "radon_actors._cli", "build", "--js", str(tmp_path / "no.js")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "is not a JavaScript module" in missing.stderr


async def test_a_js_handler_awaiting_anything_but_radon_operations_crashes_only_itself(
    js_component: Path,
) -> None:
    async with open_system() as system:
        atom = await system.spawn_component(js_component, "Polyglot", 2)
        native = await system.spawn(Counter, 0)
        with pytest.raises(ForeignError, match="one at a time"):
            await atom.ask("both", native)  # two asks at once: refused, inside
        for handler in ("stall", "wait"):
            with pytest.raises(SandboxCrashed):
                await atom.ask(handler)
            await trio.testing.wait_all_tasks_blocked()
            assert await atom.ask("incr", 1) == 3  # restarted; the host carries on


async def test_the_rest_of_the_js_api(
    js_component: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_system() as system:
        atom = await system.spawn_component(js_component, "Polyglot", 1)
        native = await system.spawn(Polyglot, 5)
        assert await atom.ask("keywords", native, 7) == 12  # kw() reaches a Python keyword
        assert await atom.ask("patient", native, 5.0) == [True, True]  # askWithin timed out
        assert await atom.ask("named", "kid", 3) == ["kid", 3]
        assert system.lookup("kid").name == "kid"
        assert await atom.ask("shout", "hey") == "HEY"
        kinds = await atom.ask("kinds")
        assert kinds["map"] == {1: "one", "two": 2} and kinds["set"] == {"a"}
        assert kinds["bytes"] == b"\x00\xff" and kinds["big"] == 2**64
        assert kinds["nan"] != kinds["nan"] and kinds["unset"] is None
        assert await atom.ask("today") == "1970-01-01T00:00:00.000Z"
        with pytest.raises(ForeignError, match="Hidden has no portable form"):
            await atom.ask("hidden")
        async with trio.open_nursery() as nursery:
            held: list[Any] = []

            async def ask_held() -> None:
                held.append(await atom.ask("hold", "first"))

            nursery.start_soon(ask_held)
            await trio.testing.wait_all_tasks_blocked()
            assert held == []  # stashed: its asker waits
            await atom.ask("release")
        assert held == ["first"]
        assert await atom.ask("halt") == "stopping"
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(AtomStopped):
            await atom.ask("get")


class Watcher(Atom):
    """A native Python atom that watches another (death watch)."""

    def __init__(self) -> None:
        self.downs: list[tuple[str, bool]] = []

    @handler
    def watch_it(self, target: Any) -> None:
        self.watch(target, Watcher.down)

    @handler
    def down(self, down: Down) -> None:
        reason = down.reason
        self.downs.append((str(reason) if reason is not None else "", down.stopped))

    @handler
    def seen(self) -> list[tuple[str, bool]]:
        return self.downs


async def test_a_python_atom_watches_it(spawn_twin: Spawn) -> None:
    async with open_system() as system:
        atom = await spawn_twin(system, 1)
        watcher = await system.spawn(Watcher)
        await watcher.ask(Watcher.watch_it, atom)
        with pytest.raises(ForeignError):
            await atom.ask("fail", "watched")
        await trio.testing.wait_all_tasks_blocked()
        assert await watcher.ask(Watcher.seen) == [("watched", False)]  # crashed, restarted
        await system.stop(atom)
        await trio.testing.wait_all_tasks_blocked()
        assert await watcher.ask(Watcher.seen) == [("watched", False), ("", True)]


class Backend(Atom):
    """What the documented rate limiter guards (a native Python atom)."""

    @handler
    def handle(self, request: str) -> dict[str, str]:
        return {"served": request}


DOC = Path(__file__).resolve().parents[2] / "docs" / "polyglot.md"


async def test_the_documented_rate_limiter_builds_and_runs(
    tmp_path: Path, js_component: Path, autojump_clock: trio.testing.MockClock
) -> None:
    source = re.search(r"```js\n(// rate_limiter\.js\n.*?)```", DOC.read_text(), re.DOTALL)
    assert source is not None
    (tmp_path / "rate_limiter.js").write_text(source.group(1))
    built = await trio.to_thread.run_sync(build_js, tmp_path / "rate_limiter.js")
    async with open_system() as system:
        limiter = await system.spawn_component(built.wasm, "RateLimiter", 2)
        assert await limiter.ask("allow", "ann") == 1
        assert await limiter.ask("allow", client="ann") == 0
        with pytest.raises(Rejection, match="ann is over 2/min"):
            await limiter.ask("allow", "ann")
        backend = await system.spawn(Backend)
        assert await limiter.ask("check", "bob", backend, "GET /") == {"served": "GET /"}
        await trio.sleep(61)  # its sendEvery(60, "reset") ran
        assert await limiter.ask("allow", "ann") == 1
