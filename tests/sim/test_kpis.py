"""Every KPI recomputed from the run's interval series, its definitions and docs/kpis.md."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridledger.sim.kpis import KPI_DEFINITIONS, KPIS_BY_KEY, Kpis, kpis_markdown
from gridledger.sim.runner import ScenarioResult, run_scenario
from tests.support.scenarios import one_day

DOCS = Path(__file__).resolve().parents[2] / "docs" / "kpis.md"
# background loads on: the transformer carries more than the community
FEEDER = one_day(
    "kpis", households=6, seed=3, background=True, strategy="zi", start_date=dt.date(2016, 6, 8)
)


@pytest.fixture(scope="module")
def run() -> ScenarioResult:
    return run_scenario(FEEDER, write_files=False)


def test_every_kpi_is_recomputed_from_the_interval_series(run: ScenarioResult) -> None:
    s, k = run.series, run.kpis
    demand, pv = s.demand_wh.sum(), s.pv_generated_wh.sum()
    assert k.self_sufficiency == pytest.approx(1 - s.supplier_import_wh.sum() / demand)
    assert k.self_consumption == pytest.approx(
        1 - (s.supplier_export_wh.sum() + s.curtailed_wh.sum()) / pv
    )
    assert k.local_share_of_demand == pytest.approx(s.local_traded_wh.sum() / demand)
    assert k.community_savings_micro == int(
        run.baseline_bill_micro.sum() - run.market_bill_micro.sum()
    )
    assert k.baseline_cost_micro == int(run.baseline_bill_micro.sum())
    assert k.market_cost_micro == int(run.market_bill_micro.sum())
    net_kw = (s.supplier_import_wh - s.supplier_export_wh) * 4 / 1000  # Wh per 15 min -> kW
    assert k.community_peak_import_kw == pytest.approx(max(net_kw.max(), 0))
    assert k.transformer_peak_import_kw == pytest.approx(np.nanmax(s.ext_grid_p_mw) * 1000)
    assert k.max_line_loading_percent == pytest.approx(np.nanmax(s.max_line_loading_percent))
    assert k.max_trafo_loading_percent == pytest.approx(np.nanmax(s.max_trafo_loading_percent))
    outside = ~((s.min_vm_pu >= 0.9) & (s.max_vm_pu <= 1.1))
    assert k.minutes_outside_voltage_band == 15 * int(outside.sum())
    assert k.curtailed_wh == int(s.curtailed_wh.sum()) and k.gas_used == 0


def test_the_series_balance_and_the_two_peaks_differ(run: ScenarioResult) -> None:
    s, k = run.series, run.kpis
    # without batteries every household's net position is load - PV, and whatever is not
    # traded locally goes to or comes from the supplier
    assert np.array_equal(
        s.supplier_import_wh - s.supplier_export_wh - s.curtailed_wh,
        s.demand_wh - s.pv_generated_wh,
    )
    assert (s.local_traded_wh <= s.demand_wh).all()
    # what neighbours supplied is part of what was not bought from the supplier
    assert 0 < k.local_share_of_demand <= k.self_sufficiency
    # the feeder's background SimBench loads flow through the transformer, not the community
    assert 0 < k.community_peak_import_kw < k.transformer_peak_import_kw
    assert run.summary["energy_wh"]["demand_wh"] == int(s.demand_wh.sum())


def test_each_kpi_has_one_definition_in_the_order_of_the_values() -> None:
    assert [d.key for d in KPI_DEFINITIONS] == [f.name for f in dataclasses.fields(Kpis)]
    for d in KPI_DEFINITIONS:
        assert d.title and d.explanation.endswith(".") and d.formula
        assert d.unit in ("%", "EUR", "kWh", "kW", "min", "gas")


def test_values_are_shown_in_human_units() -> None:
    assert KPIS_BY_KEY["community_savings_micro"].format(-4_386_040) == "-4.39 EUR"
    assert KPIS_BY_KEY["local_share_of_demand"].format(0.18458) == "18.5%"
    assert KPIS_BY_KEY["curtailed_wh"].format(164_326) == "164.33 kWh"
    assert KPIS_BY_KEY["transformer_peak_import_kw"].format(50.62) == "50.6 kW"
    assert KPIS_BY_KEY["max_trafo_loading_percent"].format(81.234) == "81.2 %"


def test_docs_kpis_md_is_generated_from_the_definitions() -> None:
    assert DOCS.read_text(encoding="utf-8") == kpis_markdown(), (
        "regenerate: python -m gridledger.sim.kpis > docs/kpis.md"
    )


def test_the_run_as_dataframes_with_a_time_index(run: ScenarioResult) -> None:
    from gridledger.sim.frames import bills_frame, intervals_frame

    frame = intervals_frame(run, "Europe/Berlin")
    assert len(frame) == 96 and str(frame.index.tz) == "Europe/Berlin"
    assert frame.index[0].isoformat() == "2016-06-08T02:00:00+02:00"  # 00:00 UTC
    assert (frame.index[1] - frame.index[0]).total_seconds() == 900
    local, demand = frame["local_traded_wh"].sum(), frame["demand_wh"].sum()
    assert local / demand == pytest.approx(run.kpis.local_share_of_demand)
    bills = bills_frame(run)
    assert list(bills.index) == list(run.household_names)
    assert bills["savings_micro"].sum() == run.kpis.community_savings_micro
