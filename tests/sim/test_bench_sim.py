"""`gridledger bench sim`: the report's figures are consistent, and both engines agree."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.sim.runner import STAGES

SCENARIO = """
name = "bench-tiny"
[grid]
code = "1-LV-rural2--0-sw"
[community]
households = 8
battery_share = 0.25
[market]
strategy = "zip"
[run]
start_date = 2016-06-06
days = 1
"""


def test_bench_sim_reports_time_memory_breakdown_and_the_engine_comparison(
    tmp_path: Path,
) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    outcome = CliRunner().invoke(
        app, ["bench", "sim", "--scenario", str(scenario), "--compare-days", "1", "--json"]
    )
    assert outcome.exit_code == 0, outcome.output
    report = json.loads(outcome.stdout[outcome.stdout.index("{") :])
    assert report["intervals"] == 96 and report["powerflow"] == "power-grid-model"
    assert set(report["breakdown_s"]) == set(STAGES)
    assert 0 < sum(report["breakdown_s"].values()) <= report["wall_s"] + 0.05
    assert report["peak_rss_mb"] > 0 and report["cpu_s"] > 0
    comparison = report["engine_comparison"]
    assert comparison["intervals"] == 96 and comparison["within_tolerance"] is True
    assert comparison["max_relative_kpi_difference"] <= comparison["tolerance"]


def test_bench_sim_names_a_missing_scenario_in_one_line(tmp_path: Path) -> None:
    outcome = CliRunner().invoke(
        app, ["bench", "sim", "--scenario", str(tmp_path / "nope.toml"), "--json"]
    )
    assert outcome.exit_code != 0 and "nope.toml" in outcome.output
