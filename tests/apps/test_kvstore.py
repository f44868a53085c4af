"""The kvstore case study: RESP protocol, commands, replication, transactions."""

from __future__ import annotations

import random
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import trio
import trio.testing
from cluster_helpers import kill_workers

from examples.kvstore import (
    Error,
    RespParser,
    Ring,
    Simple,
    Store,
    deployment,
    encode,
    open_store,
    serve,
)
from radon_actors import System, open_system
from radon_actors.testing import node_of

redis = pytest.importorskip("redis")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# protocol: the parser and encoder (tests/apps/test_kvstore_resp.py has the rest) --
def test_parser_handles_pipelined_partial_and_inline_commands() -> None:
    p = RespParser()
    wire = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nxy\r\nPING\r\n"
    for i in range(len(wire)):  # byte by byte: nothing is parsed before it is complete
        p.feed(wire[i : i + 1])
        if i < 19:
            assert p.commands() == []
        else:
            break
    p.feed(wire[20:])
    assert p.commands() == [[b"GET", b"a"], [b"SET", b"b", b"xy"], [b"PING"]]


def test_encoder_writes_resp2() -> None:
    out = bytearray()
    encode([Simple("OK"), Error("ERR x"), b"v", None, 7, [b"a"]], out)
    assert bytes(out) == b"*6\r\n+OK\r\n-ERR x\r\n$1\r\nv\r\n$-1\r\n:7\r\n*1\r\n$1\r\na\r\n"


def test_ring_spreads_keys_and_is_stable() -> None:
    ring = Ring(8)
    counts = [0] * 8
    for i in range(8000):
        counts[ring.shard_of(f"key:{i}".encode())] += 1
    assert min(counts) > 500  # roughly even
    assert Ring(8).shard_of(b"user:42") == ring.shard_of(b"user:42")


# a served store -----------------------------------------------------------------
class Served:
    def __init__(self, system: System, store: Store, port: int, clock: FakeClock) -> None:
        self.system, self.store, self.port, self.clock = system, store, port, clock

    def client(self) -> Any:
        return redis.Redis(port=self.port, socket_timeout=30, protocol=2)

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        def call() -> Any:
            with self.client() as client:
                return fn(client)

        return await trio.to_thread.run_sync(call)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    clock = FakeClock()
    async with (
        open_system() as system,
        open_store(system, shards=4, replicas=2, coordinators=2, clock=clock) as store,
        trio.open_nursery() as nursery,
    ):
        port = await nursery.start(serve, store, "127.0.0.1", 0)
        yield Served(system, store, port, clock)
        nursery.cancel_scope.cancel()


@pytest.fixture(params=["local", "hosts", "sandbox"])
async def deployed(request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """The store served over RESP in each deployment (real clock)."""
    async with open_system() as system:
        try:
            hosts = []
            if request.param == "hosts":
                hosts = [await system.start_host("w1"), await system.start_host("w2")]
            options = deployment(hosts, sandbox=request.param == "sandbox")
            async with (
                open_store(system, shards=3, replicas=2, spawn_options=options) as store,
                trio.open_nursery() as nursery,
            ):
                port = await nursery.start(serve, store, "127.0.0.1", 0)
                yield Served(system, store, port, FakeClock())
                nursery.cancel_scope.cancel()
        finally:
            kill_workers(system)


async def test_redis_py_with_its_defaults_speaks_resp3(served: Served) -> None:
    """redis-py 8 opens with ``HELLO 3``: the store answers in RESP3."""

    def scenario(r: Any) -> list[Any]:
        r.set("a", "1")
        return [
            r.get("a"),
            r.get("missing"),
            r.incr("a"),
            r.mget("a", "missing"),
            r.execute_command("HELLO", "3")[b"proto"],
            r.ping(),
        ]

    def call() -> list[Any]:
        with redis.Redis(port=served.port, socket_timeout=30) as client:  # no protocol=
            return scenario(client)

    got = await trio.to_thread.run_sync(call)
    assert got == [b"1", None, 2, [b"2", None], 3, True]


async def test_string_commands_over_resp(deployed: Served) -> None:
    served = deployed

    def scenario(r: Any) -> list[Any]:
        return [
            r.ping(),
            r.set("a", "1"),
            r.get("a"),
            r.incr("a"),
            r.incrby("a", 10),
            r.decr("a"),
            r.get("missing"),
            r.set("a", "x", nx=True),
            r.set("fresh", "y", xx=True),
            r.set("fresh", "y", nx=True),
            r.exists("a", "fresh", "missing"),
            r.delete("a", "fresh", "missing"),
            r.exists("a"),
            r.mset({"k1": "v1", "k2": "v2", "k3": "v3"}),
            r.mget("k1", "nope", "k3"),
            r.echo("hi"),
        ]

    assert await served.run(scenario) == [
        True, True, b"1", 2, 12, 11, None, None, None, True, 2, 2, 0, True,
        [b"v1", None, b"v3"], b"hi",
    ]  # fmt: skip


async def test_expiry_follows_the_store_clock(served: Served) -> None:
    assert await served.run(lambda r: r.set("s", "v", ex=10)) is True
    assert await served.run(lambda r: r.set("p", "v", px=1500)) is True
    assert await served.run(lambda r: [r.ttl("s"), r.ttl("p"), r.ttl("nope")]) == [10, 2, -2]
    served.clock.now += 2
    assert await served.run(lambda r: [r.get("s"), r.get("p"), r.ttl("s")]) == [b"v", None, 8]
    assert await served.run(lambda r: [r.expire("s", 100), r.ttl("s"), r.expire("nope", 5)]) == [
        True,
        100,
        False,
    ]
    served.clock.now += 100
    assert await served.run(lambda r: r.exists("s")) == 0


async def test_errors_use_redis_format(served: Served) -> None:
    def scenario(r: Any) -> list[str]:
        errors = []
        for args in (
            ("FOO", "bar"),
            ("GET",),
            ("SET", "a", "b", "EX", "0"),
            ("SET", "a", "b", "XX", "NX"),
        ):
            try:
                r.execute_command(*args)
            except redis.ResponseError as exc:
                errors.append(str(exc))
        r.set("n", "abc")
        try:
            r.incr("n")
        except redis.ResponseError as exc:
            errors.append(str(exc))
        return errors

    assert await served.run(scenario) == [
        "unknown command 'FOO', with args beginning with: 'bar' ",
        "wrong number of arguments for 'get' command",
        "invalid expire time in 'set' command",
        "syntax error",
        "value is not an integer or out of range",
    ]


async def test_malformed_input_gets_an_error_and_the_server_carries_on(served: Served) -> None:
    def scenario() -> bytes:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
            s.sendall(b"*1\r\n$abc\r\n")
            data = b""
            while chunk := s.recv(1024):
                data += chunk
            return data

    reply = await trio.to_thread.run_sync(scenario)
    assert reply.startswith(b"-ERR Protocol error")
    assert await served.run(lambda r: r.ping()) is True


async def test_multi_exec_is_atomic_and_reports_each_reply(deployed: Served) -> None:
    served = deployed

    def scenario(r: Any) -> Any:
        r.mset({"acct:a": 100, "acct:b": 0})
        pipe = r.pipeline(transaction=True)
        pipe.decrby("acct:a", 30).incrby("acct:b", 30).get("acct:a").get("acct:b")
        return pipe.execute()

    assert await served.run(scenario) == [70, 30, b"70", b"30"]


async def test_exec_after_a_queueing_error_is_aborted(served: Served) -> None:
    def scenario() -> bytes:
        with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
            s.sendall(b"MULTI\r\nSET k v\r\nNOSUCH\r\nEXEC\r\nGET k\r\nQUIT\r\n")
            data = b""
            while chunk := s.recv(1024):
                data += chunk
            return data

    reply = await trio.to_thread.run_sync(scenario)
    assert reply.startswith(b"+OK\r\n+QUEUED\r\n-ERR unknown command 'NOSUCH'")
    assert b"-EXECABORT" in reply
    assert reply.endswith(b"$-1\r\n+OK\r\n")  # k was never set


async def test_scan_returns_every_key_present_throughout(served: Served) -> None:
    def scenario(r: Any) -> Any:
        r.mset({f"key:{i}": i for i in range(300)})
        seen: list[bytes] = []
        cursor = 0
        steps = 0
        while True:
            cursor, keys = r.scan(cursor, count=7)
            seen += keys
            steps += 1
            # changes between calls do not hide keys present all along
            r.set(f"new:{steps}", 1)
            r.delete(f"new:{steps - 1}")
            if cursor == 0:
                break
        matched = set(r.scan_iter(match="key:1?", count=5))
        strings = len(list(r.scan_iter(_type="string", count=50)))
        lists = list(r.scan_iter(_type="list", count=50))
        return seen, steps, matched, strings, lists

    seen, steps, matched, strings, lists = await served.run(scenario)
    assert {f"key:{i}".encode() for i in range(300)} <= set(seen)
    assert steps > 10  # it really went step by step
    assert matched == {f"key:1{i}".encode() for i in range(10)}
    assert strings == 301 and lists == []  # 300 keys and the last new:N


async def test_watch_gives_optimistic_transactions(served: Served) -> None:
    """redis-py's ``transaction()`` helper (WATCH, MULTI, EXEC, retry on a
    conflict) from four clients at once: no increment is lost."""

    def increments(n: int) -> None:
        with served.client() as r:
            for _ in range(n):

                def add(pipe: Any) -> None:
                    value = int(pipe.get("counter") or 0)
                    pipe.multi()
                    pipe.set("counter", value + 1)

                r.transaction(add, "counter")

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(trio.to_thread.run_sync, increments, 25)
    assert await served.run(lambda r: r.get("counter")) == b"100"


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-tools not installed")
async def test_redis_benchmark_finds_the_config_it_asks_for(served: Served) -> None:
    done = await trio.run_process(
        ["redis-benchmark", "-p", str(served.port), "-t", "ping", "-n", "50", "-q"],
        capture_stdout=True,
        capture_stderr=True,
    )
    output = (done.stdout + done.stderr).decode()
    assert "Could not fetch server CONFIG" not in output
    assert "PING" in output


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
async def test_redis_cli_is_a_client(served: Served) -> None:
    async def cli(*args: str) -> str:
        done = await trio.run_process(
            ["redis-cli", "-p", str(served.port), *args], capture_stdout=True
        )
        return done.stdout.decode().strip()

    assert await cli("SET", "greeting", "hello") == "OK"
    assert await cli("GET", "greeting") == "hello"
    assert await cli("INCRBY", "counter", "5") == "5"
    assert await cli("PING") == "PONG"


# replication and transactions ----------------------------------------------------
async def test_acknowledged_writes_survive_losing_a_primary() -> None:
    async with open_system() as system, open_store(system, shards=2, replicas=3) as store:
        for i in range(200):
            assert await store.execute([b"SET", b"k%d" % i, b"v%d" % i]) == Simple("OK")
        for shard in range(2):
            await system.stop(store.groups[shard][0])  # the primary dies
        for i in range(200):
            assert await store.execute([b"GET", b"k%d" % i]) == b"v%d" % i
        table = await store.cluster.ask("table")
        assert all(len(group) == 3 for group in table)  # replacements caught up
        await system.stop(table[0][0])
        assert await store.execute([b"GET", b"k1"]) in (b"v1",)


async def test_bank_transfers_keep_the_total_invariant_while_replicas_die() -> None:
    accounts = 20
    async with (
        open_system() as system,
        open_store(system, shards=4, replicas=2, coordinators=3) as store,
    ):
        for a in range(accounts):
            await store.execute([b"SET", b"acct:%d" % a, b"1000"])
        rng = random.Random(7)
        killed = trio.Event()
        halfway = trio.Event()
        done = 0

        async def transfers(n: int) -> None:
            nonlocal done
            for _ in range(n):
                src, dst = rng.sample(range(accounts), 2)
                amount = str(rng.randint(1, 50)).encode()
                replies = await store.transaction(
                    [[b"DECRBY", b"acct:%d" % src, amount], [b"INCRBY", b"acct:%d" % dst, amount]]
                )
                assert not isinstance(replies, Error), replies
                done += 1
                if done == 80:
                    halfway.set()

        victims = [store.groups[0][0], store.groups[2][0]]

        async def killer() -> None:
            await halfway.wait()
            for victim in victims:  # both primaries die while transfers run
                await system.stop(victim)
            killed.set()

        async with trio.open_nursery() as nursery:
            for _ in range(6):
                nursery.start_soon(transfers, 40)
            nursery.start_soon(killer)
        assert killed.is_set()
        assert done == 240
        table = await store.cluster.ask("table")
        assert not set(victims) & {ref for group in table for ref in group}
        total = 0
        for a in range(accounts):
            value = await store.execute([b"GET", b"acct:%d" % a])
            assert isinstance(value, bytes)
            total += int(value)
        assert total == accounts * 1000


async def test_a_lost_backup_is_replaced_and_caught_up() -> None:
    async with open_system() as system, open_store(system, shards=1, replicas=2) as store:
        await store.execute([b"SET", b"before", b"1"])
        backup = store.groups[0][1]
        await system.stop(backup)
        # The next write finds the backup gone: acknowledged by the primary alone,
        # which reports the loss; the cluster starts and syncs a replacement.
        assert await store.execute([b"SET", b"during", b"2"]) == Simple("OK")
        await trio.testing.wait_all_tasks_blocked()
        (group,) = await store.cluster.ask("table")
        assert len(group) == 2
        assert backup not in group
        replacement = group[1]
        snapshot = await replacement.ask("snapshot")
        assert {k: v[0] for k, v in snapshot.items()} == {b"before": b"1", b"during": b"2"}


# deployments ------------------------------------------------------------------


async def _same_answers(store: Store) -> None:
    assert await store.execute([b"SET", b"a", b"1"]) == Simple("OK")
    assert await store.execute([b"INCRBY", b"a", b"41"]) == 42
    assert await store.mset([b"x", b"1", b"y", b"2"]) == Simple("OK")
    assert await store.mget([b"x", b"y", b"nope"]) == [b"1", b"2", None]
    assert await store.transaction([[b"DECR", b"x"], [b"INCR", b"y"], [b"GET", b"a"]]) == [
        0,
        3,
        b"42",
    ]


async def test_shards_on_worker_hosts_answer_the_same() -> None:
    async with open_system() as system:
        try:
            hosts = [await system.start_host("w1"), await system.start_host("w2")]
            async with open_store(
                system, shards=3, replicas=2, spawn_options=deployment(hosts)
            ) as store:
                await _same_answers(store)
                where = {ref.id for group in store.groups for ref in group}
                assert len(where) == 6
        finally:
            kill_workers(system)


async def test_sandboxed_shards_answer_the_same() -> None:
    async with (
        open_system() as system,
        open_store(system, shards=2, replicas=2, spawn_options=deployment(sandbox=True)) as store,
    ):
        await _same_answers(store)


async def test_bank_total_and_acknowledged_writes_survive_a_killed_host() -> None:
    import os
    import signal

    accounts = 12
    async with open_system() as system:
        try:
            hosts = [await system.start_host("w1"), await system.start_host("w2")]
            async with open_store(
                system, shards=3, replicas=2, coordinators=2, spawn_options=deployment(hosts)
            ) as store:
                for a in range(accounts):
                    await store.execute([b"SET", b"acct:%d" % a, b"100"])
                node = node_of(system)
                victim = node.processes[node.peer_by_name("w1").node_id]
                rng = random.Random(11)
                halfway = trio.Event()
                acked: list[bytes] = []
                done = 0

                async def transfers(n: int) -> None:
                    nonlocal done
                    for _ in range(n):
                        src, dst = rng.sample(range(accounts), 2)
                        replies = await store.transaction(
                            [
                                [b"DECRBY", b"acct:%d" % src, b"7"],
                                [b"INCRBY", b"acct:%d" % dst, b"7"],
                            ]
                        )
                        assert not isinstance(replies, Error), replies
                        done += 1
                        if done == 30:
                            halfway.set()

                killed = trio.Event()
                acked_after_kill = 0

                async def writer() -> None:
                    nonlocal acked_after_kill
                    i = 0
                    while not killed.is_set() or acked_after_kill < 50:
                        key = b"w:%d" % i
                        i += 1
                        reply = await store.execute([b"SET", key, b"v"])
                        if reply == Simple("OK"):
                            acked.append(key)  # acknowledged: must survive
                            acked_after_kill += killed.is_set()

                async def killer() -> None:
                    await halfway.wait()
                    os.kill(victim.pid, signal.SIGKILL)
                    killed.set()

                async with trio.open_nursery() as nursery:
                    for _ in range(4):
                        nursery.start_soon(transfers, 25)
                    nursery.start_soon(writer)
                    nursery.start_soon(killer)
                assert done == 100
                assert victim.returncode is not None or victim.poll() is not None
                total = 0
                for a in range(accounts):
                    value = await store.execute([b"GET", b"acct:%d" % a])
                    assert isinstance(value, bytes)
                    total += int(value)
                assert total == accounts * 100
                for key in acked:
                    assert await store.execute([b"GET", key]) == b"v"
                # Every shard is back to two live replicas, none on the dead host.
                # A heal may have tried the dead host before it was known down
                # (kv.backup_not_replaced); the next one, every heal_interval,
                # replaces it: run that one now rather than wait for its timer.
                await store.cluster.ask("heal")
                for group in await store.cluster.ask("table"):
                    assert len(group) == 2
                    for replica in group:
                        assert isinstance(await replica.ask("snapshot"), dict)
        finally:
            kill_workers(system)


async def test_a_replica_that_comes_back_empty_is_fenced_off(system: System) -> None:
    from examples.kvstore._shard import NotMember, Shard

    fresh = await system.spawn(Shard, 0, FakeClock())  # as a restarted incarnation is
    with pytest.raises(NotMember, match="not its primary"):
        await fresh.ask(Shard.read, b"GET", [b"k"])
    with pytest.raises(NotMember, match="not a synced member"):
        await fresh.ask(Shard.apply, {b"k": (b"v", None)}, "w1", Simple("OK"))
    with pytest.raises(NotMember):
        await fresh.ask(Shard.promote, [], fresh)
    await fresh.ask(Shard.load, {b"k": (b"v", None)}, {}, {})  # caught up: a member now
    await fresh.ask(Shard.promote, [], fresh)
    assert await fresh.ask(Shard.read, b"GET", [b"k"]) == b"v"


async def test_execute_now_answers_an_idle_primary_and_leaves_the_rest_for_later() -> None:
    from examples.kvstore._shard import Shard
    from examples.kvstore._store import Later

    async with open_system() as system, open_store(system, shards=2, replicas=2) as store:
        assert store.execute_now([b"SET", b"a", b"1"]) == Simple("OK")
        assert store.execute_now([b"GET", b"a"]) == b"1"
        assert isinstance(store.execute_now([b"NOPE"]), Error)
        assert isinstance(store.execute_now([b"GET"]), Error)  # arity
        # Keys on two shards: a transaction, which waits.
        other = next(k for k in (b"k%d" % i for i in range(100)) if store.ring.shard_of(k) != 0)
        first = next(k for k in (b"k%d" % i for i in range(100)) if store.ring.shard_of(k) == 0)
        assert isinstance(store.execute_now([b"MGET", first, other]), Later)
        # A primary with a message queued: answering now would overtake it.
        primary = store.groups[store.ring.shard_of(b"a")][0]
        primary.tell(Shard.read, b"GET", [b"a"])
        later = store.execute_now([b"INCR", b"a"])
        assert isinstance(later, Later) and later.wid is None  # nothing ran
        assert await store.execute([b"GET", b"a"]) == b"1"
        assert await store.execute([b"INCR", b"a"], later.wid) == 2
        # A write sent again with its id is answered from its record, not applied twice.
        assert await store.execute([b"INCR", b"c"], "retry:1") == 1
        assert await store.execute([b"INCR", b"c"], "retry:1") == 1
        assert store.execute_now([b"GET", b"c"]) == b"1"
        # An idle backup applied each change set in the primary's turn: nothing
        # is queued for it, and it has every key.
        backup = store.groups[store.ring.shard_of(b"c")][1]
        assert backup.ask_nowait(Shard.snapshot)[b"c"][0] == b"1"


async def test_watch_versions_stay_bounded_when_every_key_lives(
    system: System, monkeypatch: pytest.MonkeyPatch
) -> None:
    from examples.kvstore import _shard
    from examples.kvstore._shard import Shard

    monkeypatch.setattr(_shard, "MAX_VERSIONS", 8)
    shard = await system.spawn(Shard, 0, FakeClock())
    await shard.ask(Shard.load, {}, {}, {})
    await shard.ask(Shard.promote, [], shard)
    for i in range(100):  # 100 live keys, more than the bound
        assert shard.ask_nowait(Shard.write_colocated, f"w{i}", b"SET", [b"k%d" % i, b"v"])
    instance = shard._ep.instance  # type: ignore[attr-defined]
    # Not one entry per live key, rebuilt on every write: bounded.
    assert len(instance.versions) <= 8
    tokens = await shard.ask(Shard.watch_keys, [b"k1", b"k99"])
    assert await shard.ask(Shard.write_colocated, "w100", b"SET", [b"k1", b"w"]) == Simple("OK")
    assert (await shard.ask(Shard.watch_keys, [b"k1"]))[b"k1"] != tokens[b"k1"]
