"""Household planning around flexibility events, as array operations over households.

A battery run for self-consumption fills up on the morning's surplus and is full when the
midday export peak congests the feeder. Planned around an "up" event it keeps capacity free
instead: in every interval its state of charge stays below ``capacity - reserve``, where the
reserve is what the awarded charging still to come that day will store; in an awarded interval
it charges its baseline flow plus the award (from the grid if its own PV falls short).

Shiftable loads move the awarded energy into the event's intervals, taking it out of the
intervals of the same day where they would otherwise have run.

Offers follow the same plan: a first, tentative plan with every requested interval awarded
in full measures what each battery can absorb over the day's events (its energy budget); the
budget is then spread over the intervals in proportion to what the DSO asks there, so the
largest needs (the noon peak) are not left to batteries that filled up at the event's start.

Rows are batteries (or households for loads), columns intervals; energy is whole Wh per
interval, seen from the household bus (+ charges / consumes, - discharges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, eq=False)
class Fleet:
    """Batteries as arrays (the fields of :class:`gridledger.sim.assets.BatteryFleet`)."""

    capacity_wh: Int64Array
    max_power_w: Int64Array
    round_trip_efficiency: FloatArray
    soc_wh: Int64Array  # at the first interval

    def limit_wh(self, interval_length_s: int) -> Int64Array:
        limit: Int64Array = self.max_power_w * interval_length_s // _SECONDS_PER_HOUR
        return limit


def _per_day_reverse_cumsum(values: Int64Array, intervals_per_day: int) -> Int64Array:
    """For each column t: the sum of ``values`` over t..end of t's day (inclusive)."""
    out = np.zeros_like(values)
    for first in range(0, values.shape[1], intervals_per_day):
        block = values[:, first : first + intervals_per_day]
        out[:, first : first + intervals_per_day] = np.cumsum(block[:, ::-1], axis=1)[:, ::-1]
    return out


def plan_batteries(
    fleet: Fleet,
    need_wh: Int64Array,
    baseline_flow_wh: Int64Array,
    award_wh: Int64Array,
    interval_length_s: int,
    intervals_per_day: int,
) -> tuple[Int64Array, Int64Array]:
    """Battery flow and state of charge per interval, planned around ``award_wh`` (extra charge).

    ``need_wh`` is each battery owner's net before the battery; ``baseline_flow_wh`` the
    battery's self-consumption flow (the signed schedule). Without awards this is exactly the
    self-consumption dispatch of :meth:`BatteryFleet.dispatch`, with its rounding.
    """
    need = np.asarray(need_wh, dtype=np.int64)
    if need.shape != baseline_flow_wh.shape or need.shape != award_wh.shape:
        raise ValidationError("award_wh", "need, baseline flow and award must have one shape")
    if need.shape[0] != fleet.capacity_wh.shape[0]:
        raise ValidationError("need_wh", "need one row per battery")
    limit = fleet.limit_wh(interval_length_s)[:, None]
    efficiency = np.sqrt(fleet.round_trip_efficiency)
    awarded = award_wh > 0
    target = np.clip(baseline_flow_wh + award_wh, -limit, limit)
    stored = np.where(awarded, np.ceil(np.clip(target, 0, None) * efficiency[:, None]), 0)
    reserve_after = _per_day_reverse_cumsum(stored.astype(np.int64), intervals_per_day) - stored
    cap = np.clip(fleet.capacity_wh[:, None] - reserve_after, 0, None).astype(np.int64)
    desired = np.where(awarded, target, np.clip(-need, -limit, limit))
    keep = _keep_wh(need, awarded, efficiency, fleet.capacity_wh, intervals_per_day)
    floor_wh = np.where(awarded, fleet.capacity_wh[:, None], np.maximum(cap, keep))
    soc = fleet.soc_wh.copy()
    flow, socs = np.zeros_like(need), np.zeros_like(need)
    for step in range(need.shape[1]):
        want, room = desired[:, step], np.clip(cap[:, step] - soc, 0, None)
        taken = np.minimum(np.clip(want, 0, None), np.floor(room / efficiency).astype(np.int64))
        put = np.minimum(np.floor(taken * efficiency).astype(np.int64), room)
        # make room: above both the cap and what the home needs until the event, export
        spare = np.floor(np.clip(soc - floor_wh[:, step], 0, None) * efficiency).astype(np.int64)
        out = np.minimum(np.maximum(np.clip(-want, 0, None), spare), limit[:, 0])
        delivered = np.minimum(out, np.floor(soc * efficiency).astype(np.int64))
        drawn = np.minimum(np.ceil(delivered / efficiency).astype(np.int64), soc)
        flow[:, step] = taken - delivered
        soc = soc + put - drawn
        socs[:, step] = soc
    return flow, socs


def _keep_wh(
    need: Int64Array,
    awarded: npt.NDArray[np.bool_],
    efficiency: FloatArray,
    capacity_wh: Int64Array,
    intervals_per_day: int,
) -> Int64Array:
    """Per interval, the charge that covers the home's own need until its next award that day
    (a battery making room for an event exports only what it holds beyond that)."""
    own = np.where(awarded, 0, np.clip(need, 0, None))
    keep = np.zeros_like(need)
    for first in range(0, need.shape[1], intervals_per_day):
        running = np.zeros(need.shape[0], dtype=np.int64)
        for step in range(min(first + intervals_per_day, need.shape[1]) - 1, first - 1, -1):
            running = np.where(awarded[:, step], 0, running + own[:, step])
            keep[:, step] = running
    # after the day's last award nothing is owed to an event: keep everything
    last = _after_last_award(awarded, intervals_per_day)
    kept = np.ceil(keep / efficiency[:, None]).astype(np.int64)
    return np.where(last, capacity_wh[:, None], np.minimum(kept, capacity_wh[:, None]))


def _after_last_award(
    awarded: npt.NDArray[np.bool_], intervals_per_day: int
) -> npt.NDArray[np.bool_]:
    later = np.zeros_like(awarded)
    for first in range(0, awarded.shape[1], intervals_per_day):
        block = awarded[:, first : first + intervals_per_day]
        ahead = np.cumsum(block[:, ::-1], axis=1)[:, ::-1] > 0  # an award at or after t
        later[:, first : first + intervals_per_day] = ~ahead
    return later


def spread_budget(
    budget_wh: Int64Array,
    weight: FloatArray,
    ceiling_wh: Int64Array,
    intervals_per_day: int,
) -> Int64Array:
    """Spread each row's daily ``budget_wh`` (rows x days) over its day in proportion to
    ``weight`` (one per interval: what the DSO asks), at most ``ceiling_wh`` per interval."""
    out = np.zeros_like(ceiling_wh)
    for day, first in enumerate(range(0, ceiling_wh.shape[1], intervals_per_day)):
        cols = slice(first, first + intervals_per_day)
        ceiling = np.clip(ceiling_wh[:, cols], 0, None)
        w = np.broadcast_to(np.clip(weight[cols], 0, None), ceiling.shape)
        left = np.clip(budget_wh[:, day], 0, None).astype(np.int64)
        spread = np.zeros_like(ceiling)
        for _ in range(8):  # water-filling: what a full interval cannot take goes to the others
            open_w = np.where(spread < ceiling, w, 0.0)
            total = open_w.sum(axis=1, keepdims=True)
            share = np.floor(
                left[:, None] * np.divide(open_w, total, out=np.zeros_like(open_w), where=total > 0)
            ).astype(np.int64)
            add = np.minimum(share, ceiling - spread)
            spread += add
            left -= add.sum(axis=1)
            if not bool((add > 0).any()):
                break
        out[:, cols] = spread
    return out


def battery_up_offers_wh(
    fleet: Fleet,
    need_wh: Int64Array,
    baseline_flow_wh: Int64Array,
    requested_w: FloatArray,
    interval_length_s: int,
    intervals_per_day: int,
) -> Int64Array:
    """What each battery can offer as "up" flexibility per interval (see the module doc)."""
    limit = fleet.limit_wh(interval_length_s)[:, None]
    asked = np.broadcast_to(requested_w > 0, need_wh.shape)
    tentative = np.where(asked, limit, 0).astype(np.int64)
    flow, _ = plan_batteries(
        fleet, need_wh, baseline_flow_wh, tentative, interval_length_s, intervals_per_day
    )
    extra = np.where(asked, flow - baseline_flow_wh, 0)  # a day's sum: what it can absorb more
    days = -(-need_wh.shape[1] // intervals_per_day)
    padded = np.zeros((need_wh.shape[0], days * intervals_per_day), dtype=np.int64)
    padded[:, : need_wh.shape[1]] = extra
    budget = np.clip(padded.reshape(need_wh.shape[0], days, intervals_per_day).sum(axis=2), 0, None)
    ceiling = np.clip(limit - np.clip(baseline_flow_wh, 0, None), 0, None).astype(np.int64)
    return spread_budget(budget, requested_w, ceiling, intervals_per_day)


def load_up_offers_wh(
    schedule_wh: Int64Array,
    max_power_w: int,
    requested_w: FloatArray,
    interval_length_s: int,
    intervals_per_day: int,
) -> Int64Array:
    """Shiftable loads' "up" offers: energy they could move into the requested intervals."""
    asked = requested_w > 0
    movable = np.where(asked, 0, schedule_wh)
    days = -(-schedule_wh.shape[1] // intervals_per_day)
    budget = np.stack(
        [
            movable[:, d * intervals_per_day : (d + 1) * intervals_per_day].sum(axis=1)
            for d in range(days)
        ],
        axis=1,
    )
    limit = max_power_w * interval_length_s // _SECONDS_PER_HOUR
    ceiling = np.where(asked, np.clip(limit - schedule_wh, 0, None), 0).astype(np.int64)
    return spread_budget(budget, requested_w, ceiling, intervals_per_day)


def shift_loads(
    schedule_wh: Int64Array, award_wh: Int64Array, intervals_per_day: int
) -> Int64Array:
    """Move each household's awarded energy into the awarded intervals, out of the same day's
    unawarded ones (from the latest first: a wash or a dishwasher waits less); the daily
    energy is unchanged."""
    shifted = schedule_wh + award_wh
    for first in range(0, schedule_wh.shape[1], intervals_per_day):
        cols = slice(first, first + intervals_per_day)
        owed = award_wh[:, cols].sum(axis=1)
        block = shifted[:, cols]  # a view: edits land in ``shifted``
        free = np.where(award_wh[:, cols] > 0, 0, schedule_wh[:, cols])
        for step in range(block.shape[1] - 1, -1, -1):
            take = np.minimum(free[:, step], owed)
            block[:, step] -= take
            owed -= take
        if bool((owed > 0).any()):
            raise ValidationError("award_wh", "more energy awarded than the loads can move")
    return shifted
