"""``python -m examples.cluster``: accounts kept by a cluster of members, one of
which is killed (see the package's docstring)."""

from __future__ import annotations

import argparse
import secrets
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import trio

from radon_actors import Cluster, HostDown, Ref, SpawnError, open_system
from radon_actors.durable import store_from_url

from .atoms import Account

ROOT = Path(__file__).resolve().parents[2]


async def read_ready(proc: trio.Process) -> None:
    assert proc.stdout is not None
    line = b""
    with trio.fail_after(60):
        while not line.endswith(b"\n"):
            chunk = await proc.stdout.receive_some()
            if not chunk:
                raise RuntimeError("a member exited before it joined")
            line += chunk


async def deposit(ref: Ref[Account], amount: int) -> tuple[int, int]:
    """Deposit until a member answers: an ask in flight to a member that was
    just killed fails with HostDown (its outcome unknown), as for any host;
    the next one waits for the killed member's lease to run out."""
    while True:
        try:
            return await ref.ask(Account.deposit, amount)
        except (HostDown, SpawnError):
            await trio.sleep(0.05)  # then try again


async def run(members: int, keys: int, lease: float, store: str, scratch: Path) -> int:
    secret = secrets.token_hex(32).encode()
    secret_file = scratch / "secret"
    secret_file.write_bytes(secret)
    secret_file.chmod(0o600)
    print(f"cluster 'demo': {members} members on {store}, lease {lease:g} s")
    names: dict[int, str] = {}
    procs: dict[str, trio.Process] = {}
    wrong = 0
    try:
        for i in range(1, members + 1):
            name = f"m{i}"
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "radon_actors._cli", "member", "--cluster", "demo",
                 "--secret-file", str(secret_file), "--state-store", store, "--name", name,
                 "--lease", str(lease), "--path", str(ROOT), "--log-level", "error"],
                stdout=subprocess.PIPE,
            )  # fmt: skip
            procs[name] = proc
            names[proc.pid] = name
        for proc in procs.values():
            await read_ready(proc)
        client = Cluster("demo", secret, activates=False, lease=lease)
        async with open_system(state_store=store_from_url(store), cluster=client) as system:
            accounts = {f"acct-{k}": system.get(Account, f"acct-{k}") for k in range(keys)}
            where: dict[str, str] = {}
            for key, ref in accounts.items():
                balance, pid = await deposit(ref, 10)
                where[key] = names[pid]
                print(f"{key}: active in {names[pid]}, balance {balance}")
            busiest, count = Counter(where.values()).most_common(1)[0]
            procs[busiest].send_signal(signal.SIGKILL)
            await procs[busiest].wait()
            print(f"killed {busiest} (SIGKILL), which had {count} of the {keys} accounts")
            for key, ref in accounts.items():
                balance, pid = await deposit(ref, 1)
                now = names[pid]
                moved = f"moved from {where[key]}" if now != where[key] else "stayed"
                print(f"{key}: active in {now} ({moved}), balance {balance}")
                if balance != 11 or now == busiest:
                    wrong += 1
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)  # members leave cleanly
        with trio.move_on_after(10):
            for proc in procs.values():
                await proc.wait()
        for proc in procs.values():
            if proc.returncode is None:
                proc.kill()
    if wrong:
        print(f"{wrong} accounts lost a deposit or answered from the killed member")
        return 1
    print(f"every account answered from a live member with all {11 * keys} units deposited")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.cluster",
        description="Start a cluster of radon member processes, deposit into accounts "
        "through a client, kill the busiest member, and check that nothing was lost.",
    )
    parser.add_argument("--members", type=int, default=3, help="members to start (default 3)")
    parser.add_argument("--keys", type=int, default=12, help="accounts (default 12)")
    parser.add_argument(
        "--lease",
        type=float,
        default=2.0,
        help="the members' lease in seconds: how long the killed member's accounts wait "
        "before the others take them (default 2)",
    )
    parser.add_argument(
        "--store",
        default=None,
        help="the store the members share: sqlite:///path or redis://host:port/db "
        "(default: an SQLite file in a temporary directory)",
    )
    args = parser.parse_args()
    if args.members < 2:
        parser.error("--members takes at least 2 (one is killed)")
    if args.keys < 1:
        parser.error("--keys takes a positive number")
    if not 0.1 <= args.lease <= 60:
        parser.error("--lease takes 0.1 to 60 seconds")
    with tempfile.TemporaryDirectory() as scratch:
        store = args.store or f"sqlite:///{Path(scratch) / 'cluster.sqlite3'}"
        sys.exit(trio.run(run, args.members, args.keys, args.lease, store, Path(scratch)))


if __name__ == "__main__":
    main()
