"""AC power flow of the community on real SimBench LV grids (real pandapower, no stand-ins)."""

from __future__ import annotations

import time

import pytest

from gridledger.errors import ValidationError
from gridledger.grid import (
    CommunityGrid,
    GridLimits,
    p_mw_by_bus,
    place_on_grid,
    run_power_flow,
    wh_to_mw,
)
from gridledger.iotools.simbench import DEFAULT_LV_GRID_CODE, grid_energy_wh, load_lv_grid
from gridledger.sim import Community, build_community

NOON, MIDNIGHT = 48, 0


@pytest.fixture(scope="module")
def community() -> Community:
    return build_community(n_households=12, seed=7)


@pytest.fixture(scope="module")
def grid(community: Community) -> CommunityGrid:
    net = load_lv_grid(community.grid_code)
    background = grid_energy_wh(net, community.start_interval // 96, community.n_intervals)
    return place_on_grid(net, community.households, background, engine="pandapower")


def _community_p_mw(grid: CommunityGrid, community: Community, interval: int) -> dict[int, float]:
    net_wh = {h.name: int(h.net_wh_before_battery[interval]) for h in community.households}
    return p_mw_by_bus(grid, net_wh, community.interval_length_s)


def test_converges_within_limits_and_balances_power(
    grid: CommunityGrid, community: Community
) -> None:
    for interval in (MIDNIGHT, NOON):
        p_mw = _community_p_mw(grid, community, interval)
        result = run_power_flow(grid, p_mw, interval)
        assert result.converged
        assert result.violations(GridLimits()) == ()
        assert 0.9 < result.min_vm_pu <= result.max_vm_pu < 1.1
        assert grid.background_p_mw is not None
        consumed_mw = sum(p_mw.values()) + float(grid.background_p_mw[:, interval].sum())
        losses_mw = float(grid.net.res_line.pl_mw.sum() + grid.net.res_trafo.pl_mw.sum())
        assert losses_mw > 0
        assert result.ext_grid_p_mw == pytest.approx(consumed_mw + losses_mw, abs=1e-6)


def test_the_feeder_imports_at_midnight_and_exports_at_a_sunny_noon(
    grid: CommunityGrid, community: Community
) -> None:
    night = run_power_flow(grid, _community_p_mw(grid, community, MIDNIGHT), MIDNIGHT)
    noon = run_power_flow(grid, _community_p_mw(grid, community, NOON), NOON)
    assert night.ext_grid_p_mw > 0
    assert noon.ext_grid_p_mw < 0
    assert noon.max_vm_pu > night.max_vm_pu  # PV export lifts voltages


def _weakest_bus(grid: CommunityGrid) -> int:
    run_power_flow(grid, {grid.buses[0]: 0.0}, MIDNIGHT)
    return int(grid.net.res_bus.vm_pu.idxmin())


def test_more_load_at_one_bus_loads_the_lines_more(grid: CommunityGrid) -> None:
    far_bus = _weakest_bus(grid)
    light = run_power_flow(grid, {far_bus: 0.005}, MIDNIGHT)
    heavy = run_power_flow(grid, {far_bus: 0.050}, MIDNIGHT)
    assert heavy.max_line_loading_percent > light.max_line_loading_percent
    assert heavy.min_vm_pu < light.min_vm_pu


def test_power_flows_reuse_the_prepared_net(grid: CommunityGrid) -> None:
    loads_before = len(grid.net.load)
    run_power_flow(grid, {}, MIDNIGHT)  # first flow compiles numba code
    started = time.perf_counter()
    for interval in range(20):
        assert run_power_flow(grid, {}, interval).converged
    per_flow_s = (time.perf_counter() - started) / 20
    assert len(grid.net.load) == loads_before
    assert per_flow_s < 0.5  # ~25 ms measured; generous for a shared machine


def test_placing_leaves_the_source_net_untouched(community: Community) -> None:
    net = load_lv_grid(community.grid_code)
    loads_before, in_service_before = len(net.load), int(net.load.in_service.sum())
    place_on_grid(net, community.households)
    assert (len(net.load), int(net.load.in_service.sum())) == (loads_before, in_service_before)


def test_an_impossible_load_does_not_converge_and_says_so(community: Community) -> None:
    grid = place_on_grid(
        load_lv_grid(community.grid_code), community.households, engine="pandapower"
    )
    run_power_flow(grid, {grid.buses[0]: 0.01})
    weakest_bus = int(grid.net.res_bus.vm_pu.idxmin())
    result = run_power_flow(grid, {weakest_bus: 5.0})  # 5 MW at the end of an LV feeder
    assert not result.converged
    assert result.violations() == ("converged",)
    assert run_power_flow(grid, {}).converged  # the net recovers for the next interval


def test_default_lv_grid_converges_with_its_own_profiles() -> None:
    net = load_lv_grid(DEFAULT_LV_GRID_CODE)
    energy = grid_energy_wh(net, 161, 96)
    grid = place_on_grid(net, [], energy)
    assert len(energy.load_index) == 13 and len(energy.sgen_index) == 4
    for interval in (MIDNIGHT, NOON):
        assert run_power_flow(grid, {}, interval).converged


def test_p_mw_by_bus_sums_households_sharing_a_bus(
    grid: CommunityGrid, community: Community
) -> None:
    first, second = community.households[:2]
    shared = CommunityGrid(
        net=grid.net,
        buses=grid.buses,
        slot_load_index=grid.slot_load_index,
        bus_by_household={first.name: first.bus, second.name: first.bus},
        background_p_mw=None,
    )
    assert p_mw_by_bus(shared, {first.name: 250, second.name: -125}, 900) == {
        first.bus: pytest.approx(0.0005)
    }
    assert float(wh_to_mw(250, 900)) == pytest.approx(0.001)  # 250 Wh in 15 min is 1 kW


def test_bad_inputs_name_the_field(grid: CommunityGrid) -> None:
    with pytest.raises(ValidationError, match="bus"):
        run_power_flow(grid, {10_000: 0.001}, MIDNIGHT)
    with pytest.raises(ValidationError, match="interval"):
        run_power_flow(grid, {}, None)
    with pytest.raises(ValidationError, match="net_wh_by_household"):
        p_mw_by_bus(grid, {"nobody": 10}, 900)
