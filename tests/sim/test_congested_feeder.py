"""The congested-feeder example: the plain market overloads, the grid-aware one does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.sim.runner import run_scenario
from gridledger.sim.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "congested-feeder.toml"


@pytest.fixture(scope="module")
def scenario_pair() -> tuple[dict[str, object], dict[str, object]]:
    aware = load_scenario(SCENARIO)
    plain = aware.replace(grid_aware=False)
    return (
        run_scenario(plain, write_files=False).summary,
        run_scenario(aware, write_files=False).summary,
    )


def test_grid_aware_clearing_removes_every_overload(
    scenario_pair: tuple[dict[str, object], dict[str, object]],
) -> None:
    plain, aware = scenario_pair
    plain_kpis, aware_kpis = plain["kpis"], aware["kpis"]
    assert isinstance(plain_kpis, dict) and isinstance(aware_kpis, dict)
    assert plain["intervals_over_limits"] > 10  # sunny midday hours overload the transformer
    assert plain_kpis["max_trafo_loading_percent"] > 130.0
    assert aware["intervals_over_limits"] == 0
    assert aware["intervals_over_limits_without_grid_awareness"] == plain["intervals_over_limits"]
    assert aware_kpis["max_trafo_loading_percent"] <= 100.0
    assert aware_kpis["curtailed_wh"] > 0 and plain_kpis["curtailed_wh"] == 0
    assert aware["unresolved_intervals"] == 0
    # curtailed PV is neither used nor paid: self-consumption cannot rise, bills cannot fall
    assert aware_kpis["market_cost_micro"] >= plain_kpis["market_cost_micro"]
