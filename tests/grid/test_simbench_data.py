"""SimBench iotools: real profiles become int64 Wh per 15-minute interval."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import DataSourceError, ValidationError
from gridledger.iotools.simbench import (
    DEFAULT_LV_GRID_CODE,
    grid_energy_wh,
    load_lv_grid,
    load_profiles,
    mw_to_interval_wh,
    pv_profile_names,
    pv_profile_per_unit,
)


def test_grid_energy_is_the_absolute_profile_in_whole_wh() -> None:
    net = load_lv_grid(DEFAULT_LV_GRID_CODE)
    energy = grid_energy_wh(net, 161, 96)
    assert energy.load_wh.dtype == np.int64 and energy.sgen_wh.dtype == np.int64
    assert energy.load_wh.shape == (13, 96) and energy.sgen_wh.shape == (4, 96)
    assert energy.start_interval == 161 * 96
    p_mw = load_profiles(net)[("sgen", "p_mw")].to_numpy()[161 * 96 : 162 * 96].T
    np.testing.assert_array_equal(energy.sgen_wh, np.rint(p_mw * 250_000).astype(np.int64))
    assert (energy.load_wh >= 0).all() and (energy.sgen_wh >= 0).all()
    assert energy.sgen_wh[:, 48].sum() > 0 and energy.sgen_wh[:, 0].sum() == 0  # noon vs night


def test_interval_energy_rounds_to_whole_wh() -> None:
    assert mw_to_interval_wh(np.array([0.001, 0.0000021, 0.000002])).tolist() == [250, 1, 0]


def test_pv_profiles_are_per_unit_of_peak() -> None:
    net = load_lv_grid(DEFAULT_LV_GRID_CODE)
    names = pv_profile_names(net)
    assert names == ("PV5", "PV6", "PV8")
    per_unit = pv_profile_per_unit(net, names[0], 161, 96)
    assert 0.3 < per_unit.max() <= 1.0 and per_unit.min() >= 0.0
    with pytest.raises(DataSourceError, match="PV99"):
        pv_profile_per_unit(net, "PV99", 161, 96)


def test_loaded_nets_are_independent_copies() -> None:
    first = load_lv_grid(DEFAULT_LV_GRID_CODE)
    first.load.loc[:, "p_mw"] = 1.0
    assert (load_lv_grid(DEFAULT_LV_GRID_CODE).load.p_mw < 1.0).all()


def test_window_past_the_year_is_rejected() -> None:
    with pytest.raises(ValidationError, match="n_intervals"):
        grid_energy_wh(load_lv_grid(DEFAULT_LV_GRID_CODE), 365, 200)
