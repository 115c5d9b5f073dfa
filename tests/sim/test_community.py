"""The community is built from real SimBench profiles and is a pure function of its seed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import simbench

from gridledger.errors import DataSourceError, ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, interval_of_day, load_lv_grid
from gridledger.sim import Community, build_community
from gridledger.sim.community import COMMUNITY_GRID_CODE


@pytest.fixture(scope="module")
def community() -> Community:
    return build_community(n_households=12, seed=7, pv_share=0.5, battery_count=3)


def test_same_seed_builds_the_same_community(community: Community) -> None:
    again = build_community(n_households=12, seed=7, pv_share=0.5, battery_count=3)
    assert [h.name for h in again.households] == [h.name for h in community.households]
    for mine, theirs in zip(community.households, again.households, strict=True):
        assert (mine.bus, mine.load_index, mine.pv_source) == (
            theirs.bus,
            theirs.load_index,
            theirs.pv_source,
        )
        assert mine.battery == theirs.battery
        np.testing.assert_array_equal(mine.load_wh, theirs.load_wh)
        np.testing.assert_array_equal(mine.pv_wh, theirs.pv_wh)


def test_another_seed_picks_other_loads(community: Community) -> None:
    other = build_community(n_households=12, seed=8, pv_share=0.5, battery_count=3)
    assert {h.load_index for h in other.households} != {h.load_index for h in community.households}


def test_load_series_replay_the_simbench_profile_of_their_load(community: Community) -> None:
    net = simbench.get_simbench_net(COMMUNITY_GRID_CODE)
    absolute = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    start = community.start_interval
    for household in community.households:
        p_mw = absolute[("load", "p_mw")][household.load_index].to_numpy()[start : start + 96]
        expected_wh = np.rint(p_mw * 250_000).astype(np.int64)  # MW over 15 min -> Wh
        np.testing.assert_array_equal(household.load_wh, expected_wh)
        assert household.bus == int(net.load.at[household.load_index, "bus"])


def test_daily_totals_are_those_of_real_households_on_a_sunny_day(community: Community) -> None:
    for household in community.households:
        assert household.load_wh.dtype == np.int64 and household.pv_wh.dtype == np.int64
        assert household.load_wh.shape == (INTERVALS_PER_DAY,)
        assert (household.load_wh > 0).all(), household.name
        assert 300 <= int(household.load_wh.sum()) <= 30_000, household.name
        assert household.load_profile.startswith("H0")  # residential loads come first
        if household.has_pv:
            night = np.r_[household.pv_wh[:12], household.pv_wh[-12:]]  # 00-03 h, 21-24 h
            assert int(night.sum()) == 0
            assert int(household.pv_wh.sum()) > 10_000, household.name  # >=3.6 kWh/kWp, >=4.7 kWp
        else:
            assert int(household.pv_wh.sum()) == 0


def test_pv_share_and_battery_count_are_honoured(community: Community) -> None:
    assert sum(h.has_pv for h in community.households) == 6
    owners = [h for h in community.households if h.battery is not None]
    assert len(owners) == 3
    assert all(h.has_pv for h in owners)  # batteries go to PV owners first
    assert all(h.battery.soc_wh == h.battery.capacity_wh // 2 for h in owners if h.battery)


def test_pv_beyond_the_grid_sgens_uses_scaled_profiles_within_the_peak_range() -> None:
    community = build_community(
        n_households=20, seed=1, pv_share=1.0, battery_count=0, pv_peak_w_range=(5_000, 6_000)
    )
    from_sgens = [h for h in community.households if h.pv_sgen_index is not None]
    scaled = [h for h in community.households if h.pv_sgen_index is None]
    assert len(from_sgens) == 8  # 1-LV-rural2 has 8 PV sgens
    assert len(scaled) == 12
    for household in scaled:
        peak_w = int(household.pv_source.split(" x ")[1].removesuffix(" W"))
        assert 5_000 <= peak_w <= 6_000
        assert 0 < int(household.pv_wh.max()) <= peak_w // 4  # 15 min at most at peak power


def test_households_get_distinct_loads_and_the_grid_limits_their_number() -> None:
    community = build_community(n_households=30, seed=3, battery_count=0)
    assert len({h.load_index for h in community.households}) == 30
    with pytest.raises(ValidationError, match="n_households"):
        build_community(n_households=100, seed=3)


def test_unknown_grid_code_is_a_data_source_error_naming_it() -> None:
    with pytest.raises(DataSourceError, match="1-LV-nowhere--0-sw"):
        load_lv_grid("1-LV-nowhere--0-sw")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"pv_share": 1.5}, "pv_share"),
        ({"battery_count": 13}, "battery_count"),
        ({"n_households": 0}, "n_households"),
        ({"n_intervals": 0}, "n_intervals"),
        ({"start_day": 365, "n_intervals": 97}, "n_intervals"),
        ({"start_day": 366}, "start_day"),
    ],
)
def test_bad_arguments_name_the_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        build_community(**{"n_households": 12, **arguments})  # type: ignore[arg-type]
    assert raised.value.field == field


def test_a_date_of_any_year_maps_to_the_reference_year() -> None:
    assert interval_of_day(dt.date(2024, 6, 10)) == interval_of_day(161) == 161 * 96
    assert interval_of_day(dt.date(2016, 12, 31)) == 365 * 96
    assert build_community(n_households=1, battery_count=0).start_date == dt.date(2016, 6, 10)
