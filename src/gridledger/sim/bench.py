"""Benchmark of a scenario run: wall, CPU, peak RSS and where the time went.

The scenario runs once as given (files written to a temporary folder, so writing the report
counts as I/O). Then a shorter window of the same scenario runs on both power flow engines, and
the report gives the largest relative KPI difference between them and their wall-time ratio
(power-grid-model over pandapower, measured in this run): a year on pandapower takes minutes,
so the comparison window is ``compare_days`` long.
"""

from __future__ import annotations

import math
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from gridledger.errors import ValidationError
from gridledger.grid.powerflow import PANDAPOWER, POWER_GRID_MODEL
from gridledger.sim.runner import ScenarioResult, run_scenario
from gridledger.sim.scenario import Scenario, load_scenario

DEFAULT_COMPARE_DAYS = 2
KPI_TOLERANCE = 0.001  # 0.1 %: the bound between the engines


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the settling worker, once reaped
    return usage.ru_utime + usage.ru_stime


def _timed(scenario: Scenario, out_dir: Path | None) -> tuple[ScenarioResult, float, float]:
    """The run, its wall seconds and its CPU seconds (this process and its workers)."""
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu_s()
    result = run_scenario(scenario, out_dir=out_dir, write_files=out_dir is not None)
    cpu_s = time.process_time() - cpu + _children_cpu_s() - children
    return result, time.perf_counter() - wall, cpu_s


def kpi_differences(ours: ScenarioResult, theirs: ScenarioResult) -> dict[str, float]:
    """Relative difference of every numeric KPI (absolute where the reference is zero)."""
    a, b = ours.kpis.to_dict(), theirs.kpis.to_dict()
    differences = {}
    for key, value in a.items():
        other = b.get(key)
        if not isinstance(value, int | float) or not isinstance(other, int | float):
            continue
        if isinstance(value, bool) or (math.isnan(value) and math.isnan(other)):
            continue
        scale = abs(other) if other else 1.0
        differences[key] = abs(value - other) / scale
    return differences


def bench_sim(
    scenario_path: str | Path, compare_days: int = DEFAULT_COMPARE_DAYS
) -> dict[str, Any]:
    """Run the scenario and the engine comparison; a JSON-ready report."""
    if compare_days < 0:
        raise ValidationError("--compare-days", f"must not be negative, got {compare_days}")
    scenario = load_scenario(scenario_path)
    rss_before_mb = _peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="gridledger-bench-") as folder:
        result, wall_s, cpu_s = _timed(scenario, Path(folder))
    report: dict[str, Any] = {
        "scenario": scenario.name,
        "intervals": scenario.n_intervals,
        "households": scenario.households,
        "powerflow": scenario.powerflow,
        "grid_aware": scenario.grid_aware,
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_cores_used": round(cpu_s / wall_s, 2) if wall_s else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "worker_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "rss_before_run_mb": round(rss_before_mb, 1),
        "breakdown_s": {k: round(v, 2) for k, v in result.stage_seconds.items()},
        "ms_per_interval": round(wall_s * 1000 / scenario.n_intervals, 3),
        "kpis": result.kpis.to_dict(),
    }
    if compare_days:
        report["engine_comparison"] = compare_engines(scenario, compare_days)
    return report


def compare_engines(scenario: Scenario, days: int) -> dict[str, Any]:
    """The first ``days`` of ``scenario`` on both engines: KPI differences and wall ratio."""
    window = scenario.replace(days=min(days, scenario.days))
    ours, ours_s, _ = _timed(window.replace(powerflow=POWER_GRID_MODEL), None)
    theirs, theirs_s, _ = _timed(window.replace(powerflow=PANDAPOWER), None)
    differences = kpi_differences(ours, theirs)
    worst = max(differences, key=lambda k: differences[k]) if differences else None
    return {
        "days": window.days,
        "intervals": window.n_intervals,
        "power_grid_model_wall_s": round(ours_s, 2),
        "pandapower_wall_s": round(theirs_s, 2),
        "wall_ratio_ours_over_pandapower": round(ours_s / theirs_s, 4) if theirs_s else None,
        "power_flow_s": {
            "power_grid_model": round(ours.stage_seconds["power_flow"], 3),
            "pandapower": round(theirs.stage_seconds["power_flow"], 3),
        },
        "max_relative_kpi_difference": differences[worst] if worst else 0.0,
        "worst_kpi": worst,
        "within_tolerance": all(d <= KPI_TOLERANCE for d in differences.values()),
        "tolerance": KPI_TOLERANCE,
    }
