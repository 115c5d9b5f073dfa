"""Grid-aware clearing on a real congested SimBench feeder, confirmed by pandapower's AC flow."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.grid import (
    CommunityGrid,
    GridLimits,
    GridSensitivities,
    clear_and_confirm,
    clear_grid_aware,
    compute_sensitivities,
    operating_point,
    place_on_grid,
    run_slot_power_flow,
    schedule_slot_p_mw,
    wh_to_mw,
)
from gridledger.iotools.simbench import load_lv_grid
from gridledger.market import Book, clear
from gridledger.market.orders import BUY, SELL
from gridledger.settlement import SettledTrade, net_interval
from gridledger.sim import Community, build_community

NOON = 48
CODE = "1-LV-rural2--0-sw"
SMALL_TRANSFORMER_MVA = 0.063  # the grid's own is 0.25 MVA


@pytest.fixture(scope="module")
def community() -> Community:
    return build_community(
        n_households=30,
        seed=3,
        pv_share=0.8,
        battery_count=0,
        grid_code=CODE,
        use_grid_sgens=False,
        pv_peak_w_range=(5_000, 10_000),
    )


def _grid(community: Community, **ratings: float) -> CommunityGrid:
    net = load_lv_grid(CODE)
    if "sn_mva" in ratings:
        net.trafo["sn_mva"] = ratings["sn_mva"]
    net.line["max_i_ka"] *= ratings.get("line_scale", 1.0)
    return place_on_grid(net, community.households)


@pytest.fixture(scope="module")
def congested(community: Community) -> tuple[CommunityGrid, GridSensitivities]:
    grid = _grid(community, sn_mva=SMALL_TRANSFORMER_MVA)
    return grid, compute_sensitivities(grid, sorted({h.bus for h in community.households}))


def _positions(community: Community) -> np.ndarray:
    return np.array([int(h.net_wh_before_battery[NOON]) for h in community.households])


def _slots(grid: CommunityGrid, community: Community, positions: np.ndarray) -> np.ndarray:
    slot = np.zeros(len(grid.buses))
    for household, net_wh in zip(community.households, positions, strict=True):
        slot[grid.position_of_bus(household.bus)] += float(wh_to_mw(int(net_wh), 900))
    return slot


def _book(positions: np.ndarray, ask_of: dict[int, int] | None = None) -> Book:
    rows = np.flatnonzero(positions)
    asks = ask_of or {}
    return Book.from_arrays(
        ids=rows,
        side=np.where(positions[rows] > 0, BUY, SELL),
        energy_wh=np.abs(positions[rows]),
        price_micro_per_kwh=[
            300_000 if positions[r] > 0 else asks.get(int(r), 80_000 + 1_000 * int(r)) for r in rows
        ],
    )


def test_the_plain_market_overloads_the_small_transformer_and_grid_aware_does_not(
    congested: tuple[CommunityGrid, GridSensitivities], community: Community
) -> None:
    grid, sensitivities = congested
    positions = _positions(community)
    book = _book(positions)
    buses = [community.households[i].bus for i in book.ids]
    confirmed = clear_and_confirm(
        grid,
        sensitivities,
        book,
        buses,
        book.side == SELL,
        _slots(grid, community, positions),
        grid_fee_micro_per_kwh=20_000,
    )
    assert confirmed.unconstrained_flow.max_trafo_loading_percent > 120.0
    assert confirmed.unconstrained_flow.violations() == ("max_trafo_loading_percent",)
    assert confirmed.flow.converged and confirmed.flow.violations() == ()
    assert 95.0 < confirmed.flow.max_trafo_loading_percent <= 100.0  # no needless curtailment
    clearing = confirmed.clearing
    assert clearing.residual_violation == 0.0
    assert clearing.curtailed_wh.dtype == np.int64
    assert clearing.curtailed_total_wh > 0
    assert not clearing.curtailed_wh[book.side == BUY].any()  # demand is never cut
    assert (clearing.curtailed_wh <= book.energy_wh).all()
    result = clearing.result
    assert (result.filled_wh + clearing.curtailed_wh <= book.energy_wh).all()
    trades = [
        SettledTrade(str(book.ids[b]), str(book.ids[s]), int(e), int(p), int(f))
        for b, s, e, p, f in zip(
            result.trades.buy_row,
            result.trades.sell_row,
            result.trades.energy_wh,
            result.trades.price_micro_per_kwh,
            result.trades.fee_micro_per_kwh,
            strict=True,
        )
    ]
    settlement = net_interval(trades, "grid-operator")  # settlement works unchanged
    assert sum(settlement.deltas_micro.values()) == 0
    assert settlement.traded_energy_wh == result.cleared_energy_wh


def test_a_transformer_limit_withholds_the_highest_asks_first(
    congested: tuple[CommunityGrid, GridSensitivities], community: Community
) -> None:
    grid, sensitivities = congested
    positions = _positions(community)
    book = _book(positions)
    buses = [community.households[i].bus for i in book.ids]
    clearing = clear_and_confirm(
        grid, sensitivities, book, buses, book.side == SELL, _slots(grid, community, positions)
    ).clearing
    sells = np.flatnonzero(book.side == SELL)
    asks = book.price_micro_per_kwh[sells]
    withheld_wh = clearing.curtailed_wh[sells]
    # every seller relieves the same transformer (up to its line losses), so the merit term
    # decides: the dearest offers are withheld in full, the cheapest are kept in full
    by_ask = np.argsort(asks)
    assert (withheld_wh[by_ask[-5:]] == book.energy_wh[sells][by_ask[-5:]]).all()
    assert not withheld_wh[by_ask[:10]].any()


def test_a_weak_line_curtails_cheap_sellers_behind_it_and_changes_trades(
    community: Community,
) -> None:
    grid = _grid(community, line_scale=0.16)
    buses = sorted({h.bus for h in community.households})
    sensitivities = compute_sensitivities(grid, buses)
    positions = _positions(community)
    slots = _slots(grid, community, positions)
    flow = run_slot_power_flow(grid, slots)
    assert flow.violations() == ("max_line_loading_percent",)
    point = operating_point(grid)
    worst_line = int(np.argmax(point.line_loading_percent))
    # sellers behind the overloaded line ask the least, so the plain auction sells theirs first
    behind = {
        i
        for i, h in enumerate(community.households)
        if abs(sensitivities.line_p_per_mw[worst_line, sensitivities.column_of_bus(h.bus)]) > 0.5
    }
    households = community.households
    offered = _book(positions, {i: 80_000 for i in behind})
    # a heat pump near the transformer wants all the cheap energy behind the weak line
    heat_pump_wh = int(offered.energy_wh[np.isin(offered.ids, sorted(behind))].sum())
    heat_pump_bus = int(grid.net.trafo.lv_bus.iloc[0])  # the LV busbar: no line in between
    book = Book.from_arrays(
        ids=np.append(offered.ids, 1_000),
        side=np.append(offered.side, BUY),
        energy_wh=np.append(offered.energy_wh, heat_pump_wh),
        price_micro_per_kwh=np.append(offered.price_micro_per_kwh, 300_000),
    )
    slots[grid.position_of_bus(heat_pump_bus)] += float(wh_to_mw(heat_pump_wh, 900))
    row_bus = [households[i].bus if i < len(households) else heat_pump_bus for i in book.ids]
    sensitivities = compute_sensitivities(grid, [*buses, heat_pump_bus])
    confirmed = clear_and_confirm(grid, sensitivities, book, row_bus, book.side == SELL, slots)
    assert confirmed.flow.violations() == ()
    withheld = {int(book.ids[r]) for r in np.flatnonzero(confirmed.clearing.curtailed_wh)}
    assert withheld and withheld <= behind
    assert confirmed.clearing.trades_changed > 0
    print(f"weak line: {confirmed.clearing.trades_changed} trades changed")


def test_within_limits_nothing_changes(community: Community) -> None:
    grid = _grid(community)  # the real 250 kVA transformer copes
    sensitivities = compute_sensitivities(grid, sorted({h.bus for h in community.households}))
    positions = _positions(community)
    slots = _slots(grid, community, positions)
    run_slot_power_flow(grid, slots)
    book = _book(positions)
    columns = [sensitivities.column_of_bus(community.households[i].bus) for i in book.ids]
    clearing = clear_grid_aware(
        book,
        columns,
        book.side == SELL,
        sensitivities,
        operating_point(grid),
        limits=GridLimits(),
    )
    plain = clear(book, "uniform")
    assert clearing.curtailed_total_wh == 0 and clearing.trades_changed == 0
    np.testing.assert_array_equal(clearing.result.filled_wh, plain.filled_wh)
    np.testing.assert_array_equal(clearing.result.trades.energy_wh, plain.trades.energy_wh)


def test_sensitivities_predict_the_ac_flow_near_the_point(
    congested: tuple[CommunityGrid, GridSensitivities], community: Community
) -> None:
    grid, sensitivities = congested
    far_bus = community.households[-1].bus
    zero = np.zeros(len(grid.buses))
    run_slot_power_flow(grid, zero)
    before = operating_point(grid)
    shifted = zero.copy()
    shifted[grid.position_of_bus(far_bus)] = -0.005  # 5 kW exported at one bus
    run_slot_power_flow(grid, shifted)
    after = operating_point(grid)
    column = sensitivities.column_of_bus(far_bus)
    predicted = sensitivities.vm_pu_per_mw[:, column] * 0.005
    np.testing.assert_allclose(after.vm_pu - before.vm_pu, predicted, rtol=0.05, atol=1e-6)
    assert sensitivities.trafo_p_per_mw[0, column] == pytest.approx(-1.0, abs=0.05)


def test_schedule_follows_the_withheld_energy(
    congested: tuple[CommunityGrid, GridSensitivities], community: Community
) -> None:
    grid, _ = congested
    book = Book.from_arrays(
        ids=[0, 1], side=[SELL, BUY], energy_wh=[1_000, 500], price_micro_per_kwh=[80_000, 300_000]
    )
    slot = grid.position_of_bus(community.households[0].bus)
    adjusted = schedule_slot_p_mw(
        grid, np.zeros(len(grid.buses)), book, [slot, slot], np.array([400, 100]), 900
    )
    assert adjusted[slot] == pytest.approx(wh_to_mw(400 - 100, 900))


def test_bad_rows_name_the_field(congested: tuple[CommunityGrid, GridSensitivities]) -> None:
    grid, sensitivities = congested
    book = Book.from_arrays(ids=[0], side=[SELL], energy_wh=[10], price_micro_per_kwh=[1])
    run_slot_power_flow(grid, np.zeros(len(grid.buses)))
    point = operating_point(grid)
    with pytest.raises(ValidationError, match="row_column"):
        clear_grid_aware(book, [len(sensitivities.buses)], [True], sensitivities, point)
    with pytest.raises(ValidationError, match="row_column"):
        clear_grid_aware(book, [0, 1], [True], sensitivities, point)
    with pytest.raises(ValidationError, match="bus"):
        sensitivities.column_of_bus(10_000)
