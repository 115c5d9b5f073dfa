"""EVs, heat pumps with a thermal store and small wind: physics, configuration and KPIs.

The device models run on their real data sources (pvlib's bundled TMY3 weather year,
demandlib's BDEW heat profiles, windpowerlib's turbine library); the scenario test runs a tiny
community (10 households, two days, no background loads) through the market and power flow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.sim.devices import (
    EvConfig,
    HeatPumpConfig,
    Weather,
    WindConfig,
    heat_pump_cop,
    power_curve_per_unit,
    simulate_evs,
    simulate_heat_pumps,
    tmy_hours,
    weather_window,
    wind_per_unit,
)
from gridledger.sim.runner import run_scenario
from gridledger.sim.scenario import Scenario, load_scenario, scenario_from_mapping
from gridledger.sim.sweep import plan_sweep

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
FEBRUARY = dt.date(2016, 2, 15)
DAY = 96  # 15-minute intervals


def test_device_tables_are_checked_and_name_their_key() -> None:
    assert not Scenario().devices.any  # no tables: no devices, the runs of before
    with pytest.raises(ValidationError, match=r"^ev\.share: must be within \[0, 1\]"):
        scenario_from_mapping({"ev": {"share": 1.5}})
    with pytest.raises(ValidationError, match=r"^ev\.shar: unknown key in \[ev\].*'share'"):
        scenario_from_mapping({"ev": {"shar": 0.5}})
    with pytest.raises(ValidationError, match=r"^heat_pump\.max_power_w: must be a int"):
        scenario_from_mapping({"heat_pump": {"max_power_w": "3 kW"}})
    with pytest.raises(ValidationError, match=r"^weather\.station: must be one of"):
        scenario_from_mapping({"weather": {"station": "berlin"}})
    rural = load_scenario(SCENARIOS / "devices-rural.toml")
    assert rural.devices.any and rural.devices.wind.nominal_power_w == 10_000
    assert rural.devices.ev.share == 0.3 and rural.devices.heat_pump.smart
    sweep = {"base": "devices-rural.toml", "vary": {"ev": {"share": [0.0, 0.5]}}}
    cells = plan_sweep(sweep, SCENARIOS).cells  # device keys vary in a sweep like any other
    assert [c.scenario.devices.ev.share for c in cells] == [0.0, 0.5]
    assert cells[0].cell_id != cells[1].cell_id


def test_ev_sessions_get_their_energy_by_departure_and_smart_ones_follow_the_signal() -> None:
    n_intervals = 3 * DAY
    signal = np.zeros(n_intervals)
    for day in range(3):  # a surplus from 02:00 to 05:00 every night
        signal[day * DAY + 8 : day * DAY + 20] = 1_000.0
    owner = np.arange(6, dtype=np.int64)
    config = EvConfig(share=1.0, charger_power_w=7_400)
    step_wh = 7_400 * 900 // 3600
    smart = simulate_evs(config, owner, signal, 900, np.random.default_rng(5))
    plain = simulate_evs(
        dataclasses.replace(config, smart=False), owner, signal, 900, np.random.default_rng(5)
    )
    for run in (smart, plain):
        assert run.arrival.size == 6 * 3  # one session per EV and evening
        assert np.array_equal(run.delivered_wh, run.needed_wh)  # all of it by departure
        assert (run.charge_wh <= step_wh).all() and (run.charge_wh >= 0).all()
        full = run.departure < n_intervals  # the last evening's session ends with the run
        assert np.array_equal(run.needed_wh[full], run.requested_wh[full])
        for ev, start, end in zip(run.session_ev, run.arrival, run.departure, strict=True):
            assert run.charge_wh[ev, start:end].sum() >= 0
        plugged = np.zeros_like(run.charge_wh, dtype=bool)
        for ev, start, end in zip(run.session_ev, run.arrival, run.departure, strict=True):
            plugged[ev, start:end] = True
        assert not run.charge_wh[~plugged].any()  # never charges while away
    in_surplus = signal > 0
    assert smart.charge_wh[:, in_surplus].sum() > 0.9 * smart.charge_wh[:, :-DAY].sum()
    assert plain.charge_wh[:, in_surplus].sum() < 0.5 * plain.charge_wh.sum()
    first = plain.arrival[0]  # a plain charger starts at full power when it plugs in
    assert plain.charge_wh[plain.session_ev[0], first] == min(step_wh, plain.needed_wh[0])


def test_heat_pump_store_stays_within_bounds_and_the_heat_balances() -> None:
    n_intervals = 4 * DAY
    weather = weather_window("sand-point-ak", FEBRUARY, n_intervals, 900)
    rows = tmy_hours(FEBRUARY, n_intervals, 900)
    surplus = (np.arange(n_intervals) % DAY >= 40) & (np.arange(n_intervals) % DAY < 64)
    owner = np.arange(5, dtype=np.int64)
    config = HeatPumpConfig(share=1.0, store_capacity_wh=9_000, max_power_w=3_000)
    runs = [
        simulate_heat_pumps(
            dataclasses.replace(config, smart=smart),
            owner,
            weather,
            rows,
            surplus,
            "sand-point-ak",
            900,
            np.random.default_rng(2),
        )
        for smart in (True, False)
    ]
    for run in runs:
        assert (run.store_wh >= 0).all() and (run.store_wh <= 9_000).all()
        assert (run.electricity_wh <= 3_000 * 900 // 3600).all()
        assert (run.heat_wh <= run.electricity_wh * run.cop[None, :] + 1e-9).all()
        start = 9_000 // 2
        balance = start + run.heat_wh.sum(1) - run.heat_demand_wh.sum(1) - run.loss_wh.sum(1)
        assert np.array_equal(balance + run.unmet_heat_wh.sum(1), run.store_wh[:, -1])
        assert run.unmet_heat_wh.sum() == 0  # sized for the Alaskan February
    smart, follow = runs
    assert np.array_equal(smart.heat_demand_wh, follow.heat_demand_wh)
    share = [r.electricity_wh[:, surplus].sum() / r.electricity_wh.sum() for r in runs]
    assert share[0] > share[1] + 0.1  # the store moves consumption into the surplus hours
    assert smart.store_wh.max() > 8_900  # and it is really filled


def test_heat_demand_is_demandlibs_bdew_profile_on_the_weather_year() -> None:
    days = 365
    weather = weather_window("sand-point-ak", dt.date(2015, 1, 1), days * DAY, 900)
    rows = tmy_hours(dt.date(2015, 1, 1), days * DAY, 900)
    run = simulate_heat_pumps(
        HeatPumpConfig(
            share=1.0, annual_heat_demand_kwh_min=12_000, annual_heat_demand_kwh_max=12_000
        ),
        np.zeros(1, dtype=np.int64),
        weather,
        rows,
        np.zeros(days * DAY, dtype=bool),
        "sand-point-ak",
        900,
        np.random.default_rng(0),
    )
    assert abs(int(run.heat_demand_wh.sum()) - 12_000_000) <= 1  # a year is the annual demand
    daily_heat = run.heat_demand_wh[0].reshape(days, DAY).sum(axis=1)
    daily_temperature = weather.temperature_c.reshape(days, DAY).mean(axis=1)
    assert np.corrcoef(daily_heat, daily_temperature)[0, 1] < -0.8  # colder days, more heat
    cop = heat_pump_cop(HeatPumpConfig(), np.array([-10.0, 0.0, 10.0]))
    assert cop[0] < cop[1] < cop[2] and 2.0 < cop[1] < 4.5


def test_wind_power_follows_windpowerlibs_power_curve() -> None:
    from windpowerlib import WindTurbine

    speeds, per_unit = power_curve_per_unit("E-53/800")
    turbine = WindTurbine(turbine_type="E-53/800", hub_height=73)
    library = turbine.power_curve
    assert np.allclose(speeds, library["wind_speed"])
    assert np.allclose(per_unit * turbine.nominal_power, library["value"])
    wind = np.array([0.5, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 24.0, 30.0])
    standard = Weather(  # 15 °C at 2 m, sea-level pressure: air density ~1.22 kg/m^3
        np.full(wind.size, 15.0), wind, np.full(wind.size, 101_325.0)
    )
    config = WindConfig(share=1.0, hub_height_m=10.0)  # hub at the measurement height
    v_hub, output = wind_per_unit(config, standard)
    assert np.allclose(v_hub, wind)
    expected = np.interp(wind, speeds, per_unit, left=0, right=0)
    assert output[0] == 0.0 and output[-1] == 0.0  # below cut-in, above cut-out
    assert np.allclose(output[1:-1], expected[1:-1], rtol=0.02)
    assert (np.diff(output[:7]) > 0).all() and output[7] > 0.95  # rising to rated
    windy, _ = wind_per_unit(dataclasses.replace(config, hub_height_m=30.0), standard)
    assert windy[3] > output[3]  # higher hub, more wind (log profile)


def test_a_scenario_with_devices_reports_kpis_per_device_type(tmp_path: Path) -> None:
    base = Scenario(
        name="devices-tiny",
        households=10,
        pv_share=0.3,
        battery_share=0.0,
        background=False,
        start_date=FEBRUARY,
        days=2,
        seed=4,
        grid_aware=True,
        transformer_sn_mva=0.015,  # 15 kVA: the turbines' export overloads it
    )
    devices = dataclasses.replace(
        base.devices,
        ev=EvConfig(share=0.3),
        heat_pump=HeatPumpConfig(share=0.4),
        wind=WindConfig(share=0.3),
    )
    result = run_scenario(base.replace(devices=devices), out_dir=tmp_path)
    plain = run_scenario(base, write_files=False)
    kpis = result.summary["devices"]
    assert "devices" not in plain.summary
    ev, heat, wind = kpis["ev"], kpis["heat_pump"], kpis["wind"]
    assert ev["count"] == 3 and heat["count"] == 4 and wind["count"] == 3
    assert ev["energy_delivered_wh"] == ev["energy_needed_wh"] > 0
    assert ev["sessions_met_by_departure"] == ev["sessions"] == 6
    assert 0 <= heat["store_min_wh"] <= heat["store_max_wh"] <= heat["store_capacity_wh"]
    assert heat["unmet_heat_wh"] == 0 and 2.0 < heat["seasonal_cop"] < 5.0
    assert wind["generation_wh"] > 0 and 0 < wind["capacity_factor"] < 1
    # the devices' energy is in the households' positions the strategies quote
    extra_load = ev["energy_delivered_wh"] + heat["electricity_wh"]
    assert int(result.series.demand_wh.sum()) == int(plain.series.demand_wh.sum()) + extra_load
    generated = int(result.series.pv_generated_wh.sum())
    assert generated == int(plain.series.pv_generated_wh.sum()) + wind["generation_wh"]
    # ... and the grid-aware clearing runs where they (the turbines' export) overload the
    # 15 kVA transformer; without devices it has nothing to do
    assert result.summary["grid_aware_intervals"] > plain.summary["grid_aware_intervals"] == 0
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    for kind in ("ev", "heat_pump", "wind"):
        assert f"id='devices-{kind}'" in report
