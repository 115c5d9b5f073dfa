"""Run a scenario: community, market, power flow and settlement for every interval.

This is an edge module (it loads SimBench data, runs the power flows and writes files); the
steps it calls are the pure domain functions: strategies quote, :func:`gridledger.market.clear`
(or the grid-aware :func:`gridledger.grid.clear_and_confirm`) clears, settlement settles.

Work that does not depend on the market is done once, for the whole run, before the loop:
flexible-load schedules, battery dispatch (batteries run for self-consumption), every
household's net position and every bus's power, and the AC power flow of every interval with
every order in full (one batch on power-grid-model; the scenario's ``grid.powerflow =
"pandapower"`` solves the same flows with pandapower). The loop then does, per interval, one
book, one clearing and one settlement (plus, only in intervals where that flow breaks a limit,
the grid-aware linear program and confirming flows).

The grid supplier is the buyer and seller of last resort: what a household does not trade
locally it imports at the import tariff or exports at the feed-in tariff (curtailed energy is
not paid). Chain "off" keeps settlement arithmetic in memory; chain "memory" hands each
interval to an :class:`IntervalRecorder` (the CLI wires one onto ``gridledger.ledger``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import zoneinfo
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import pandapower as pp

from gridledger.errors import ConfigError, ValidationError
from gridledger.grid import (
    BatchFlows,
    CommunityGrid,
    GridLimits,
    GridSensitivities,
    PowerFlowResult,
    clear_and_confirm,
    compute_sensitivities,
    flow_at,
    place_on_grid,
    run_batch_power_flow,
    wh_to_mw,
)
from gridledger.iotools.simbench import INTERVALS_PER_DAY, grid_energy_wh, load_lv_grid
from gridledger.market import Book, ClearingResult, clear
from gridledger.market.orders import BUY, SELL
from gridledger.preflight import atomic_write, check_output_dir
from gridledger.settlement import (
    IntervalSettlement,
    SettledTrade,
    Tariffs,
    net_interval,
)
from gridledger.sim.assets import Battery
from gridledger.sim.community import Community, HouseholdArrays, build_community
from gridledger.sim.flexible import ShiftableLoad, schedule_days
from gridledger.sim.kpis import EnergyTotals, compute_kpis
from gridledger.sim.pv import pvlib_clear_sky_per_unit
from gridledger.sim.results import IntervalSeries as IntervalSeries  # re-exported
from gridledger.sim.results import ScenarioResult as ScenarioResult  # re-exported
from gridledger.sim.scenario import Scenario, load_scenario
from gridledger.sim.settling import IntervalBooking, SettlementRules, Settler
from gridledger.sim.strategies import (
    Quotes,
    TariffBand,
    ZipTraders,
    truthful_quotes,
    zero_intelligence_quotes,
)

if TYPE_CHECKING:
    from gridledger.sim.devices import DeviceRun
    from gridledger.sim.dr import FlexBooks

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
GRID_OPERATOR = "grid-operator"
GRID_SUPPLIER = "grid-supplier"
DEFAULT_OUT_DIR = Path(".gridledger") / "sim"
Progress = Callable[[int, int], None]


class IntervalRecorder(Protocol):
    """Records one settled interval somewhere durable (a chain); returns the gas it used."""

    def record(
        self,
        interval: int,
        result: ClearingResult,
        settlement: IntervalSettlement,
        participants: Sequence[str],
        *,
        booking: IntervalBooking | None = None,  # what settlement books (flexibility awards)
        rules: SettlementRules | None = None,
    ) -> int: ...


STAGES = ("io", "assets", "power_flow", "strategies", "clearing", "settlement", "other")


@dataclass
class StageClock:
    """Wall seconds per stage of a run (``STAGES``): where a benchmark's time went."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    _mark: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        """Charge the time since the last lap to ``stage``."""
        now = time.perf_counter()
        self.seconds[stage] += now - self._mark
        self._mark = now

    def move(self, seconds: float, source: str, target: str) -> None:
        """Re-book ``seconds`` measured inside ``source`` (e.g. flows inside the clearing)."""
        self.seconds[source] -= seconds
        self.seconds[target] += seconds


@dataclass(frozen=True, eq=False)
class Physics:
    """Everything the market does not change, for the whole run (rows: households)."""

    community: Community
    homes: HouseholdArrays
    load_wh: Int64Array  # household load including flexible load
    pv_wh: Int64Array
    net_wh: Int64Array  # after batteries: + needs energy, - has surplus
    soc_wh: Int64Array  # one row per battery
    battery_capacity_wh: Int64Array
    slot_p_mw: FloatArray  # (buses, intervals): consumption with every order in full
    grid: CommunityGrid
    sensitivities: GridSensitivities | None
    unconstrained: BatchFlows  # the flow of every interval without grid awareness (one batch)
    clock: StageClock
    devices: DeviceRun | None = None  # EVs, heat pumps, wind (in load_wh / pv_wh already)


@dataclass
class _Accounts:
    market_bill_micro: Int64Array
    settler: Settler
    buy_orders_wh: int = 0
    gas_used: int = 0
    grid_aware_intervals: int = 0
    unresolved_intervals: int = 0
    fees_micro: int = 0
    zip_traders: ZipTraders | None = None


def limits_of(scenario: Scenario) -> GridLimits:
    return GridLimits(
        scenario.max_line_loading_percent,
        scenario.max_trafo_loading_percent,
        scenario.min_vm_pu,
        scenario.max_vm_pu,
    )


def build_net(scenario: Scenario) -> pp.pandapowerNet:
    """The scenario's SimBench grid with its rating overrides applied."""
    net = load_lv_grid(scenario.grid_code)
    if scenario.transformer_sn_mva is not None:
        net.trafo["sn_mva"] = scenario.transformer_sn_mva
    net.line["max_i_ka"] = net.line["max_i_ka"] * scenario.line_rating_scale
    return net


def _own_profiles(scenario: Scenario) -> tuple[tuple[str, ...], Int64Array, Int64Array | None]:
    """The households' own load (and PV) over the run's window, from ``[profiles]``."""
    from gridledger.iotools.profiles import pv_of, read_profiles

    assert scenario.profile_load is not None
    try:
        zone = zoneinfo.ZoneInfo(scenario.profile_timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "profiles.timezone", f"unknown time zone {scenario.profile_timezone!r}"
        ) from None
    start = dt.datetime.combine(scenario.start_date, dt.time(), zone)
    start_s, n = int(start.timestamp()), scenario.n_intervals
    loads = read_profiles(scenario.profile_load, scenario.interval_length_s)
    load_wh = loads.window(start_s, n)
    if scenario.profile_pv is None:
        return loads.names, load_wh, None
    pvs = pv_of(scenario.profile_pv, scenario.interval_length_s)
    unknown = sorted(set(pvs.names) - set(loads.names))
    if unknown:
        raise ValidationError("profiles.pv", f"households without a load profile: {unknown}")
    pv_window = pvs.window(start_s, n)
    pv_wh = np.zeros_like(load_wh)
    for row, name in enumerate(pvs.names):
        pv_wh[loads.names.index(name)] = pv_window[row]
    return loads.names, load_wh, pv_wh


def _with_profiles(community: Community, scenario: Scenario) -> Community:
    names, load_wh, pv_wh = _own_profiles(scenario)
    source = f"profile {Path(scenario.profile_pv).name}" if scenario.profile_pv else ""
    households = []
    for row, household in enumerate(community.households):
        changes: dict[str, Any] = {"name": names[row], "load_wh": _frozen(load_wh[row])}
        if pv_wh is not None:
            has_pv = bool(pv_wh[row].any())
            changes |= {
                "pv_wh": _frozen(pv_wh[row]),
                "pv_source": source if has_pv else "",
                "pv_sgen_index": None,
            }
        households.append(dataclasses.replace(household, **changes))
    return dataclasses.replace(community, households=tuple(households))


def _frozen(values: Int64Array) -> Int64Array:
    copy = np.array(values, dtype=np.int64, copy=True)
    copy.setflags(write=False)
    return copy


def build_scenario_community(scenario: Scenario) -> Community:
    """The scenario's households on its grid; with ``[profiles]``, on the user's own data."""
    if scenario.profile_load is not None:
        households = len(_own_profiles(scenario)[0])
        placed = build_scenario_community(
            scenario.replace(households=households, profile_load=None, profile_pv=None)
        )
        return _with_profiles(placed, scenario)
    pv_per_unit = (
        pvlib_clear_sky_per_unit(
            scenario.latitude,
            scenario.longitude,
            scenario.start_date,
            scenario.n_intervals,
            tilt_deg=scenario.tilt_deg,
            azimuth_deg=scenario.azimuth_deg,
        )
        if scenario.pv_source == "pvlib"
        else None
    )
    return build_community(
        n_households=scenario.households,
        seed=scenario.seed,
        pv_share=scenario.pv_share,
        battery_count=round(scenario.battery_share * scenario.households),
        grid_code=scenario.grid_code,
        start_day=scenario.start_date,
        n_intervals=scenario.n_intervals,
        pv_peak_w_range=(scenario.pv_peak_w_min, scenario.pv_peak_w_max),
        battery_template=Battery(scenario.battery_capacity_wh, scenario.battery_max_power_w),
        use_grid_sgens=False,  # the grid's sgens are farm-sized, not rooftops
        pv_per_unit=pv_per_unit,
    )


def _flexible_wh(scenario: Scenario, community: Community) -> Int64Array:
    """Flexible load per household: a shiftable load placed where community surplus peaks."""
    n, steps = len(community.households), community.n_intervals
    flexible = np.zeros((n, steps), dtype=np.int64)
    count = round(scenario.flexible_share * n)
    if count == 0 or scenario.flexible_daily_energy_wh == 0:
        return flexible
    per_hour = INTERVALS_PER_DAY // 24
    load = ShiftableLoad(
        scenario.flexible_daily_energy_wh,
        scenario.flexible_max_power_w,
        scenario.flexible_window_start_hour * per_hour,
        scenario.flexible_window_end_hour * per_hour,
    )
    surplus = sum(h.pv_wh - h.load_wh for h in community.households)
    schedule = schedule_days(load, surplus, community.interval_length_s, INTERVALS_PER_DAY)
    chosen = np.random.default_rng(scenario.seed + 1).permutation(n)[:count]
    flexible[chosen] = schedule
    return flexible


def _dispatch_batteries(
    homes: HouseholdArrays, net_before_wh: Int64Array, interval_length_s: int
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Self-consumption dispatch of every battery over the run (independent of the market)."""
    fleet = homes.batteries
    flow_wh, soc = fleet.dispatch(net_before_wh[fleet.owner], interval_length_s)
    net_wh = net_before_wh.copy()
    net_wh[fleet.owner] += flow_wh  # one battery per owner
    return net_wh, soc, fleet.capacity_wh.copy()


def prepare_physics(scenario: Scenario) -> Physics:
    """Community, assets and every interval's bus powers, computed once for the whole run."""
    clock = StageClock()
    community = build_scenario_community(scenario)
    households = community.households
    homes = community.arrays()
    clock.lap("io")
    load_wh = homes.load_wh + _flexible_wh(scenario, community)
    pv_wh = homes.pv_wh
    devices = _devices(scenario, load_wh, pv_wh)
    if devices is not None:  # wind counts as local generation next to PV
        load_wh, pv_wh = load_wh + devices.load_wh, pv_wh + devices.generation_wh
    net_wh, soc, capacity = _dispatch_batteries(homes, load_wh - pv_wh, scenario.interval_length_s)
    clock.lap("assets")
    net = build_net(scenario)
    background = (
        grid_energy_wh(net, scenario.start_date, scenario.n_intervals)
        if scenario.background
        else None
    )
    clock.lap("io")
    grid = place_on_grid(net, households, background, engine=scenario.powerflow)
    slot_p_mw = (
        grid.background_p_mw.copy()
        if grid.background_p_mw is not None
        else np.zeros((len(grid.buses), scenario.n_intervals))
    )
    rows = [grid.position_of_bus(int(bus)) for bus in homes.bus]
    np.add.at(slot_p_mw, rows, wh_to_mw(net_wh, community.interval_length_s))
    sensitivities = (
        compute_sensitivities(grid, sorted({h.bus for h in households}))
        if scenario.grid_aware
        else None
    )
    unconstrained = run_batch_power_flow(grid, slot_p_mw)
    clock.lap("power_flow")
    return Physics(
        community,
        homes,
        load_wh,
        pv_wh,
        net_wh,
        soc,
        capacity,
        slot_p_mw,
        grid,
        sensitivities,
        unconstrained,
        clock,
        devices,
    )


def _devices(scenario: Scenario, load_wh: Int64Array, pv_wh: Int64Array) -> DeviceRun | None:
    if not scenario.devices.any:
        return None
    from gridledger.sim.devices import simulate_devices

    return simulate_devices(
        scenario.devices,
        load_wh.shape[0],
        load_wh,
        pv_wh,
        scenario.start_date,
        scenario.interval_length_s,
        scenario.seed,
    )


def _quotes(
    scenario: Scenario,
    positions: Int64Array,
    band: TariffBand,
    rng: np.random.Generator,
    acc: _Accounts,
) -> Quotes:
    if scenario.strategy == "truthful":
        return truthful_quotes(positions, band)
    if scenario.strategy == "zi":
        return zero_intelligence_quotes(positions, band, rng)
    if acc.zip_traders is None:
        acc.zip_traders = ZipTraders.start(positions.shape[0])
    return acc.zip_traders.quotes(positions, band)


def _book(quotes: Quotes) -> Book:
    return Book.from_arrays(
        quotes.rows,
        np.where(quotes.is_buy, BUY, SELL).astype(np.int64),
        quotes.energy_wh,
        quotes.price_micro_per_kwh,
    )


def _record_flow(series: IntervalSeries, step: int, flow: PowerFlowResult) -> None:
    series.max_line_loading_percent[step] = flow.max_line_loading_percent
    series.max_trafo_loading_percent[step] = flow.max_trafo_loading_percent
    series.min_vm_pu[step] = flow.min_vm_pu
    series.max_vm_pu[step] = flow.max_vm_pu
    series.ext_grid_p_mw[step] = flow.ext_grid_p_mw


def _trades(names: Sequence[str], result: ClearingResult) -> list[SettledTrade]:
    ids, t = result.book.ids, result.trades
    return [
        SettledTrade(names[ids[b]], names[ids[s]], e, p, f)
        for b, s, e, p, f in zip(
            t.buy_row.tolist(),
            t.sell_row.tolist(),
            t.energy_wh.tolist(),
            t.price_micro_per_kwh.tolist(),
            t.fee_micro_per_kwh.tolist(),
            strict=True,
        )
    ]


def _book_settlement(
    result: ClearingResult,
    curtailed_wh: Int64Array,
    acc: _Accounts,
    series: IntervalSeries,
    step: int,
    flex: FlexBooks | None = None,
) -> IntervalBooking:
    """Hand the interval to settlement, and count the energy traded with the supplier.

    A household delivers its order less what the grid-aware clearing curtailed (curtailed
    energy is neither delivered nor paid); what it did not trade locally is its imbalance with
    the grid supplier, at the import or feed-in tariff (``settle_with_delivery``).
    """
    book, t = result.book, result.trades
    is_buy = book.side == BUY
    booking = IntervalBooking(
        rows=book.ids,
        is_buy=is_buy,
        delivered_wh=book.energy_wh - curtailed_wh,
        buy_rows=book.ids[t.buy_row],
        sell_rows=book.ids[t.sell_row],
        energy_wh=t.energy_wh,
        price_micro_per_kwh=t.price_micro_per_kwh,
        fee_micro_per_kwh=t.fee_micro_per_kwh,
        flexibility=() if flex is None else flex.deliveries(step, book.ids, curtailed_wh),
    )
    acc.settler.add(booking)
    residual_wh = book.energy_wh - result.filled_wh - curtailed_wh
    acc.buy_orders_wh += int(book.energy_wh[is_buy].sum())
    series.supplier_import_wh[step] = int(residual_wh[is_buy].sum())
    series.supplier_export_wh[step] = int(residual_wh[~is_buy].sum())
    return booking


def _learn(
    scenario: Scenario, book: Book, price: int | None, band: TariffBand, acc: _Accounts
) -> None:
    """ZIP traders move towards what the market paid; a stalled market pulls them together.

    A buyer's target is the all-in price (clearing price plus grid fee), what it really paid;
    without that a buyer settles on a bid that, net of the fee, no longer meets any ask. When
    both sides quoted but nothing cleared, buyers raise towards the import tariff and sellers
    lower towards feed-in (Cliff's rule for an unaccepted shout).
    """
    if scenario.strategy != "zip" or not len(book) or acc.zip_traders is None:
        return
    stalled = price is None and 0 < book.n_buys < len(book)
    is_buy = book.side == BUY
    if stalled:
        buy_target, sell_target = band.import_price_micro_per_kwh, band.feed_in_price_micro_per_kwh
    elif price is not None:
        buy_target, sell_target = price + scenario.grid_fee_micro_per_kwh, price
    else:
        return  # no price and not stalled: nobody learns anything
    target = np.where(is_buy, buy_target, sell_target).astype(np.int64)
    acc.zip_traders = acc.zip_traders.observe(book.ids, is_buy, target, band)


def _run_interval(
    scenario: Scenario,
    physics: Physics,
    step: int,
    band: TariffBand,
    rng: np.random.Generator,
    acc: _Accounts,
    series: IntervalSeries,
    flex: FlexBooks | None = None,
) -> tuple[ClearingResult, IntervalBooking]:
    clock, flow_s = physics.clock, physics.grid.clock.seconds
    book = _book(_quotes(scenario, physics.net_wh[:, step], band, rng, acc))
    clock.lap("strategies")
    slot_p_mw = physics.slot_p_mw[:, step]
    curtailed = np.zeros(len(book), dtype=np.int64)
    unconstrained = flow_at(physics.unconstrained, step)
    if physics.sensitivities is not None and len(book):
        buses = physics.homes.bus[book.ids]
        confirmed = clear_and_confirm(
            physics.grid,
            physics.sensitivities,
            book,
            buses,
            book.side == SELL,
            slot_p_mw,
            limits=limits_of(scenario),
            interval_length_s=scenario.interval_length_s,
            mechanism=scenario.mechanism,
            grid_fee_micro_per_kwh=scenario.grid_fee_micro_per_kwh,
            base_flow=unconstrained,
        )
        result, flow = confirmed.clearing.result, confirmed.flow
        curtailed = confirmed.clearing.curtailed_wh
        series.trades_changed[step] = confirmed.clearing.trades_changed
        acc.grid_aware_intervals += int(confirmed.attempts > 0)
        acc.unresolved_intervals += int(bool(flow.violations(limits_of(scenario))))
    else:
        result = clear(book, scenario.mechanism, scenario.grid_fee_micro_per_kwh)
        flow = unconstrained
    clock.lap("clearing")
    clock.move(physics.grid.clock.seconds - flow_s, "clearing", "power_flow")
    _record_flow(series, step, flow)
    series.unconstrained_max_trafo_loading_percent[step] = unconstrained.max_trafo_loading_percent
    series.unconstrained_over_limits[step] = bool(unconstrained.violations(limits_of(scenario)))
    clock.lap("other")
    booking = _book_settlement(result, curtailed, acc, series, step, flex)
    clock.lap("settlement")
    price = result.clearing_price_micro_per_kwh
    if result.cleared_energy_wh:
        series.clearing_price_micro_per_kwh[step] = (
            price if price is not None else _paid_micro(result) * 1000 / result.cleared_energy_wh
        )
    series.local_traded_wh[step] = result.cleared_energy_wh
    series.curtailed_wh[step] = int(curtailed.sum())
    series.trades[step] = len(result.trades)
    clock.lap("other")
    _learn(scenario, book, price, band, acc)
    clock.lap("strategies")
    return result, booking


def _paid_micro(result: ClearingResult) -> int:
    """What buyers pay sellers, each trade floored like ``trade_amount_micro``."""
    t = result.trades
    return int((t.energy_wh * t.price_micro_per_kwh // 1000).sum())


def baseline_bills_micro(net_wh: Int64Array, scenario: Scenario) -> Int64Array:
    """Each household's bill without a market: imports at the tariff, exports at feed-in."""
    imported = np.clip(net_wh, 0, None) * scenario.import_price_micro_per_kwh // 1000
    exported = np.clip(-net_wh, 0, None) * scenario.feed_in_price_micro_per_kwh // 1000
    bills: Int64Array = (imported - exported).sum(axis=1)
    return bills


def run_scenario(
    source: Scenario | str | Path,
    progress: Progress | None = None,
    *,
    out_dir: str | Path | None = None,
    recorder: IntervalRecorder | None = None,
    write_files: bool = True,
) -> ScenarioResult:
    """Run every interval of a scenario; write ``summary.json`` and ``report.html``.

    ``progress(done, total)`` is called after each interval. Files go to ``out_dir``
    (default ``.gridledger/sim/<scenario name>``) unless ``write_files`` is False.
    """
    scenario = source if isinstance(source, Scenario) else load_scenario(source)
    if scenario.chain == "memory" and recorder is None:
        raise ConfigError(
            "run.chain: 'memory' needs an IntervalRecorder (the CLI wires the ledger); "
            'use chain = "off" for market, power flow and settlement arithmetic only'
        )
    folder = Path(out_dir) if out_dir is not None else DEFAULT_OUT_DIR / scenario.name
    if write_files:
        check_output_dir(folder)  # before the run, not after it
    began = time.perf_counter()
    physics = prepare_physics(scenario)
    prepared_s = time.perf_counter() - began
    plan, without_dr = None, None
    if scenario.flexibility:  # the same run without DR first: the baseline and the comparison
        from gridledger.sim.dr import plan_demand_response

        acc, series = _market_run(scenario, physics, None, None)
        without_dr = _finish(scenario, physics, acc, series, 0.0, prepared_s)
        plan = plan_demand_response(scenario, physics, _flexible_wh(scenario, physics.community))
    baseline_net_wh = physics.net_wh
    if plan is not None:
        physics = plan.physics
    acc, series = _market_run(
        scenario, physics, recorder, progress, None if plan is None else plan.books
    )
    physics.clock.lap("settlement")  # what the loop waited for the settling worker
    result = _finish(
        scenario,
        physics,
        acc,
        series,
        time.perf_counter() - began,
        prepared_s,
        baseline_net_wh,
    )
    if plan is not None and without_dr is not None:
        from gridledger.sim.dr import flexibility_summary

        result.summary["flexibility"] = flexibility_summary(
            scenario,
            without_dr.summary,
            result.summary,
            plan,
            acc.settler.flexibility_paid_micro,
            acc.settler.flexibility_delivered_wh,
        )
    physics.clock.lap("other")
    if not write_files:
        return dataclasses.replace(result, stage_seconds=dict(physics.clock.seconds))
    from gridledger.sim.report import write_report

    folder.mkdir(parents=True, exist_ok=True)
    json_path = atomic_write(
        folder / "summary.json", json.dumps(result.summary, indent=2, default=str)
    )
    html_path = write_report(result, folder / "report.html")
    physics.clock.lap("io")
    return dataclasses.replace(
        result,
        json_path=json_path,
        html_path=html_path,
        stage_seconds=dict(physics.clock.seconds),
    )


def _market_run(
    scenario: Scenario,
    physics: Physics,
    recorder: IntervalRecorder | None,
    progress: Progress | None,
    flex: FlexBooks | None = None,
) -> tuple[_Accounts, IntervalSeries]:
    """Every interval's market, clearing and settlement on ``physics``."""
    n_steps, names = scenario.n_intervals, [h.name for h in physics.community.households]
    band = TariffBand(scenario.feed_in_price_micro_per_kwh, scenario.import_price_micro_per_kwh)
    rng = np.random.default_rng(scenario.seed)
    tariffs = Tariffs(scenario.import_price_micro_per_kwh, scenario.feed_in_price_micro_per_kwh)
    rules = SettlementRules(tuple(names), tariffs, GRID_OPERATOR, GRID_SUPPLIER)
    # with a recorder the loop waits for the chain anyway: settle in-process
    acc = _Accounts(
        market_bill_micro=np.zeros(len(names), dtype=np.int64),
        settler=Settler(rules, n_steps if recorder is None else 0),
    )
    series = IntervalSeries.empty(n_steps)
    series.demand_wh[:] = physics.load_wh.sum(axis=0)
    series.pv_generated_wh[:] = physics.pv_wh.sum(axis=0)
    physics.clock.lap("other")
    try:
        for step in range(n_steps):
            cleared, booking = _run_interval(scenario, physics, step, band, rng, acc, series, flex)
            if recorder is not None:  # the chain settles the local trades (netted)
                netted = net_interval(_trades(names, cleared), GRID_OPERATOR)
                acc.gas_used += recorder.record(
                    step, cleared, netted, names, booking=booking, rules=rules
                )
            if progress is not None:
                progress(step + 1, n_steps)
        physics.clock.lap("other")
        bills_micro, acc.fees_micro = acc.settler.totals()
    finally:
        acc.settler.close()
    acc.market_bill_micro += bills_micro
    return acc, series


def _finish(
    scenario: Scenario,
    physics: Physics,
    acc: _Accounts,
    series: IntervalSeries,
    wall_time_s: float,
    prepared_s: float,
    baseline_net_wh: Int64Array | None = None,
) -> ScenarioResult:
    # with DR the baseline (no market) is still the schedule without DR
    net_wh = physics.net_wh if baseline_net_wh is None else baseline_net_wh
    baseline = baseline_bills_micro(net_wh, scenario)
    limits = limits_of(scenario)
    energy = EnergyTotals.of(series, acc.buy_orders_wh)
    kpis = compute_kpis(
        series,
        int(baseline.sum()),
        int(acc.market_bill_micro.sum()),
        (limits.min_vm_pu, limits.max_vm_pu),
        scenario.interval_length_s,
        acc.gas_used,
    )
    names = tuple(h.name for h in physics.community.households)
    summary = {
        "scenario": {k: v for k, v in scenario.__dict__.items()},
        "kpis": kpis.to_dict(),
        "energy_wh": energy.__dict__,
        "intervals": scenario.n_intervals,
        "households": len(names),
        "batteries": int(physics.soc_wh.shape[0]),
        "trades": int(series.trades.sum()),
        "grid_fees_micro": acc.fees_micro,
        "grid_aware_intervals": acc.grid_aware_intervals,
        "trades_changed_by_grid_awareness": int(series.trades_changed.sum()),
        "intervals_over_limits": int(_over_limits(series, limits).sum()),
        "intervals_over_limits_without_grid_awareness": int(series.unconstrained_over_limits.sum()),
        "unresolved_intervals": acc.unresolved_intervals,
        "bills_micro": {
            name: {"baseline": int(b), "market": int(m)}
            for name, b, m in zip(names, baseline, acc.market_bill_micro, strict=True)
        },
        "wall_time_s": round(wall_time_s, 2),
        "setup_time_s": round(prepared_s, 2),
    }
    if physics.devices is not None:
        from gridledger.sim.devices import device_kpis

        summary["devices"] = device_kpis(physics.devices)
    return ScenarioResult(
        scenario=scenario,
        kpis=kpis,
        summary=summary,
        series=series,
        household_names=names,
        baseline_bill_micro=baseline,
        market_bill_micro=acc.market_bill_micro.copy(),
        soc_wh=physics.soc_wh,
        battery_capacity_wh=physics.battery_capacity_wh,
    )


def _over_limits(series: IntervalSeries, limits: GridLimits) -> npt.NDArray[np.bool_]:
    within = (
        (series.max_line_loading_percent <= limits.max_line_loading_percent)
        & (series.max_trafo_loading_percent <= limits.max_trafo_loading_percent)
        & (series.min_vm_pu >= limits.min_vm_pu)
        & (series.max_vm_pu <= limits.max_vm_pu)
    )
    return ~within
