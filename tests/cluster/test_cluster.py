"""Clusters: separate systems that share one directory of on-demand atoms
(docs/cluster.md). The other members are real ``radon member`` processes."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from cluster_helpers import first_line, redis_server
from durable_atoms import TICKS, Reminded, ticks_reached
from hypothesis import given
from hypothesis import strategies as st

from radon_actors import (
    Cluster,
    HostDown,
    SpawnError,
    SQLiteStore,
    StateStore,
    open_system,
)
from radon_actors.cluster._member import _owner_in
from radon_actors.cluster._membership import parse_member
from radon_actors.durable import store_from_url
from radon_actors.testing import node_of
from tests.atoms.cluster_atoms import Account, Brief, Driver, Faulty

SECRET = b"cluster-test-secret-0123456789ab"
ROOT = Path(__file__).resolve().parents[2]
# This process's import path without this checkout (the installed packages).
ELSEWHERE = [p for p in sys.path[1:] if p and os.path.realpath(p) != str(ROOT)]


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture(params=["sqlite", "redis"])
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of the store the cluster's members share."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    async with redis_server() as port:
        yield f"redis://127.0.0.1:{port}/0"


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[StateStore]:
    store = store_from_url(url)
    try:
        yield store
    finally:
        await store.aclose()


@asynccontextmanager
async def member(
    store: str,
    secret_file: Path,
    name: str,
    *args: str,
    pythonpath: list[str] | None = None,
    cwd: Path = ROOT,
    stderr: Any = None,
) -> AsyncIterator[tuple[trio.Process, str]]:
    """A ``radon member`` process of the cluster "t" on the store at the URL
    ``store``: yields it and
    the address it listens at; killed and reaped on the way out, whatever happens.
    Its PYTHONPATH is ``pythonpath`` (default: this checkout, then this process's)."""
    path = [str(ROOT), *sys.path[1:]] if pythonpath is None else pythonpath
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "radon_actors._cli",
            "member",
            "--cluster",
            "t",
            "--secret-file",
            str(secret_file),
            "--state-store",
            store,
            "--name",
            name,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        cwd=cwd,
    )
    try:
        line = await first_line(proc, "radon member")
        ready, _, address = line.partition(" ")
        assert ready == "READY"
        yield proc, address
    finally:
        if proc.returncode is None:
            proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()


def joined(store: str, lease: float = 1.0) -> Any:
    return open_system(state_store=store_from_url(store), cluster=Cluster("t", SECRET, lease=lease))


async def owner_of(store: StateStore, atom_id: str) -> str | None:
    stored = await store.read("$radon", f"cluster:t:owner:{atom_id}", "$owner")
    if stored is None or stored[0] is None:
        return None
    member: str = json.loads(stored[0])["member"]
    return member


async def test_a_member_owns_the_keys_it_activates_until_they_are_collected(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    async with open_system(state_store=store, cluster=Cluster("t", SECRET)) as system:
        ref = system.get(Brief, "k1")
        assert ref.id.startswith("cluster-t.")
        assert await ref.ask(Brief.deposit, 5) == (5, 1, os.getpid())
        assert await owner_of(store, ref.id) == system.prefix
        ep: Any = ref._ep
        cell = ep.cell
        await cell.stopped.wait()  # collected (collect_after=0.1)
        if isinstance(ep.claim, trio.Event):
            await ep.claim.wait()  # the release of its record
        assert await owner_of(store, ref.id) is None
        # The next message activates it again, from its saved state.
        assert await ref.ask(Brief.deposit, 1) == (6, 1, os.getpid())
        assert await owner_of(store, ref.id) == system.prefix


async def test_a_key_whose_activation_fails_is_given_up(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    async with open_system(state_store=store, cluster=Cluster("t", SECRET)) as system:
        ref = system.get(Faulty, "k")
        with pytest.raises(SpawnError, match="no start"):
            await ref.ask(Faulty.where)
        ep: Any = ref._ep
        if isinstance(ep.claim, trio.Event):
            await ep.claim.wait()
        assert await owner_of(store, ref.id) is None


async def test_every_member_reaches_the_one_activation_of_a_key(
    shared: str, secret_file: Path
) -> None:
    path = shared
    async with member(path, secret_file, "m1") as (proc, address), joined(path) as system:
        await system.connect_host(address)
        driver = await system.spawn(Driver, host="m1")
        # Activated in m1 by its first message, sent from there ...
        assert await driver.ask(Driver.deposit, "alice", 10) == (10, 1, proc.pid)
        # ... and this member's messages go there too.
        ref = system.get(Account, "alice")
        assert await ref.ask(Account.deposit, 5) == (15, 2, proc.pid)
        # A key this member activated first stays here, whoever sends.
        mine = system.get(Account, "bob")
        assert await mine.ask(Account.deposit, 1) == (1, 1, os.getpid())
        assert await driver.ask(Driver.deposit, "bob", 2) == (3, 2, os.getpid())


async def test_members_racing_for_a_key_end_with_one_activation(
    shared: str, secret_file: Path
) -> None:
    path = shared
    async with (
        member(path, secret_file, "m1") as (_, a1),
        member(path, secret_file, "m2") as (_, a2),
        joined(path) as system,
    ):
        await system.connect_host(a1)
        await system.connect_host(a2)
        drivers = [
            await system.spawn(Driver, host="m1"),
            await system.spawn(Driver, host="m2"),
        ]
        results: list[tuple[int, int, int]] = []

        async def deposit(i: int) -> None:
            if i % 3 == 2:
                results.append(await system.get(Account, "race").ask(Account.deposit, 1))
            else:
                results.append(await drivers[i % 3].ask(Driver.deposit, "race", 1))

        async with trio.open_nursery() as nursery:
            for i in range(30):
                nursery.start_soon(deposit, i)
        assert len({pid for _, _, pid in results}) == 1  # one activation, one process
        assert sorted(balance for balance, _, _ in results) == list(range(1, 31))
        assert sorted(turns for _, turns, _ in results) == list(range(1, 31))


async def ask_until_answered(ref: Any, *args: Any) -> Any:
    """Ask until an answer comes: an ask sent to a member that was just killed
    fails with HostDown (its outcome unknown), as for any host."""
    while True:
        try:
            return await ref.ask(*args)
        except (HostDown, SpawnError):
            await trio.lowlevel.checkpoint()


async def active_at(system: Any, address: str, proc: trio.Process, key: str, amount: int) -> Any:
    """The Ref of the Account ``key``, activated (with ``amount``) at the member
    ``proc`` listening at ``address``, as this member sees it."""
    await system.connect_host(address)
    driver = await system.spawn(Driver, host="m1")
    assert await driver.ask(Driver.deposit, key, amount) == (amount, 1, proc.pid)
    ref = system.get(Account, key)
    assert await ref.ask(Account.where) == proc.pid
    return ref


async def test_the_keys_of_a_killed_member_are_taken_once_its_lease_runs_out(
    shared: str, secret_file: Path
) -> None:
    path = shared
    async with (
        member(path, secret_file, "m1", "--lease", "1") as (proc, address),
        joined(path) as system,
    ):
        ref = await active_at(system, address, proc, "carol", 7)
        proc.send_signal(signal.SIGKILL)
        with trio.fail_after(20):
            balance, turns, pid = await ask_until_answered(ref, Account.deposit, 1)
        # Active here now, with the state m1 saved.
        assert (balance, turns, pid) == (8, 1, os.getpid())
        async with opened(path) as store:
            assert await owner_of(store, ref.id) == system.prefix


async def test_a_member_that_leaves_hands_its_keys_over_at_once(
    shared: str, secret_file: Path
) -> None:
    path = shared
    # A lease far longer than the test's bound: only a clean leave lets the key
    # move within it.
    async with (
        member(path, secret_file, "m1", "--lease", "600") as (proc, address),
        joined(path, lease=600) as system,
    ):
        ref = await active_at(system, address, proc, "dave", 3)
        proc.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            assert await proc.wait() == 0
            assert await ask_until_answered(ref, Account.deposit, 1) == (4, 1, os.getpid())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "no dots."}, "cluster's name"),
        ({"secret": b"short"}, "at least 16 bytes"),
        ({"lease": 0}, "lease"),
        ({"listen": "localhost"}, "host:port"),
    ],
)
def test_a_bad_cluster_is_refused_with_what_to_do(options: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"name": "t", "secret": SECRET, **options}
    with pytest.raises(ValueError, match=message):
        Cluster(**fields)


class FlakyStore(SQLiteStore):
    """An SQLite store whose writes of membership records fail while ``down``."""

    down = False

    async def write(
        self, atom_type: str, key: str, name: str, document: str, etag: str | None
    ) -> str:
        if self.down and name == "$member":
            raise OSError("the store is unreachable")
        return await super().write(atom_type, key, name, document, etag)


async def test_a_member_whose_lease_ran_out_stops_its_activations_and_joins_again(
    tmp_path: Path,
) -> None:
    store = FlakyStore(tmp_path / "state.db")
    cluster = Cluster("t", SECRET, lease=0.3)
    async with open_system(state_store=store, cluster=cluster) as system:
        ref = system.get(Account, "erin")
        assert await ref.ask(Account.deposit, 2) == (2, 1, os.getpid())
        cell = ref._ep.cell  # type: ignore[attr-defined]
        store.down = True  # renewals fail until the lease runs out
        await cell.stopped.wait()  # then the member gives up what it runs
        store.down = False
        # It joins again, and the key activates anew from its saved state.
        assert await ref.ask(Account.deposit, 1) == (3, 1, os.getpid())


def radon_member(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "radon_actors._cli", "member", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cluster", "a.b"], "cluster's name"),
        (["--cluster", "t", "--lease", "0"], "lease"),
        (["--cluster", "t", "--listen", "0.0.0.0:0"], "refusing to listen on 0.0.0.0"),
        (["--cluster", "t", "--state-store", "nosuch://x"], "unknown state store URL"),
        (["--cluster", "t", "--advertise", "a b"], "host or host:port"),
        (["--cluster", "t", "--tls-cert", "/no/such.pem"], "cannot load the TLS certificate"),
        (["--cluster", "t", "--tls-ca", "/no/such.pem"], "cannot load --tls-ca"),
    ],
)
def test_radon_member_refuses_bad_options_with_what_to_do(
    tmp_path: Path, secret_file: Path, args: list[str], message: str
) -> None:
    base = {"--secret-file": str(secret_file), "--state-store": f"sqlite:///{tmp_path}/s.db"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    done = radon_member(*argv, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr


def test_radon_member_refuses_a_secret_file_others_can_read(
    tmp_path: Path, secret_file: Path
) -> None:
    secret_file.chmod(0o644)
    done = radon_member(
        "--cluster", "t", "--secret-file", str(secret_file),
        "--state-store", f"sqlite:///{tmp_path}/s.db",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "open to group or others" in done.stderr


async def test_radon_member_imports_atoms_from_its_path_and_is_reached_where_it_advertises(
    shared: str, secret_file: Path, tmp_path: Path
) -> None:
    path = shared
    # Not importable from its PYTHONPATH or working directory: only --path
    # lets it run the Driver and Account atoms.
    async with (
        member(
            path, secret_file, "m1", "--path", str(ROOT), "--advertise", "localhost",
            pythonpath=ELSEWHERE, cwd=tmp_path,
        ) as (proc, address),
        joined(path) as system,
    ):  # fmt: skip
        assert address.startswith("localhost:")
        await system.connect_host(address)
        driver = await system.spawn(Driver, host="m1")
        assert await driver.ask(Driver.deposit, "frank", 1) == (1, 1, proc.pid)
        # Its membership names the address it advertised.
        async with opened(path) as store:
            owner = await owner_of(store, system.get(Account, "frank").id)
            stored = await store.read("$radon", f"cluster:t:member:{owner}", "$member")
        assert stored is not None and stored[0] is not None
        assert json.loads(stored[0])["address"] == address


async def test_radon_member_logs_at_the_level_asked_for(tmp_path: Path, secret_file: Path) -> None:
    path = f"sqlite:///{tmp_path / 'state.db'}"
    for level, logged in (("info", True), ("warning", False)):
        log = tmp_path / f"{level}.log"
        with log.open("wb") as sink:
            async with member(path, secret_file, "m1", "--log-level", level, stderr=sink) as (
                proc,
                _,
            ):
                proc.send_signal(signal.SIGTERM)
                assert await proc.wait() == 0
        assert ("cluster.joined" in log.read_text()) is logged


async def test_refs_of_cluster_keys_travel_and_worker_hosts_of_a_member_reach_them(
    tmp_path: Path, secret_file: Path
) -> None:
    path = f"sqlite:///{tmp_path / 'state.db'}"
    async with member(path, secret_file, "m1") as (m1, address), joined(path) as system:
        await system.connect_host(address)
        await system.start_host("w1")
        remote = await system.spawn(Driver, host="m1")
        worker = await system.spawn(Driver, host="w1")
        ref = system.get(Account, "gina")
        # A Ref sent to another member names the same atom there (whose
        # message, the first, activates it there) ...
        assert await remote.ask(Driver.deposit_to, ref, 2) == (2, 1, m1.pid)
        # ... and a worker host this member started reaches it too.
        assert await worker.ask(Driver.pid) not in (os.getpid(), m1.pid)
        assert await worker.ask(Driver.deposit, "gina", 3) == (5, 2, m1.pid)
        assert await ref.ask(Account.deposit, 1) == (6, 3, m1.pid)


@attrs.frozen
class Certificates:
    """A CA and a certificate for "localhost" it issued: as files (for
    ``radon member``) and as contexts (for this process)."""

    pem: Path
    key: Path
    ca: Path
    server: ssl.SSLContext
    client: ssl.SSLContext

    def options(self) -> tuple[str, ...]:
        """``radon member`` options to listen with TLS at the certificate's name."""
        return ("--tls-cert", str(self.pem), "--tls-key", str(self.key), "--advertise", "localhost")


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    pem, key, ca_pem = tmp_path / "m.pem", tmp_path / "m.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_pem))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Certificates(pem, key, ca_pem, server, client)


async def test_members_that_listen_with_tls_are_dialled_with_tls_and_checked_by_tls_ca(
    tmp_path: Path, secret_file: Path, certificates: Certificates
) -> None:
    """Members that also act as hosts (placed atoms) learn of each other from
    the system that placed them, and dial each other as hosts do."""
    server, client, ca_pem = certificates.server, certificates.client, certificates.ca
    path = f"sqlite:///{tmp_path / 'state.db'}"
    lease = ("--lease", "0.5")
    tls = certificates.options()
    cluster = Cluster("t", SECRET, advertise="localhost", lease=0.5, tls=server, tls_client=client)
    async with (
        member(path, secret_file, "m1", *lease, *tls) as (m1, a1),
        # m2 checks m1's certificate against the platform's CAs, m3 against --tls-ca.
        member(path, secret_file, "m2", *lease) as (_, a2),
        member(path, secret_file, "m3", *lease, "--tls-ca", str(ca_pem)) as (_, a3),
        open_system(state_store=store_from_url(path), cluster=cluster) as system,
    ):
        assert a1.startswith("localhost:")
        await system.connect_host(a1, ssl_context=client)
        driver = await system.spawn(Driver, host="m1")
        assert await driver.ask(Driver.deposit, "tls", 1) == (1, 1, m1.pid)
        for address in (a2, a3):
            await system.connect_host(address)
        refused = await system.spawn(Driver, host="m2")
        with (
            trio.fail_after(20),
            pytest.raises((SpawnError, HostDown), match=r"could not connect|cannot be reached"),
        ):
            await refused.ask(Driver.deposit, "tls", 1)
        checked = await system.spawn(Driver, host="m3")
        with trio.fail_after(20):
            assert await checked.ask(Driver.deposit, "tls", 1) == (2, 2, m1.pid)


async def test_a_member_dials_the_owner_of_a_key_with_tls_when_its_record_says_so(
    tmp_path: Path, secret_file: Path, certificates: Certificates
) -> None:
    """A member that never heard of a key's owner finds it in the store, and
    dials it with TLS, checked by ``tls_client`` (the platform's CAs by default)."""
    path = f"sqlite:///{tmp_path / 'state.db'}"
    async with member(path, secret_file, "m1", "--lease", "0.5", *certificates.options()) as (
        m1,
        _,
    ):
        atom_id = ""
        async with opened(path) as store:
            members = await store.scan("$member")
            (m1_id,) = [key.rpartition(":")[2] for _, key, doc, _ in members if '"m1"' in doc]
            # The key is m1's, as if m1 had activated it (m1 takes it when the
            # first message arrives, since the record names it).
            async with joined(path, lease=0.5) as system:
                atom_id = system.get(Account, "owned").id
            await store.write(
                "$radon",
                f"cluster:t:owner:{atom_id}",
                "$owner",
                json.dumps({"member": m1_id}),
                None,
            )
        untrusting = Cluster("t", SECRET, lease=0.5)  # checks against the platform's CAs
        async with open_system(state_store=store_from_url(path), cluster=untrusting) as system:
            with trio.fail_after(20), pytest.raises(SpawnError, match="cannot be reached"):
                await system.get(Account, "owned").ask(Account.deposit, 1)
        trusting = Cluster("t", SECRET, lease=0.5, tls_client=certificates.client)
        async with open_system(state_store=store_from_url(path), cluster=trusting) as system:
            with trio.fail_after(20):
                assert await system.get(Account, "owned").ask(Account.deposit, 1) == (
                    1,
                    1,
                    m1.pid,
                )


async def test_radon_member_listens_beyond_loopback_only_when_told_it_is_insecure(
    tmp_path: Path, secret_file: Path
) -> None:
    path = f"sqlite:///{tmp_path / 'state.db'}"
    log = tmp_path / "member.log"
    with log.open("wb") as sink:
        async with member(
            path, secret_file, "m1", "--listen", "0.0.0.0:0", "--advertise", "127.0.0.1",
            "--insecure", stderr=sink,
        ) as (proc, address):  # fmt: skip
            assert address.startswith("127.0.0.1:")
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
    assert "cluster.insecure_listen" in log.read_text()


async def test_a_member_cut_off_from_a_live_one_dials_it_again(
    tmp_path: Path, secret_file: Path
) -> None:
    """A broken connection is not a dead member: while the other still renews
    its membership (a 600 s lease here, so nothing is taken over), this member
    dials it again, and its keys stay where they are."""
    path = f"sqlite:///{tmp_path / 'state.db'}"
    async with (
        member(path, secret_file, "m1", "--lease", "600") as (m1, address),
        joined(path, lease=600) as system,
    ):
        ref = await active_at(system, address, m1, "hana", 1)
        node = node_of(system)
        assert node is not None
        peer = node.peer_by_name("m1")
        assert peer.stream is not None
        await trio.aclose_forcefully(peer.stream)  # the connection breaks, both ends see it
        with trio.fail_after(20):
            assert await ask_until_answered(ref, Account.deposit, 1) == (2, 2, m1.pid)
        assert node.peer_by_name("m1") is not peer  # a new connection, a new peer


async def test_a_reminder_served_by_another_member_reaches_the_keys_one_activation(
    tmp_path: Path, secret_file: Path
) -> None:
    """m1 joins first and serves the store's reminders; the key is active in
    this member, which sets the reminder: m1 delivers it through the cluster's
    directory, to the activation here."""
    TICKS.clear()
    path = f"sqlite:///{tmp_path / 'state.db'}"
    async with member(path, secret_file, "m1") as _, joined(path) as system:
        durability: Any = system.durability()
        assert not durability.reminders.holding  # m1 holds the reminders' lease
        ref = system.get(Reminded, "bell")
        await ref.ask(Reminded.schedule, 0.1)
        with trio.fail_after(20):
            await ticks_reached(1).wait()  # rung here, in this process
        assert TICKS == [("bell", "tick")]
        assert not durability.reminders.holding


async def test_a_client_of_the_cluster_sends_to_its_keys_and_activates_none(
    tmp_path: Path, secret_file: Path
) -> None:
    path = f"sqlite:///{tmp_path / 'state.db'}"
    client = Cluster("t", SECRET, activates=False)
    async with open_system(state_store=store_from_url(path), cluster=client) as system:
        with pytest.raises(SpawnError, match="no member of cluster 't' is up"):
            await system.get(Account, "nobody").ask(Account.where)
    async with (
        member(path, secret_file, "m1") as (m1, _),
        member(path, secret_file, "m2") as (m2, _),
        open_system(state_store=store_from_url(path), cluster=client) as system,
    ):
        where = {}
        for i in range(12):
            key = f"k{i}"
            balance, turns, pid = await system.get(Account, key).ask(Account.deposit, 1)
            assert (balance, turns) == (1, 1)
            where[key] = pid
        assert set(where.values()) <= {m1.pid, m2.pid}  # never here
        for key, pid in where.items():  # and each stays where it went
            assert await system.get(Account, key).ask(Account.where) == pid
        assert not system.durability().activations.active  # type: ignore[attr-defined]


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)


@given(
    st.one_of(
        st.none(),
        st.text(),
        json_values.map(json.dumps),
        st.fixed_dictionaries(
            {"address": json_values, "name": json_values, "until": json_values},
            optional={"tls": json_values},
        ).map(json.dumps),
    )
)
def test_a_member_record_read_from_the_shared_store_is_parsed_or_refused(
    document: str | None,
) -> None:
    """The store is shared: whatever a member record holds, reading it gives a
    record or None, never an exception that would stop a claim."""
    record = parse_member(document)
    if record is not None:
        assert isinstance(record.address, str) and math.isfinite(record.until)
        assert isinstance(record.tls, bool)


@given(
    st.one_of(
        st.none(),
        st.tuples(st.none() | st.text() | json_values.map(json.dumps), st.text()),
        st.tuples(st.fixed_dictionaries({"member": json_values}).map(json.dumps), st.text()),
    )
)
def test_an_owner_record_read_from_the_shared_store_names_a_member_or_none(
    stored: tuple[str | None, str] | None,
) -> None:
    owner = _owner_in(stored)
    assert owner is None or isinstance(owner, str)


class CountingStore(SQLiteStore):
    """An SQLite store that counts the reads of owner records."""

    owner_reads = 0

    async def read(self, atom_type: str, key: str, name: str) -> tuple[str | None, str] | None:
        if name == "$owner":
            self.owner_reads += 1
        return await super().read(atom_type, key, name)


async def test_a_forward_is_found_again_without_the_store_and_reread_when_it_runs_out(
    tmp_path: Path, secret_file: Path
) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    async with (
        member(url, secret_file, "m1") as (m1, address),
        member(url, secret_file, "m2") as (m2, _),
    ):
        store = CountingStore(path)
        cluster = Cluster("t", SECRET, lease=1.0)
        async with open_system(state_store=store, cluster=cluster) as system:
            await active_at(system, address, m1, "moving", 1)
            # A Ref made per message (the usual get-then-ask) finds the forward
            # again: the owner record is not read for each.
            reads = store.owner_reads
            for _ in range(50):
                assert await system.get(Account, "moving").ask(Account.where) == m1.pid
            assert store.owner_reads == reads
            # The key moves to m2 (its owner record now names m2): until the
            # forward runs out, messages still go to m1, then to m2.
            ref = system.get(Account, "moving")
            members = await store.scan("$member")
            (m2_id,) = [key.rpartition(":")[2] for _, key, doc, _ in members if '"m2"' in doc]
            stored = await store.read("$radon", f"cluster:t:owner:{ref.id}", "$owner")
            assert stored is not None
            moved = json.dumps({"member": m2_id})
            await store.write("$radon", f"cluster:t:owner:{ref.id}", "$owner", moved, stored[1])
            assert await ref.ask(Account.where) == m1.pid
            ref._ep.forward.until = trio.current_time()  # type: ignore[attr-defined]
            assert await ref.ask(Account.where) == m2.pid


async def test_a_client_with_another_secret_is_told_why_it_reaches_no_member(
    tmp_path: Path, secret_file: Path
) -> None:
    path = f"sqlite:///{tmp_path / 'state.db'}"
    # The secret is taken as a file's would be: surrounding whitespace stripped.
    assert Cluster("t", b"  " + SECRET + b"\n").secret == SECRET
    stranger = Cluster("t", b"another-secret-0123456789abcdef", activates=False, lease=0.2)
    async with (
        member(path, secret_file, "m1", "--lease", "0.2") as _,
        open_system(state_store=store_from_url(path), cluster=stranger) as system,
    ):
        with trio.fail_after(20), pytest.raises(SpawnError, match="no live member") as caught:
            await system.get(Account, "k").ask(Account.where)
        assert "AuthenticationFailed" in str(caught.value)
        assert "same secret" in str(caught.value)


async def test_under_load_a_killed_member_loses_no_acknowledged_deposit(
    tmp_path: Path, secret_file: Path
) -> None:
    """200 askers deposit into 20 accounts through a client while the member
    with the most accounts is SIGKILLed halfway: every deposit that was
    answered is in its account's balance afterwards, and nothing more than
    was sent (a deposit that failed with HostDown may or may not be in)."""
    path = f"sqlite:///{tmp_path / 'state.db'}"
    client = Cluster("t", SECRET, activates=False, lease=0.5)
    keys = [f"load-{i}" for i in range(20)]
    acknowledged = dict.fromkeys(keys, 0)
    unknown = dict.fromkeys(keys, 0)
    async with (
        member(path, secret_file, "m1", "--lease", "0.5") as (m1, _),
        member(path, secret_file, "m2", "--lease", "0.5") as (m2, _),
        member(path, secret_file, "m3", "--lease", "0.5") as (m3, _),
        open_system(state_store=store_from_url(path), cluster=client) as system,
    ):
        procs = {m1.pid: m1, m2.pid: m2, m3.pid: m3}
        where: dict[str, int] = {}
        for key in keys:
            _, _, where[key] = await system.get(Account, key).ask(Account.deposit, 1)
            acknowledged[key] += 1
        victim = max(procs, key=lambda pid: list(where.values()).count(pid))
        halfway = trio.Event()
        sent = 0

        async def asker(i: int) -> None:
            nonlocal sent
            key = keys[i % len(keys)]
            for _ in range(10):
                sent += 1
                if sent == 1000:
                    halfway.set()
                try:
                    await system.get(Account, key).ask(Account.deposit, 1)
                except (HostDown, SpawnError):
                    unknown[key] += 1
                else:
                    acknowledged[key] += 1

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in range(200):
                    nursery.start_soon(asker, i)
                await halfway.wait()
                procs[victim].kill()
            moved = 0
            for key in keys:
                ref = system.get(Account, key)
                balance, _, pid = await ask_until_answered(ref, Account.deposit, 0)
                assert pid != victim
                moved += where[key] == victim
                assert acknowledged[key] <= balance <= acknowledged[key] + unknown[key], key
        assert moved > 0  # the victim had accounts, which live elsewhere now
        assert sum(acknowledged.values()) + sum(unknown.values()) == 20 + 2000
