"""`gridledger sweep`: a grid of scenarios on Dask, locally and on a separately started cluster.

The cells are tiny (a day, 4 households, no background loads) so the time goes to starting
the workers. A cell asking for more households than the feeder has loads fails on its worker
(the feeder is only known there); it must be reported with its error, the others must finish.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.errors import ServiceUnavailable, ValidationError
from gridledger.sim.runner import run_scenario
from gridledger.sim.sweep import load_sweep, run_sweep
from tests.support.services import Service, free_port

BASE = """
name = "tiny"
[grid]
code = "1-LV-rural2--0-sw"
background = false
[community]
households = 4
battery_share = 0.25
[run]
start_date = 2016-06-06
days = 1
"""

SWEEP = """
name = "tiny-sweep"
base = "base.toml"
[set]
community.pv_share = 0.75
[vary]
community.households = {households}
market.mechanism = ["uniform", "pay-as-bid"]
"""

DASK = Path(sys.executable).with_name("dask")


def _sweep(folder: Path, households: str = "[4, 200]", name: str = "sweep.toml") -> Path:
    (folder / "base.toml").write_text(BASE, encoding="utf-8")
    path = folder / name
    path.write_text(SWEEP.format(households=households), encoding="utf-8")
    return path


def test_every_cell_is_checked_before_a_cluster_starts(tmp_path: Path) -> None:
    path = _sweep(tmp_path, households="[4, -1]")
    with pytest.raises(ValidationError, match=r"vary\.community\.households: must be positive"):
        load_sweep(path)
    path.write_text(SWEEP.format(households="[4]") + "market.stratgy = ['zi']\n")
    with pytest.raises(ValidationError, match=r"market\.stratgy: unknown key.*'strategy'"):
        load_sweep(path)
    path.write_text(SWEEP.format(households="[4, 4]"), encoding="utf-8")
    with pytest.raises(ValidationError, match=r"vary\.community\.households: lists a value twice"):
        load_sweep(path)
    plan = load_sweep(_sweep(tmp_path, households="[4, 8]"))
    assert [c.label for c in plan.cells] == [
        "community.households=4, market.mechanism=uniform",
        "community.households=4, market.mechanism=pay-as-bid",
        "community.households=8, market.mechanism=uniform",
        "community.households=8, market.mechanism=pay-as-bid",
    ]
    assert {c.scenario.pv_share for c in plan.cells} == {0.75}  # [set] reaches every cell
    assert len({c.cell_id for c in plan.cells}) == 4


def test_local_cluster_runs_the_grid_reports_a_failed_cell_and_a_rerun_skips(
    tmp_path: Path,
) -> None:
    plan = load_sweep(_sweep(tmp_path))
    out = tmp_path / "out"
    seen: list[int] = []
    outcome = run_sweep(plan, out, workers=1, progress=lambda done, _t, _w: seen.append(done))
    assert outcome.workers == 1 and outcome.ran == 4 and outcome.skipped == 0
    assert seen[-1] == 4
    frame = pd.read_parquet(out / "results.parquet")
    assert len(frame) == 4
    assert list(frame["status"]) == ["ok", "ok", "failed", "failed"]
    assert frame["error"][2].startswith("ValidationError: n_households: grid has only 99 loads")
    # a finished cell's KPIs are the scenario's own, computed here without Dask
    direct = run_scenario(plan.cells[1].scenario, write_files=False).kpis.to_dict()
    row = frame.iloc[1]
    assert row["market.mechanism"] == "pay-as-bid"
    for key, value in direct.items():
        assert row[key] == pytest.approx(value), key
    assert frame["self_sufficiency"][2] != frame["self_sufficiency"][2]  # NaN for a failure
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "grid has only 99 loads" in report and "id='cell-3'" in report
    assert len(list((out / "cells").glob("*.failed.json"))) == 2

    # the same grid without the failing cells: both finished, nothing to run, no cluster
    rerun = CliRunner().invoke(
        app,
        ["sweep", str(_sweep(tmp_path, "[4]", "again.toml")), "--out", str(out), "--json"],
    )
    assert rerun.exit_code == 0, rerun.output
    report_json = json.loads(rerun.stdout[rerun.stdout.index("{") :])
    assert report_json["ran"] == 0 and report_json["skipped"] == 2
    assert report_json["cluster"] == "none" and report_json["failed"] == []
    again = pd.read_parquet(out / "results.parquet")
    assert list(again["cell_id"]) == list(frame["cell_id"][:2])
    assert list(again["self_sufficiency"]) == list(frame["self_sufficiency"][:2])


@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A `dask scheduler` and two `dask worker` OS processes on 127.0.0.1 free ports.

    ``--no-nanny``: each worker is the one process the test started (no supervising parent).
    """
    port = free_port()
    log = (tmp_path / "dask.log").open("ab")

    def launch(args: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    address = f"tcp://127.0.0.1:{port}"
    scheduler = Service(
        "dask-scheduler",
        address,
        port,
        lambda: launch(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
        ),
    ).start()
    worker_args = ["--nthreads", "1", "--host", "127.0.0.1", "--no-nanny", "--no-dashboard"]
    workers = [
        launch([str(DASK), "worker", address, *worker_args, "--name", f"worker-{n}"])
        for n in (1, 2)
    ]
    try:
        yield address
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        scheduler.stop()
        log.close()


def test_a_separately_started_cluster_runs_the_grid_and_a_rerun_retries_only_failures(
    tmp_path: Path, dask_cluster: str
) -> None:
    plan = load_sweep(_sweep(tmp_path))
    out = tmp_path / "out"
    first = run_sweep(plan, out, scheduler=dask_cluster, workers=2)
    assert first.cluster == dask_cluster and first.workers == 2
    assert [r["status"] for r in first.rows] == ["ok", "ok", "failed", "failed"]
    assert len(first.failed) == 2
    again = run_sweep(plan, out, scheduler=dask_cluster)
    assert again.ran == 2 and again.skipped == 2  # only the failed cells ran again
    assert [r["skipped"] for r in again.rows] == [True, True, False, False]
    assert all(r["worker"] for r in again.rows)


def test_an_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    plan = load_sweep(_sweep(tmp_path, "[4]"))
    with pytest.raises(ServiceUnavailable, match="--scheduler: no Dask scheduler answers"):
        run_sweep(
            plan,
            tmp_path / "out",
            scheduler=f"tcp://127.0.0.1:{free_port()}",
            connect_timeout_s=1.0,
        )
