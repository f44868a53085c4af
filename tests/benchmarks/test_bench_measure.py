"""Benchmarking one's own atoms: ``radon_actors.bench.measure`` and ``radon bench``.

No timings are asserted (performance is measured, not tested): these check that
every message is sent and handled, that each deployment really runs where it
says, that bad input is refused clearly, and that every option of the command
line changes what it does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sandbox_atoms
import trio
from test_bench_smoke import _worker_hosts_of_this_process

from radon_actors import Atom, BadArguments, HandlerNotFound, handler
from radon_actors.bench import DEPLOYMENTS, Report, measure

ROOT = Path(__file__).resolve().parents[2]
RADON = str(Path(sys.executable).with_name("radon"))


class Tally(Atom):
    calls: ClassVar[int] = 0  # class-level: counts across every instance measured

    def __init__(self, start: int = 0) -> None:
        self.n = start

    @handler
    def bump(self, by: int = 1) -> int:
        Tally.calls += 1
        self.n += by
        return self.n

    @handler
    def broken(self) -> None:
        raise RuntimeError("this handler always fails")


def _deployments(report: Report) -> list[str]:
    return [r.deployment for r in report.rows]


async def test_every_ask_warmup_and_tell_reaches_the_handler() -> None:
    Tally.calls = 0
    report = await measure(
        Tally, Tally.bump, args=(2,), iterations=30, warmup=7, repeat=2, messages=40
    )
    # Per run: the warm-up, the timed asks, the tells and the barrier ask.
    assert Tally.calls == 2 * (7 + 30 + 40 + 1)
    assert report.ok and _deployments(report) == ["floor", "native"]
    floor, native = report.rows
    assert floor.p50_ratio == 1.0 and native.p50_ratio == native.p50_us / floor.p50_us
    for row in report.rows:
        assert 0 < row.p50_us <= row.p90_us <= row.p99_us
        assert row.asks_per_s > 0 and row.tells_per_s is not None and row.tells_per_s > 0
    assert report.target == "test_bench_measure.Tally.bump(2)"
    assert "native (this process)" in report.table()


class SandboxedByDefault(Tally):
    sandbox = True  # the class default; this module cannot be sandboxed (it imports pytest)


async def test_native_means_native_whatever_the_class_default() -> None:
    Tally.calls = 0
    report = await measure(SandboxedByDefault, "bump", iterations=10, warmup=0, repeat=1)
    assert report.ok, report.failures
    assert Tally.calls == 10 + 10_000 + 1  # ran here, natively


async def test_no_tells_when_messages_is_zero() -> None:
    Tally.calls = 0
    report = await measure(Tally, "bump", iterations=10, warmup=0, repeat=1, messages=0)
    assert Tally.calls == 10
    assert report.rows[1].tells_per_s is None


async def test_every_deployment_side_by_side(sandbox_component: object) -> None:
    seen: list[str] = []
    report = await measure(
        sandbox_atoms.Counter,
        sandbox_atoms.Counter.incr,
        args=(1,),
        init_args=(5,),
        deployments=list(DEPLOYMENTS),
        iterations=20,
        repeat=1,
        messages=30,
        progress=seen.append,
    )
    assert report.ok, report.failures
    assert _deployments(report) == ["floor", "native", "sandboxed", "worker"]
    assert any("worker: starting a worker host" in line for line in seen)
    assert any("sandboxed: loading the component" in line for line in seen)
    assert _worker_hosts_of_this_process() == []  # the worker host stopped with the run


async def test_a_failing_deployment_is_reported_and_the_others_run() -> None:
    # This test module imports pytest: it cannot be sandboxed, but runs natively.
    report = await measure(
        Tally, Tally.bump, deployments=("native", "sandboxed"), iterations=10, repeat=1
    )
    assert _deployments(report) == ["floor", "native"]
    ((deployment, reason),) = report.failures
    assert deployment == "sandboxed" and "SandboxBuildError" in reason
    assert not report.ok and "failed: SandboxBuildError" in report.table()

    report = await measure(Tally, Tally.broken, iterations=10, repeat=1)
    assert report.failures == (("native", "RuntimeError: this handler always fails"),)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"handler": "nope"}, HandlerNotFound, "no handler 'nope' \\(handlers: broken, bump\\)"),
        ({"args": ("a", "b")}, BadArguments, "signature: bump"),
        ({"deployments": ("moon",)}, ValueError, "unknown deployment.*native, sandboxed, worker"),
        ({"iterations": 0}, ValueError, "iterations and repeat must be at least 1"),
        ({"messages": -1}, ValueError, "messages and warmup at least 0"),
    ],
)
async def test_bad_input_is_refused_before_anything_runs(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    Tally.calls = 0
    h = options.pop("handler", Tally.bump)
    with pytest.raises(error, match=match):
        await measure(Tally, h, **options)
    assert Tally.calls == 0


async def test_only_atom_classes() -> None:
    with pytest.raises(TypeError, match="takes an Atom subclass"):
        await measure(dict, "get")  # type: ignore[arg-type]


# -- the command line ------------------------------------------------------------
ACCOUNT = """
from radon_actors import Atom, handler

class Account(Atom):
    def __init__(self, owner: str, balance: int = 0) -> None:
        self.owner = owner
        self.balance = balance

    @handler
    def deposit(self, amount: int, note: str = "") -> int:
        self.balance += amount
        return self.balance
"""


async def radon_bench(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(300):  # a cold sandbox cache builds a component first
        return await trio.run_process(
            [RADON, "bench", *args], cwd=cwd, capture_stdout=True, capture_stderr=True, check=False
        )


@pytest.fixture
def account_dir(tmp_path: Path) -> Path:
    (tmp_path / "bank_atoms.py").write_text(ACCOUNT)
    return tmp_path


async def test_cli_measures_a_user_atom_in_every_deployment(
    tmp_path: Path, sandbox_component: object
) -> None:
    out = tmp_path / "report.json"
    done = await radon_bench(
        "sandbox_atoms:Counter", "incr", "2",
        "--init", "10", "--path", "tests/atoms", "--deploy", "all",
        "--iterations", "25", "--warmup", "3", "--repeat", "2", "--messages", "40",
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(out.read_text())
    assert report["target"] == "sandbox_atoms.Counter.incr(2)"
    assert (report["iterations"], report["warmup"], report["repeat"], report["messages"]) == (
        25,
        3,
        2,
        40,
    )
    assert [r["deployment"] for r in report["rows"]] == ["floor", *DEPLOYMENTS]
    table = done.stdout.decode()
    for label in DEPLOYMENTS.values():
        assert label in table
    assert "run 2 of 2" in done.stderr.decode()  # progress goes to stderr


async def test_cli_passes_constructor_and_keyword_arguments(account_dir: Path) -> None:
    base = ["bank_atoms:Account", "deposit", "5", "--path", str(account_dir), "--smoke"]
    # Without --init the constructor is missing its owner: the deployment fails.
    done = await radon_bench(*base)
    assert done.returncode == 1
    assert "missing 1 required positional argument: 'owner'" in done.stderr.decode()
    done = await radon_bench(*base, "--init", "carol", "--init-kw", "balance=7", "--kw", "note=x")
    assert done.returncode == 0, done.stderr.decode()
    assert "bank_atoms.Account.deposit(5, note='x')" in done.stdout.decode()
    # A keyword the handler does not take is refused before anything runs.
    done = await radon_bench(*base, "--init", "carol", "--kw", "memo=x")
    assert done.returncode == 2 and "unexpected keyword argument 'memo'" in done.stderr.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bank_atoms:Account", "withdraw"], "has no handler 'withdraw' (handlers: deposit)"),
        (["bank_atoms:Nope", "deposit"], "bank_atoms has no Atom subclass 'Nope'"),
        (["no_such_module:Account", "deposit"], "cannot import 'no_such_module'"),
        (["bank_atoms:Account", "deposit", "1", "--deploy", "moon"], "unknown deployment"),
        (["bank_atoms:Account", "deposit", "1", "--kw", "oops"], "--kw takes NAME=VALUE"),
        ([], "give MODULE:CLASS and HANDLER"),
    ],
)
async def test_cli_refuses_bad_input(account_dir: Path, args: list[str], message: str) -> None:
    done = await radon_bench(*args, "--path", str(account_dir))
    assert done.returncode == 2
    assert message in done.stderr.decode()


async def test_cli_without_path_cannot_import_a_module_elsewhere(account_dir: Path) -> None:
    done = await radon_bench("bank_atoms:Account", "deposit", "1", "--smoke")
    assert done.returncode == 2 and "add --path DIR" in done.stderr.decode()


async def test_cli_runs_the_shipped_latency_suite(tmp_path: Path) -> None:
    out = tmp_path / "suite.json"
    done = await radon_bench(
        "--suite", "--smoke", "--no-peers", "--json", str(out), cwd=tmp_path
    )  # from anywhere: the suite ships with the package
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(out.read_text())
    configs = [r["config"] for r in result["rows"]]
    assert configs[0] == "raw-channel" and "native" in configs and "sandboxed" in configs
    assert not any(r["group"] == "peer" for r in result["rows"])  # --no-peers
    assert "radon-actors native, def handler" in done.stdout.decode()
