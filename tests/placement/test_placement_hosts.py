"""Worker hosts in real subprocesses: remote spawn, ask/tell, Refs, errors, failures."""

from __future__ import annotations

import os
import pickle
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trio
from cluster_helpers import cluster, radon_host, record_frames
from placement_atoms import Counter, Gate, Overdrawn, Relay, Watcher

from radon_actors import (
    AskTimeout,
    AtomStopped,
    AuthenticationFailed,
    HandlerNotFound,
    HostDown,
    MailboxFull,
    MessageTooLarge,
    NoSuchHost,
    SpawnError,
    WouldBlock,
    open_system,
)
from radon_actors.placement._serve import advertised
from radon_actors.testing import node_of


async def test_spawn_ask_tell_on_a_worker_process() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 10, host="w1")
        assert await ref.ask(Counter.where) != str(os.getpid())
        assert await ref.ask(Counter.incr, 5) == 15
        for _ in range(100):
            ref.tell(Counter.incr)
        await ref.send(Counter.incr, 1000)
        # tells and asks from one sender arrive in order
        assert await ref.ask(Counter.aincr, 0) == 1115
        assert await ref.ask("get") == 1115
        # An answer from another host needs a round trip: never now.
        with pytest.raises(WouldBlock, match="elsewhere"):
            ref.ask_nowait(Counter.incr, 1)
        assert await ref.ask("get") == 1115


async def test_remote_exception_keeps_type_and_remote_traceback() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 7, host="w1")
        with pytest.raises(ValueError, match="boom at 7") as info:
            await ref.ask(Counter.boom)
        notes = "\n".join(getattr(info.value, "__notes__", []))
        assert "remote traceback (host 'w1')" in notes
        assert "placement_atoms.py" in notes
        with pytest.raises(HandlerNotFound, match="nope"):
            await ref.ask("nope")


async def test_a_remote_rejection_answers_and_keeps_the_state() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 7, host="w1")
        with pytest.raises(Overdrawn, match="cannot take 9 of 7"):
            await ref.ask(Counter.take, 9)
        ref.tell(Counter.take, 100)  # refused, logged on the worker, dropped
        assert await ref.ask(Counter.take, 2) == 5


async def test_an_oversized_message_is_refused_at_the_sender() -> None:
    """Finding 3 of issue #14: a 300 MB ask went out, the worker dropped the
    connection, and the origin declared a healthy host down. Now it is refused
    at the call site and nothing else is affected."""
    big = b"x" * (300 << 20)
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 7, host="w1")
        with pytest.raises(MessageTooLarge, match=r"over the .* limit of a message between hosts"):
            await ref.ask(Counter.incr, big)
        with pytest.raises(MessageTooLarge):
            ref.tell(Counter.incr, big)
        with pytest.raises(MessageTooLarge):
            await ref.send(Counter.incr, big)
        del big
        assert await ref.ask(Counter.incr, 1) == 8  # same connection, same atom
        assert "w1" in system.hosts


def test_a_reply_too_large_reaches_the_asker_as_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import outcome

    from radon_actors.placement import _endpoints, _wire

    monkeypatch.setattr(_wire, "MAX_MESSAGE", 1000)
    ok, error = pickle.loads(_endpoints.dump_outcome(outcome.Value(b"y" * 5000), "host 'w1'"))
    assert ok is False and isinstance(error, MessageTooLarge)
    assert "the reply of 5," in str(error)


async def test_remote_ask_timeout_and_cancellation() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, host="w1")
        with pytest.raises(AskTimeout, match=r"within 0\.2"):
            await ref.ask(Counter.hang, timeout=0.2)
        other = await system.spawn(Counter, 1, host="w1")
        with trio.move_on_after(0.1) as scope:
            await other.ask(Counter.hang)
        assert scope.cancelled_caught
        node = node_of(system)
        assert not node.pending  # the abandoned asks left nothing behind


async def test_refs_travel_inside_messages_between_hosts() -> None:
    async with cluster("w1", "w2") as system:
        local = await system.spawn(Counter, 100)
        on_w2 = await system.spawn(Counter, 200, host="w2")
        relay = await system.spawn(Relay, host="w1")
        # w1 asks back into this process
        assert await relay.ask(Relay.relay, local, 1) == 101
        # w1 asks w2 directly (host to host), though this process spawned both
        seen = record_frames(system)
        assert await relay.ask(Relay.relay, on_w2, 2) == 202
        assert [f for f in seen if on_w2.id in f] == []  # nothing went through here
        assert await local.ask(Counter.get) == 101
        assert await on_w2.ask(Counter.get) == 202


async def test_a_ref_from_the_atoms_own_host_goes_there_directly() -> None:
    async with cluster("w1", "w2") as system:
        on_w2 = await system.spawn(Counter, 0, host="w2")
        maker = await system.spawn(Watcher, host="w2")
        made = await maker.ask(Watcher.make)  # spawned on w2: w2 is its origin
        relay = await system.spawn(Relay, host="w1")
        seen = record_frames(system)
        # The Refs reach w1 through this process; w1 then talks to w2 alone.
        assert await relay.ask(Relay.relay, made, 5) == 5
        assert await relay.ask(Relay.relay, on_w2, 1) == 1
        assert [f for f in seen if f[0] in ("ask", "tell")] == []


async def test_a_hinted_ref_follows_the_atom_after_its_host_dies() -> None:
    async with cluster("w1", "w2", "w3") as system:
        target = await system.spawn(Counter, 10, host="w2")
        relay = await system.spawn(Relay, host="w1")
        assert await relay.ask(Relay.relay, target, 1) == 11  # w1 now holds a Ref via w2
        lost = trio.Event()
        node_of(system).host_down_callbacks.append(lambda host, reason: lost.set())
        node = node_of(system)
        node.processes[node.peer_by_name("w2").node_id].kill()
        with trio.fail_after(20):
            await lost.wait()
        # Restarted by its supervisor (fresh state) on a live host; the Ref that
        # w1 holds, pointed at the dead w2, finds it through the origin.
        with trio.fail_after(20):
            try:
                got = await relay.ask(Relay.relay, target, 1)
            except HostDown:
                # w1 had not noticed w2's death yet when it sent: the outcome of
                # that message is unknown (it failed fast). Now w1 knows.
                got = await relay.ask(Relay.relay, target, 1)
        assert got == 11
        assert await target.ask(Counter.where) != str(os.getpid())


async def test_unknown_host_is_a_clear_error() -> None:
    async with open_system() as system:
        with pytest.raises(NoSuchHost, match="start_host"):
            await system.spawn(Counter, host="nowhere")


async def test_sigkilled_host_fails_asks_in_flight_fast() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, host="w1")
        pid = int(await ref.ask(Counter.where))
        errors: list[BaseException] = []
        downs: list[str] = []
        node_of(system).host_down_callbacks.append(lambda host, reason: downs.append(host))

        async def ask_hanging() -> None:
            try:
                await ref.ask(Counter.hang)
            except HostDown as exc:
                errors.append(exc)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for _ in range(3):
                    nursery.start_soon(ask_hanging)
                await trio.testing.wait_all_tasks_blocked()
                os.kill(pid, signal.SIGKILL)
        assert len(errors) == 3
        assert "'w1'" in str(errors[0])
        assert downs == ["w1"]
        # its supervisor (the root) restarted it, here: no other host is up
        ref.tell(Counter.incr)
        await ref.send(Counter.incr)
        assert await ref.ask(Counter.get) == 2
        assert int(await ref.ask(Counter.where)) == os.getpid()


async def test_stopped_host_is_declared_down_by_heartbeat() -> None:
    async with cluster("w1", heartbeat_interval=0.1, heartbeat_timeout=1.0) as system:
        ref = await system.spawn(Counter, host="w1")
        pid = int(await ref.ask(Counter.where))
        os.kill(pid, signal.SIGSTOP)
        try:
            # declared down after the 1 s heartbeat timeout (5 s: a loaded machine)
            with trio.fail_after(5), pytest.raises(HostDown, match=r"heartbeat for 1\.0 s"):
                await ref.ask(Counter.get)
        finally:
            os.kill(pid, signal.SIGCONT)


async def test_radon_host_console_script_joined_by_address(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)  # a shared secret must be private (read_secret checks)
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not-the-secret-at-all-0123")
    wrong.chmod(0o600)
    async with radon_host(secret, "remote") as (proc, line):
        kind, _, address = line.partition(" ")
        assert kind == "READY"
        async with open_system() as system:
            with pytest.raises(AuthenticationFailed):
                await system.connect_host(address, secret_file=wrong)
        async with open_system() as system:
            name = await system.connect_host(address, secret_file=secret)
            assert name == "remote"
            ref = await system.spawn(Counter, 1, host="remote")
            assert await ref.ask(Counter.incr) == 2
            assert int(await ref.ask(Counter.where)) == proc.pid
            moved = await system.spawn(Counter, 5)
            await system.migrate(moved, to="remote")
            assert int(await moved.ask(Counter.where)) == proc.pid
            assert await node_of(system).hosts()[1].load() == 2
        # closing the system stopped the atoms it spawned on the joined host, and
        # the one it moved there
        async with open_system() as system:
            await system.connect_host(address, secret_file=secret)
            assert await node_of(system).hosts()[1].load() == 0


async def _radon_host_refusal(*args: str) -> tuple[int, str]:
    done = await trio.run_process(
        [sys.executable, "-m", "radon_actors._cli", "host", *args],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    return done.returncode, done.stderr.decode()


async def test_radon_host_refuses_a_secret_file_others_can_read(tmp_path: Path) -> None:
    """Finding 2 of issue #14: a world-readable secret file was accepted."""
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o644)
    code, err = await _radon_host_refusal("--listen", "127.0.0.1:0", "--secret-file", str(secret))
    assert code == 2
    assert "open to group or others (mode 0644)" in err and "chmod 600" in err
    async with open_system() as system:
        with pytest.raises(ValueError, match="chmod 600"):
            await system.connect_host("127.0.0.1:1", secret_file=secret)


async def test_radon_host_refuses_an_exposed_address_without_tls(tmp_path: Path) -> None:
    """Finding 2 of issue #14: listening on 0.0.0.0 without TLS went unremarked."""
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    code, err = await _radon_host_refusal("--listen", "0.0.0.0:0", "--secret-file", str(secret))
    assert code == 2 and "refusing to listen on 0.0.0.0 without TLS" in err
    # --insecure: it starts, says so, and serves.
    async with radon_host(secret, "exposed", "--listen", "0.0.0.0:0", "--insecure") as (
        _proc,
        line,
    ):
        port = line.rpartition(":")[2]
        async with open_system() as system:
            assert await system.connect_host(f"127.0.0.1:{port}", secret_file=secret) == ("exposed")


async def test_tls_hosts_dial_each_other_with_tls_ca_at_their_advertised_names(
    tmp_path: Path,
) -> None:
    """Hosts that listen with TLS talk to each other directly over TLS: each
    checks the other's certificate against --tls-ca, by the name it advertises.
    Before, the host-to-host connection was plain TCP, which a TLS host refuses."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")  # the name, not 127.0.0.1: --advertise matters
    pem, key, ca_pem = tmp_path / "host.pem", tmp_path / "host.key", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_pem))
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    tls = ("--tls-cert", str(pem), "--tls-key", str(key))

    async def relay_across(*args: str) -> int:
        async with (
            radon_host(secret, "a", *tls, *args) as (_, line_a),
            radon_host(secret, "b", *tls, *args) as (_, line_b),
            open_system() as system,
        ):
            for line in (line_a, line_b):
                address = line.partition(" ")[2]
                if "--advertise" in args:
                    assert address.startswith("localhost:")  # READY names it
                # The system itself reaches them by the certificate's name.
                port = address.rpartition(":")[2]
                await system.connect_host(
                    f"localhost:{port}", secret_file=secret, ssl_context=client
                )
            counter = await system.spawn(Counter, 1, host="b")
            relay = await system.spawn(Relay, host="a")
            with trio.fail_after(20):
                return int(await relay.ask(Relay.relay, counter, 1))  # a dials b

    assert await relay_across("--tls-ca", str(ca_pem), "--advertise", "localhost") == 2
    # Without --tls-ca, a checks b against the platform's CAs: refused.
    with pytest.raises(HostDown, match="could not connect"):
        await relay_across("--advertise", "localhost")
    # Without --advertise, b is dialed at 127.0.0.1, which its certificate does not name.
    with pytest.raises(HostDown, match="could not connect"):
        await relay_across("--tls-ca", str(ca_pem))


async def test_worker_hosts_check_tls_hosts_against_the_cas_their_system_uses(
    tmp_path: Path,
) -> None:
    """A worker host dials the TLS hosts of its system itself (an atom on it
    asks one there), and checks them against the CAs its system was given,
    not only the platform's (before, it could not reach a host whose
    certificate a private CA signed)."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    pem, key = tmp_path / "host.pem", tmp_path / "host.key"
    cert.cert_chain_pems[0].write_to_path(str(pem))
    cert.private_key_pem.write_to_path(str(key))
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    tls = ("--tls-cert", str(pem), "--tls-key", str(key), "--advertise", "localhost")
    async with radon_host(secret, "a", *tls) as (_, line), open_system() as system:
        address = line.partition(" ")[2]
        await system.connect_host(address, secret_file=secret, ssl_context=client)
        await system.start_host("w1")
        counter = await system.spawn(Counter, 1, host="a")
        relay = await system.spawn(Relay, host="w1")
        with trio.fail_after(20):
            assert await relay.ask(Relay.relay, counter, 1) == 2  # w1 dials a


def test_advertised_addresses() -> None:
    assert advertised("0.0.0.0", 7700) == "0.0.0.0:7700"
    assert advertised("db-1.internal", 7700) == "db-1.internal:7700"
    assert advertised("db-1.internal:80", 7700) == "db-1.internal:80"
    assert advertised("::1", 7700) == "::1:7700"  # a bare IPv6 address is a host
    assert advertised("[::1]:80", 7700) == "[::1]:80"


async def test_radon_host_refuses_a_bad_tls_ca_or_advertise(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)
    base = ("--listen", "127.0.0.1:0", "--secret-file", str(secret))
    code, err = await _radon_host_refusal(*base, "--tls-ca", str(tmp_path / "missing.pem"))
    assert code == 2 and "cannot load --tls-ca" in err
    for bad in ("", "db-1:http", "a host", ":"):
        code, err = await _radon_host_refusal(*base, "--advertise", bad)
        assert code == 2 and "--advertise must be host or host:port" in err, bad


async def test_a_full_remote_mailbox_pushes_back_instead_of_dropping() -> None:
    # Issue #14 finding 4: tells to a remote atom used to queue without bound.
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, host="w1", mailbox_size=5)
        told = 0
        with pytest.raises(MailboxFull, match="mailbox size is 5"):
            for _ in range(500):
                ref.tell(Counter.aincr)  # far more than the mailbox holds, in one burst
                told += 1
        assert told == 5  # no credit yet: the burst never yielded
        for _ in range(500):
            await ref.send(Counter.aincr)  # waits for credit
        assert await ref.ask(Counter.get) == 505


async def test_placement_policies_spread_atoms_over_hosts() -> None:
    from radon_actors import LeastLoaded, RoundRobin

    async with cluster("w1", "w2") as system:
        assert system.hosts == ["local", "w1", "w2"]
        policy = RoundRobin(among=["w1", "w2"])
        refs = [await system.spawn(Counter, host=policy) for _ in range(4)]
        pids = [int(await r.ask(Counter.where)) for r in refs]
        assert pids[0] == pids[2] != pids[1] == pids[3]
        assert os.getpid() not in pids
        # w1 and w2 now run two atoms each, this process none: it is the least loaded
        least = LeastLoaded()
        ref = await system.spawn(Counter, host=least)
        assert int(await ref.ask(Counter.where)) == os.getpid()
        await system.spawn(Counter, host="local")
        ref = await system.spawn(Counter, host=LeastLoaded(among=["w1", "w2"]))
        assert int(await ref.ask(Counter.where)) in pids
        with pytest.raises(NoSuchHost):
            await system.spawn(Counter, host=RoundRobin(among=["nowhere"]))


async def test_code_shipped_by_value_needs_the_same_python() -> None:
    from radon_actors import SpawnError

    namespace: dict[str, Any] = {}
    exec(
        "from radon_actors import Atom, handler\n"
        "class Dyn(Atom):\n"
        "    @handler\n"
        "    def hi(self) -> str:\n"
        "        return 'hi'\n",
        namespace,
    )
    dyn = namespace["Dyn"]
    dyn.__module__ = "__main__"
    async with cluster("w1") as system:
        ref = await system.spawn(dyn, host="w1")  # by value, same Python: fine
        assert await ref.ask("hi") == "hi"
        peer = node_of(system).peer_by_name("w1")
        peer.python = "cpython-2.7"  # pretend the host runs another Python
        with pytest.raises(SpawnError, match="same Python"):
            await system.spawn(dyn, host="w1")


async def test_system_stop_reaches_an_atom_on_a_worker() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 1, host="w1")
        assert await ref.ask(Counter.incr) == 2
        with trio.fail_after(10):
            await system.stop(ref)
        with pytest.raises(AtomStopped):
            await ref.ask(Counter.get)
        await system.stop(ref)  # stopping it again does nothing


async def test_a_remote_ask_abandoned_while_queued_is_withdrawn() -> None:
    async with cluster("w1") as system:
        release = trio.Event()
        gate = await system.spawn(Gate, release)
        ref = await system.spawn(Counter, 0, host="w1")
        async with trio.open_nursery() as nursery:
            # the remote atom's turn waits on the gate, here
            nursery.start_soon(ref.ask, Counter.wait_on, gate)
            await trio.testing.wait_all_tasks_blocked()  # it was sent first
            with pytest.raises(AskTimeout):
                await ref.ask(Counter.aincr, timeout=0.2)  # queued behind that turn
            with trio.move_on_after(0.2):
                await ref.ask(Counter.aincr)  # cancelled while queued
            release.set()
        assert await ref.ask(Counter.get) == 0  # neither ran
        assert not node_of(system).pending


async def test_arguments_the_host_cannot_unpickle_fail_cleanly(tmp_path: Path) -> None:
    from radon_actors.placement._endpoints import RemoteError

    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 0, host="w1")
        # a module only this process can import (the worker was started before)
        (tmp_path / "only_here_mod.py").write_text("class Thing:\n    pass\n")
        sys.path.insert(0, str(tmp_path))
        try:
            import only_here_mod

            ref.tell(Counter.incr, only_here_mod.Thing())  # dropped there, logged
            with pytest.raises(RemoteError, match="cannot be unpickled"):
                await ref.ask(Counter.incr, only_here_mod.Thing())
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("only_here_mod", None)
        # the connection is still fine
        assert await ref.ask(Counter.incr) == 1


async def test_an_unpickled_ref_to_a_stopped_local_atom_is_atom_stopped() -> None:
    async with cluster("w1") as system:
        ref = await system.spawn(Counter, 1)
        data = pickle.dumps(ref)
        await system.stop(ref)
        with pytest.raises(AtomStopped):
            await pickle.loads(data).ask(Counter.get)


_APP_MODULE = """
from radon_actors import Atom, handler


class Teller(Atom):
    def __init__(self) -> None:
        self.n = 0

    @handler
    def incr(self) -> int:
        self.n += 1
        return self.n
"""


async def test_radon_host_path_imports_the_users_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The user's atoms live in their own directory: `radon host` imports them
    # from `--path DIR`, and says what is missing without it.
    app = tmp_path / "app"
    app.mkdir()
    (app / "teller_app_mod.py").write_text(_APP_MODULE)
    monkeypatch.syspath_prepend(str(app))
    import teller_app_mod

    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)  # a shared secret must be private (read_secret checks)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = [p for p in sys.path if p and p != str(app)]
    bare = radon_host(secret, "bare", pythonpath=path, cwd=elsewhere)
    async with bare as (_, line), open_system() as system:
        await system.connect_host(line.partition(" ")[2], secret_file=secret)
        with pytest.raises(SpawnError, match="teller_app_mod"):
            await system.spawn(teller_app_mod.Teller, host="bare")
    with_path = radon_host(secret, "with-path", "--path", str(app), pythonpath=path, cwd=elsewhere)
    async with with_path as (_, line), open_system() as system:
        await system.connect_host(line.partition(" ")[2], secret_file=secret)
        ref = await system.spawn(teller_app_mod.Teller, host="with-path")
        assert await ref.ask(teller_app_mod.Teller.incr) == 1


async def test_a_flood_of_idle_connections_does_not_lock_out_a_client(tmp_path: Path) -> None:
    """Finding 5 of issue #14, as found: a `radon host` with few file descriptors
    (here a limit of 128) flooded with connections that never authenticate.
    The flood is closed as it comes, so a real client still gets in."""
    import resource

    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32).hex().encode())
    secret.chmod(0o600)

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "radon_actors._cli", "host", "--listen", "127.0.0.1:0",
         "--secret-file", str(secret), "--name", "flooded"],
        stdout=subprocess.PIPE,
        env=env,
        preexec_fn=few_descriptors,
    )  # fmt: skip
    idle: list[trio.SocketStream] = []
    try:
        assert proc.stdout is not None
        line = b""
        with trio.fail_after(30):
            while not line.endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, "radon host exited early"
                line += chunk
        address = line.decode().split()[1]
        host, _, port = address.rpartition(":")
        for _ in range(300):  # more than the host has descriptors
            sock = trio.socket.socket()
            await sock.bind(("127.0.0.2", 0))
            await sock.connect((host, int(port)))
            idle.append(trio.SocketStream(sock))
        async with open_system() as system:
            with trio.fail_after(4):  # before the flood's 5 s handshake deadline
                assert await system.connect_host(address, secret_file=secret) == "flooded"
        assert proc.returncode is None  # and the host is still up
    finally:
        for stream in idle:
            await stream.aclose()
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
