"""The time-series fast path (warm start + recycled matrices) gives pandapower's own answer."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from gridledger.grid import place_on_grid, run_slot_power_flow, wh_to_mw
from gridledger.iotools.simbench import load_lv_grid
from gridledger.sim import build_community


def test_recycled_flows_match_fresh_flows_interval_by_interval() -> None:
    community = build_community(
        n_households=20, seed=2, pv_share=0.6, battery_count=0, use_grid_sgens=False
    )
    grid = place_on_grid(
        load_lv_grid(community.grid_code), community.households, engine="pandapower"
    )
    for interval in (0, 30, 48, 52, 80):  # night, morning, noon (export), evening
        slots = np.zeros(len(grid.buses))
        for household in community.households:
            slots[grid.position_of_bus(household.bus)] += float(
                wh_to_mw(int(household.net_wh_before_battery[interval]), 900)
            )
        fast = run_slot_power_flow(grid, slots)
        fresh = copy.deepcopy(grid.net)
        pp.runpp(fresh, init="auto", numba=True)
        assert fast.converged
        np.testing.assert_allclose(grid.net.res_bus.vm_pu, fresh.res_bus.vm_pu, atol=1e-8)
        np.testing.assert_allclose(
            grid.net.res_line.loading_percent, fresh.res_line.loading_percent, atol=1e-6
        )
        assert fast.ext_grid_p_mw == pytest.approx(float(fresh.res_ext_grid.p_mw.sum()), abs=1e-9)
