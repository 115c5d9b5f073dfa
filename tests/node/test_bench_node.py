"""``gridledger bench node``: the node and its load generators as OS processes, checked exact.

The bounded run (500 households and meters, 4 intervals) asserts exactness, not timing: every
reading sent is stored, every interval's settlement sums to zero, and the chain holds exactly
one netting-root settlement per interval. It runs at speed 180 (5 s intervals) rather than 60
so that it fits the suite's budget; the meters get one interval (``settle_grace_s=900``, 5 wall
seconds) to report, because on a shared 2-core machine a 500-reading burst can take seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gridledger.node.bench import BenchConfig, bench_node
from tests.support.services import REPO, Service


def assert_exact(report: dict[str, Any], households: int, intervals: int) -> None:
    assert report["all_settled"], [i["status"] for i in report["per_interval"]]
    assert len(report["per_interval"]) == intervals
    for interval in report["per_interval"]:
        exact = interval["exact"]
        assert exact["readings_sent"] == households, exact
        assert exact["readings_stored"] == exact["readings_sent"], exact
        assert exact["settlement_sum_micro"] == 0, exact
        assert exact["settlement_accounts"] > 0, exact  # imbalance at least: never empty
        assert exact["chain_settlements"] == 1, exact
        assert interval["gas_used"] > 0
    assert report["exact"]
    assert report["readings"]["accepted"] == households * intervals
    assert report["orders"]["accepted"] > 0
    assert report["node_peak_rss_mb"] > 0 and report["node_cpu_s_per_interval"] > 0


def test_bounded_bench_node_run_is_exact(tmp_path: Path) -> None:
    config = BenchConfig(
        households=500, intervals=4, speed=180, settle_grace_s=900, workdir=tmp_path / "bench"
    )
    report = bench_node(config)
    assert_exact(report, 500, 4)
    assert report["presigned"] and report["settlement_path"] == "root"
    # the market runs from 10:00 UTC: PV sells, and every interval settles trades
    assert all(i["trades"] > 0 for i in report["per_interval"]), report["per_interval"]
    # every order is answered, counted as accepted, rejected (by code) or skipped after gate
    orders = report["orders"]
    answered = orders["accepted"] + orders["duplicate"] + sum(orders["rejected"].values())
    assert answered + orders["skipped_after_gate"] + orders["unanswered"] == orders["sent"]
    assert orders["sent"] == 500 * 4


@pytest.mark.mqtt
def test_bench_over_mqtt_orders_and_readings_is_exact(tmp_path: Path) -> None:
    config = BenchConfig(
        households=200,
        intervals=2,
        speed=180,
        settle_grace_s=900,
        via="mqtt",
        workdir=tmp_path / "bench",
    )
    report = bench_node(config)
    assert_exact(report, 200, 2)
    assert report["via"] == "mqtt"
    orders = report["orders"]
    assert orders["unanswered"] == 0 and orders["accepted"] + orders["duplicate"] == 400, orders


@pytest.mark.parametrize("speed", [60, 1])
def test_bench_fails_at_once_when_the_node_dies(tmp_path: Path, speed: int) -> None:
    """At speed 1 too the node outlives the bench's start signal (SIGUSR1 once ended it)."""
    import threading
    import time

    import psutil

    from gridledger.errors import GridledgerError

    workdir = tmp_path / "bench"
    config = BenchConfig(households=50, intervals=6, speed=speed, workdir=workdir)
    outcome: list[BaseException | dict[str, Any]] = []

    def run() -> None:
        try:
            outcome.append(bench_node(config))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    events = workdir / "node-events.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (events.exists() and "resumed" in events.read_text()):
        time.sleep(0.2)
    node = next(
        p
        for p in psutil.Process().children(recursive=True)
        if "gridledger.node.bench" in " ".join(p.cmdline())
    )
    time.sleep(2)
    assert node.is_running() and node.status() != psutil.STATUS_ZOMBIE, "the node ended by itself"
    node.kill()
    killed_at = time.monotonic()
    thread.join(60)
    assert not thread.is_alive(), "the bench kept waiting for a dead node"
    assert time.monotonic() - killed_at < 30
    (error,) = outcome
    assert isinstance(error, GridledgerError), error
    assert "the node process ended during the run (signal 9)" in str(error)


def test_cli_refuses_bad_arguments_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gridledger", "bench", "node", "--households", "10", "--via", "x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "via: must be 'http' or 'mqtt'" in result.stderr


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.postgres
@pytest.mark.mqtt
def test_ten_thousand_households_on_anvil_and_postgres(
    tmp_path: Path, anvil_server: Service, db_url_postgres: str
) -> None:
    config = BenchConfig(
        households=10_000,
        intervals=8,
        speed=60,
        via="mqtt",  # one request per order over HTTP does not keep up at 10,000 (README)
        chain=anvil_server.url,
        db_url=db_url_postgres,
        workdir=tmp_path / "bench",
    )
    report = bench_node(config)
    assert_exact(report, 10_000, 8)


@pytest.fixture
def db_url_postgres(postgres_server: Service) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE bench_node"))
    engine.dispose()
    return postgres_server.url.rsplit("/", 1)[0] + "/bench_node"
