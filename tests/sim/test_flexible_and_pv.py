"""Shiftable loads and pvlib clear-sky PV: real schedules, real solar geometry."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.sim.community import build_community
from gridledger.sim.flexible import ShiftableLoad, schedule_days, schedule_shiftable
from gridledger.sim.pv import pvlib_clear_sky_per_unit

BOILER = ShiftableLoad(
    daily_energy_wh=3_000, max_power_w=2_000, window_start_interval=32, window_end_interval=72
)  # 08:00-18:00, 500 Wh per quarter hour


def test_shiftable_load_fills_the_sunniest_intervals_of_its_window() -> None:
    signal = np.zeros(96)
    signal[44:52] = [1, 5, 8, 9, 9, 8, 5, 1]  # a midday surplus
    signal[20] = 100.0  # outside the window: must be ignored
    schedule = schedule_shiftable(BOILER, signal, 900)
    assert schedule.sum() == 3_000
    assert schedule.max() == 500 and schedule.min() == 0
    assert set(np.flatnonzero(schedule)) == {45, 46, 47, 48, 49, 50}


def test_a_remainder_lands_in_the_next_best_interval() -> None:
    load = ShiftableLoad(1_200, 2_000, 0, 96)
    schedule = schedule_shiftable(load, np.arange(96.0), 900)
    assert schedule[95] == 500 and schedule[94] == 500 and schedule[93] == 200


def test_schedule_days_repeats_per_day() -> None:
    schedule = schedule_days(BOILER, np.tile(np.arange(96.0), 3), 900, 96)
    assert schedule.reshape(3, 96).sum(axis=1).tolist() == [3_000] * 3


@pytest.mark.parametrize(
    ("load", "field"),
    [
        (dict(daily_energy_wh=30_000), "daily_energy_wh"),  # 30 kWh cannot fit in 10 h at 2 kW
        (dict(window_end_interval=100), "window_end_interval"),
    ],
)
def test_impossible_schedules_are_refused(load: dict[str, int], field: str) -> None:
    values = {
        "daily_energy_wh": 3_000,
        "max_power_w": 2_000,
        "window_start_interval": 32,
        "window_end_interval": 72,
        **load,
    }
    with pytest.raises(ValidationError, match=field):
        schedule_shiftable(ShiftableLoad(**values), np.zeros(96), 900)
    with pytest.raises(ValidationError, match="window_start_interval"):
        ShiftableLoad(1, 1, 10, 10)


def test_pvlib_clear_sky_follows_the_sun_in_berlin() -> None:
    june = pvlib_clear_sky_per_unit(52.5, 13.4, dt.date(2016, 6, 21), 96)
    december = pvlib_clear_sky_per_unit(52.5, 13.4, dt.date(2016, 12, 21), 96)
    assert june[:8].max() == 0.0 and june[-4:].max() == 0.0  # 00:00-02:00 and 23:00 UTC
    assert 40 <= int(np.argmax(june)) <= 48  # solar noon in Berlin is ~11:05 UTC
    assert 0.6 < june.max() <= 1.0
    assert 5.0 < june.sum() / 4 < 8.0  # kWh per kWp on a clear June day
    assert december.sum() < june.sum() / 2


def test_pvlib_feeds_the_community() -> None:
    per_unit = pvlib_clear_sky_per_unit(52.5, 13.4, dt.date(2016, 6, 10), 96)
    community = build_community(
        n_households=6,
        seed=1,
        pv_share=0.5,
        battery_count=0,
        use_grid_sgens=False,
        pv_per_unit=per_unit,
    )
    owners = [h for h in community.households if h.has_pv]
    assert len(owners) == 3 and all(h.pv_source.startswith("pvlib x ") for h in owners)
    peak_w = int(owners[0].pv_source.split(" x ")[1].removesuffix(" W"))
    expected = np.rint(per_unit * peak_w / 4).astype(np.int64)
    np.testing.assert_array_equal(owners[0].pv_wh, expected)
    with pytest.raises(ValidationError, match="pv_per_unit"):
        build_community(n_households=6, pv_per_unit=per_unit[:10])
    with pytest.raises(ValidationError, match="latitude"):
        pvlib_clear_sky_per_unit(95.0, 0.0, dt.date(2016, 6, 10), 96)
