"""Demand response in a simulated run: the DSO's requests, the flexibility market, the plan.

The edge around :mod:`gridledger.flex` for :func:`gridledger.sim.runner.run_scenario`:

1. the day-ahead forecast is the run's own physics without DR (perfect forecast): its batch
   power flow gives the DSO's requests (:func:`~gridledger.flex.requests_from_forecast`);
2. households with a battery or a shiftable load offer "up" flexibility
   (:mod:`gridledger.flex.planning`), the market clears per zone and interval (merit order,
   pay-as-cleared, :func:`~gridledger.flex.clear_flex`);
3. the awarded households plan around the events; the new schedule's power flow is forecast
   again and, while it still breaks a limit, the DSO asks for more (at most ``ROUNDS`` times);
4. in the market loop every interval's awards settle with the energy (``FlexBooks``): the
   baseline is the schedule without DR, the meters give the rest (:mod:`gridledger.flex.baseline`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from gridledger.flex import FlexAward, FlexOffer, FlexRequest, Limits, ZoneForecast, clear_flex
from gridledger.flex.forecast import merge_requests, requests_from_forecast
from gridledger.flex.planning import (
    Fleet,
    battery_up_offers_wh,
    load_up_offers_wh,
    plan_batteries,
    shift_loads,
)
from gridledger.grid import BatchFlows, run_batch_power_flow, wh_to_mw
from gridledger.iotools.simbench import INTERVALS_PER_DAY
from gridledger.settlement import FlexDelivery

if TYPE_CHECKING:
    from gridledger.sim.runner import Physics
    from gridledger.sim.scenario import Scenario

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ROUNDS = 3
_SECONDS_PER_HOUR = 3600


def zone_of(scenario: Scenario) -> str:
    """One LV feeder behind one transformer: one zone."""
    return f"{scenario.grid_code}/trafo"


def interval_starts_s(scenario: Scenario) -> Int64Array:
    first = int(dt.datetime.combine(scenario.start_date, dt.time(), dt.UTC).timestamp())
    starts: Int64Array = first + np.arange(scenario.n_intervals, dtype=np.int64) * (
        scenario.interval_length_s
    )
    return starts


def forecast_of(scenario: Scenario, flows: BatchFlows) -> ZoneForecast:
    return ZoneForecast(
        zone_of(scenario),
        interval_starts_s(scenario),
        flows.ext_grid_p_mw,
        flows.max_trafo_loading_percent,
        flows.max_line_loading_percent,
        flows.min_vm_pu,
        flows.max_vm_pu,
    )


def limits_of(scenario: Scenario) -> Limits:
    return Limits(
        scenario.max_line_loading_percent,
        scenario.max_trafo_loading_percent,
        scenario.min_vm_pu,
        scenario.max_vm_pu,
    )


@dataclass(frozen=True, eq=False)
class FlexBooks:
    """The run's awards as arrays (households x intervals), handed to settlement per interval."""

    names: tuple[str, ...]
    awarded_wh: Int64Array
    price_micro_per_kwh: Int64Array  # the interval's clearing price (0 where nothing cleared)
    baseline_net_wh: Int64Array  # the signed schedule without DR

    def deliveries(
        self, step: int, rows: Int64Array, curtailed_wh: Int64Array
    ) -> tuple[FlexDelivery, ...]:
        """The interval's awards; ``curtailed_wh`` per book row (the DSO's own curtailment)."""
        curtailed = dict(zip(rows.tolist(), curtailed_wh.tolist(), strict=True))
        return tuple(
            FlexDelivery(
                self.names[h],
                "up",
                int(self.baseline_net_wh[h, step]),
                int(self.awarded_wh[h, step]),
                int(self.price_micro_per_kwh[step]),
                int(curtailed.get(h, 0)),
            )
            for h in np.flatnonzero(self.awarded_wh[:, step]).tolist()
        )


@dataclass(frozen=True, eq=False)
class DrPlan:
    requests: tuple[FlexRequest, ...]
    offers: tuple[FlexOffer, ...]
    awards: tuple[FlexAward, ...]
    books: FlexBooks
    physics: Physics  # the run's physics planned around the awards
    rounds: int


def _requested_w(requests: tuple[FlexRequest, ...], starts: Int64Array) -> FloatArray:
    index = {int(s): k for k, s in enumerate(starts.tolist())}
    wanted = np.zeros(starts.shape[0])
    for r in requests:
        if r.direction == "up" and r.start in index:
            wanted[index[r.start]] += r.power_w
    return wanted


def _offers(
    names: tuple[str, ...],
    zone: str,
    starts: Int64Array,
    energy_wh: Int64Array,
    price: int,
    interval_length_s: int,
) -> list[FlexOffer]:
    rows, steps = np.nonzero(energy_wh)
    return [
        FlexOffer(names[h], zone, "up", power, int(starts[t]), price)
        for h, t in zip(rows.tolist(), steps.tolist(), strict=True)
        if (power := int(energy_wh[h, t]) * _SECONDS_PER_HOUR // interval_length_s) > 0
    ]


def _award_matrix(
    awards: tuple[FlexAward, ...], names: tuple[str, ...], starts: Int64Array
) -> tuple[Int64Array, Int64Array]:
    row = {n: k for k, n in enumerate(names)}
    col = {int(s): k for k, s in enumerate(starts.tolist())}
    awarded = np.zeros((len(names), starts.shape[0]), dtype=np.int64)
    price = np.zeros(starts.shape[0], dtype=np.int64)
    for a in awards:
        awarded[row[a.participant], col[a.interval_start]] += a.energy_wh
        price[col[a.interval_start]] = a.price_micro_per_kwh
    return awarded, price


def _replanned(
    physics: Physics, load_wh: Int64Array, net_wh: Int64Array, soc_wh: Int64Array
) -> Physics:
    """The physics with a new schedule: bus powers and the batch power flow again."""
    grid, interval_s = physics.grid, physics.community.interval_length_s
    slot = (
        grid.background_p_mw.copy()
        if grid.background_p_mw is not None
        else np.zeros_like(physics.slot_p_mw)
    )
    rows = [grid.position_of_bus(int(bus)) for bus in physics.homes.bus]
    np.add.at(slot, rows, wh_to_mw(net_wh, interval_s))
    flows = run_batch_power_flow(grid, slot)
    return dataclasses.replace(
        physics, load_wh=load_wh, net_wh=net_wh, soc_wh=soc_wh, slot_p_mw=slot, unconstrained=flows
    )


def plan_demand_response(scenario: Scenario, physics: Physics, flexible_wh: Int64Array) -> DrPlan:
    """Requests, offers, awards and the planned physics (see the module docstring)."""
    homes, interval_s = physics.homes, scenario.interval_length_s
    names, zone, starts = homes.names, zone_of(scenario), interval_starts_s(scenario)
    fleet_arrays = homes.batteries
    fleet = Fleet(
        fleet_arrays.capacity_wh,
        fleet_arrays.max_power_w,
        fleet_arrays.round_trip_efficiency,
        fleet_arrays.soc_wh,
    )
    owners = fleet_arrays.owner
    need = (physics.load_wh - physics.pv_wh)[owners]
    baseline_flow = physics.net_wh[owners] - need
    base_load = physics.load_wh - flexible_wh
    has_load = flexible_wh.sum(axis=1) > 0
    requests = requests_from_forecast(
        forecast_of(scenario, physics.unconstrained),
        limits_of(scenario),
        scenario.flex_request_price_micro_per_kwh,
        margin=scenario.flex_margin,
    )
    planned, rounds = physics, 0
    offers: tuple[FlexOffer, ...] = ()
    awards: tuple[FlexAward, ...] = ()
    awarded = np.zeros_like(physics.net_wh)
    price = np.zeros(starts.shape[0], dtype=np.int64)
    while requests and rounds < ROUNDS:
        rounds += 1
        wanted = _requested_w(requests, starts)
        battery_offer = np.zeros_like(physics.net_wh)
        battery_offer[owners] = battery_up_offers_wh(
            fleet, need, baseline_flow, wanted, interval_s, INTERVALS_PER_DAY
        )
        load_offer = np.where(
            has_load[:, None],
            load_up_offers_wh(
                flexible_wh, scenario.flexible_max_power_w, wanted, interval_s, INTERVALS_PER_DAY
            ),
            0,
        )
        offers = tuple(
            _offers(
                names,
                zone,
                starts,
                battery_offer,
                scenario.flex_battery_price_micro_per_kwh,
                interval_s,
            )
            + _offers(
                names, zone, starts, load_offer, scenario.flex_load_price_micro_per_kwh, interval_s
            )
        )
        awards = clear_flex(requests, offers, interval_s)
        awarded, price = _award_matrix(awards, names, starts)
        # a household's award fills its (cheaper) battery offer first, then its load's
        to_battery = np.minimum(awarded, battery_offer)
        flow, soc = plan_batteries(
            fleet, need, baseline_flow, to_battery[owners], interval_s, INTERVALS_PER_DAY
        )
        load = base_load + shift_loads(flexible_wh, awarded - to_battery, INTERVALS_PER_DAY)
        net = load - physics.pv_wh
        net[owners] += flow
        planned = _replanned(physics, load, net, soc)
        more = requests_from_forecast(
            forecast_of(scenario, planned.unconstrained),
            limits_of(scenario),
            scenario.flex_request_price_micro_per_kwh,
            margin=scenario.flex_margin,
        )
        if not more:
            break
        got: dict[str, int] = {}
        for award in awards:
            power_w = award.energy_wh * _SECONDS_PER_HOUR // interval_s
            got[award.request_id] = got.get(award.request_id, 0) + power_w
        requests = merge_requests(requests, got, more)
    books = FlexBooks(names, awarded, price, physics.net_wh)
    return DrPlan(requests, offers, awards, books, planned, rounds)


def flexibility_summary(
    scenario: Scenario,
    without: dict[str, Any],
    with_dr: dict[str, Any],
    plan: DrPlan,
    paid_micro: int,
    delivered_wh: int,
) -> dict[str, Any]:
    """The summary's ``flexibility`` object: each figure with and without DR."""

    def figures(summary: dict[str, Any], flex_wh: int, flex_paid: int) -> dict[str, Any]:
        kpis = summary["kpis"]
        return {
            "flexibility_bought_wh": flex_wh,
            "curtailed_wh": kpis["curtailed_wh"],
            "intervals_over_limits": summary["intervals_over_limits"],
            "intervals_over_limits_before_curtailment": summary[
                "intervals_over_limits_without_grid_awareness"
            ],
            "peak_transformer_loading_percent": round(kpis["max_trafo_loading_percent"], 2),
            "community_cost_micro": kpis["market_cost_micro"],
            "dso_flexibility_cost_micro": flex_paid,
            "dso_grid_fees_micro": summary["grid_fees_micro"],
            # what the grid operator is out of pocket: flexibility paid less the fees received
            "dso_net_cost_micro": flex_paid - summary["grid_fees_micro"],
        }

    return {
        "market": "merit order per zone and interval, pay-as-cleared",
        "baseline": "signed day-ahead schedule (the run without DR); docs/flexibility.md",
        "zone": zone_of(scenario),
        "requests": len(plan.requests),
        "requested_wh": sum(
            r.power_w * r.intervals * scenario.interval_length_s // _SECONDS_PER_HOUR
            for r in plan.requests
        ),
        "offers": len(plan.offers),
        "awards": len(plan.awards),
        "awarded_wh": int(plan.books.awarded_wh.sum()),
        "delivered_wh": delivered_wh,
        "paid_micro": paid_micro,
        "planning_rounds": plan.rounds,
        "without_dr": figures(without, 0, 0),
        "with_dr": figures(with_dr, delivered_wh, paid_micro),
    }


def flexibility_html(flexibility: dict[str, Any], currency: str) -> str:
    """The report's "Flexibility" section: each figure without and with demand response."""
    from html import escape

    from gridledger.web.units import cost_text, energy_text, money_text

    without, with_dr = flexibility["without_dr"], flexibility["with_dr"]
    rows = (
        ("PV curtailed", "curtailed_wh", energy_text),
        ("Intervals over limits (after grid-aware clearing)", "intervals_over_limits", str),
        (
            "Intervals the market alone would overload",
            "intervals_over_limits_before_curtailment",
            str,
        ),
        ("Peak transformer loading", "peak_transformer_loading_percent", lambda v: f"{v:.1f} %"),
        ("Flexibility bought (delivered)", "flexibility_bought_wh", energy_text),
        ("Community's cost", "community_cost_micro", lambda v: cost_text(v, currency)),
        (
            "DSO's cost of flexibility",
            "dso_flexibility_cost_micro",
            lambda v: money_text(v, currency),
        ),
        ("DSO's grid fees received", "dso_grid_fees_micro", lambda v: money_text(v, currency)),
        (
            "DSO's net cost (flexibility less fees)",
            "dso_net_cost_micro",
            lambda v: cost_text(v, currency),
        ),
    )
    body = "".join(
        f"<tr><th>{escape(title)}</th><td class='num'>{escape(show(without[key]))}</td>"
        f"<td class='num'>{escape(show(with_dr[key]))}</td></tr>"
        for title, key, show in rows
    )
    asked = energy_text(flexibility["requested_wh"])
    about = escape(
        f"{flexibility['requests']} requests from the DSO ({asked}), "
        f"{flexibility['offers']} offers, {flexibility['awards']} awards "
        f"({energy_text(flexibility['awarded_wh'])}); delivered "
        f"{energy_text(flexibility['delivered_wh'])}, paid "
        f"{money_text(flexibility['paid_micro'], currency)} by the grid operator. Market: "
        f"{flexibility['market']}. Baseline: {flexibility['baseline']}."
    )
    return (
        "<h2>Flexibility (demand response)</h2>"
        f"<p>{about}</p><table id='flexibility'><tr><th></th><th>without DR</th>"
        f"<th>with DR</th></tr>{body}</table>"
    )
