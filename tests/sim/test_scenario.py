"""Scenario TOML files, the scenario runner and its KPIs, checked against a hand computation."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pytest

from gridledger.errors import ConfigError, DataSourceError, ValidationError
from gridledger.sim.runner import ScenarioResult, prepare_physics, run_scenario
from gridledger.sim.scenario import load_scenario, scenario_from_mapping
from tests.support.scenarios import one_day

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SMALL = one_day("small", households=8, seed=5, battery_share=0.25, flexible_share=0.25)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    seen: list[tuple[int, int]] = []
    result = run_scenario(
        SMALL,
        lambda done, total: seen.append((done, total)),
        out_dir=tmp_path_factory.mktemp("small"),
    )
    assert seen[0] == (1, 96) and seen[-1] == (96, 96)
    return result


@pytest.mark.parametrize("name", ["sunny-week", "congested-feeder", "year-rural2"])
def test_the_example_scenarios_load(name: str) -> None:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    assert scenario.name == name
    assert scenario.chain == "off"


def test_sunny_week_reads_every_section() -> None:
    scenario = load_scenario(SCENARIOS / "sunny-week.toml")
    assert (scenario.households, scenario.days, scenario.grid_aware) == (40, 7, True)
    assert scenario.start_date == dt.date(2016, 6, 6)
    assert scenario.flexible_window_start_hour == 8
    assert scenario.latitude == 52.5


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"market": {"strategy": "greedy"}}, "market.strategy"),
        ({"market": {"grid_awre": True}}, "market.grid_awre"),
        ({"community": {"households": "ten"}}, "community.households"),
        ({"community": {"households": True}}, "community.households"),
        ({"community": {"pv_share": 1.5}}, "community.pv_share"),
        ({"run": {"start_date": "June"}}, "run.start_date"),
        ({"run": {"start_date": dt.date(2016, 12, 30), "days": 3}}, "run.days"),
        ({"run": {"chain": "mainnet"}}, "run.chain"),
        ({"tariffs": {"feed_in_price_micro_per_kwh": 400_000}}, "tariffs.feed_in_price"),
        ({"grid": {"transformer_sn_mva": -1.0}}, "grid.transformer_sn_mva"),
        ({"wether": {"sunny": True}}, "wether"),
    ],
)
def test_errors_name_the_toml_key(document: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(key)):
        scenario_from_mapping(document)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match=r"missing\.toml"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[market\nstrategy = 'zi'")
    with pytest.raises(ValidationError, match="not valid TOML"):
        load_scenario(broken)
    unnamed = tmp_path / "my-run.toml"
    unnamed.write_text("[run]\ndays = 2\n")
    assert load_scenario(unnamed).name == "my-run"


def test_chain_memory_needs_a_recorder() -> None:
    with pytest.raises(ConfigError, match=r"run\.chain"):
        run_scenario(SMALL.replace(chain="memory"), write_files=False)


def test_kpis_match_a_hand_computation(small_run: ScenarioResult) -> None:
    physics = prepare_physics(SMALL)  # the same seeded community, rebuilt
    net = physics.net_wh
    needs, surplus = np.clip(net, 0, None).sum(axis=0), np.clip(-net, 0, None).sum(axis=0)
    # truthful bids: every buyer bids the import tariff, every seller asks feed-in, so the
    # auction trades the short side in full
    local = np.minimum(needs, surplus)
    demand, pv = int(physics.load_wh.sum()), int(physics.pv_wh.sum())
    kpis = small_run.kpis
    assert kpis.self_sufficiency == pytest.approx(1 - (needs - local).sum() / demand)
    assert kpis.self_consumption == pytest.approx(1 - (surplus - local).sum() / pv)
    assert kpis.local_share_of_demand == pytest.approx(local.sum() / demand)
    # each local Wh saves the buyer (import - price - fee) and earns the seller
    # (price - feed-in): the price cancels, up to a micro-unit of flooring per amount
    imp, feed, fee = 300_000, 80_000, 20_000
    savings = int(local.sum()) * (imp - feed - fee) / 1000
    flooring = 3 * int(small_run.series.trades.sum()) + 2 * net.size
    assert abs(kpis.community_savings_micro - savings) <= flooring
    assert savings > 100 * flooring  # the tolerance is small next to what is measured
    assert small_run.summary["energy_wh"]["local_traded_wh"] == int(local.sum())
    assert kpis.gas_used == 0 and kpis.curtailed_wh == 0
    assert kpis.minutes_outside_voltage_band == 0
    peak = np.nanmax(small_run.series.ext_grid_p_mw) * 1000
    assert kpis.transformer_peak_import_kw == pytest.approx(peak)


def test_bills_and_battery_bounds(small_run: ScenarioResult) -> None:
    assert small_run.baseline_bill_micro.sum() - small_run.market_bill_micro.sum() == (
        small_run.kpis.community_savings_micro
    )
    assert (small_run.market_bill_micro <= small_run.baseline_bill_micro).all()  # nobody loses
    assert small_run.soc_wh.shape == (2, 96)
    assert (small_run.soc_wh >= 0).all()
    assert (small_run.soc_wh <= small_run.battery_capacity_wh[:, None]).all()


def test_the_run_writes_json_and_a_self_contained_html(small_run: ScenarioResult) -> None:
    assert small_run.json_path is not None and small_run.html_path is not None
    summary = json.loads(small_run.json_path.read_text())
    assert summary["kpis"]["self_sufficiency"] == pytest.approx(small_run.kpis.self_sufficiency)
    assert set(summary["bills_micro"]) == set(small_run.household_names)
    page = small_run.html_path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http" not in page  # nothing to fetch
