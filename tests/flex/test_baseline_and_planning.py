"""Baselines, delivered flexibility and the households' plans around events."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.flex import delivered_flexibility_wh, high_x_of_y_wh
from gridledger.flex.baseline import delivered_up_wh
from gridledger.flex.planning import (
    Fleet,
    battery_up_offers_wh,
    load_up_offers_wh,
    plan_batteries,
    shift_loads,
    spread_budget,
)
from gridledger.sim.assets import Battery, BatteryFleet


def test_delivered_is_the_change_against_the_baseline_clipped_to_the_award() -> None:
    # up: import rose from -3000 (export) to -1800: 1200 Wh, of which 1000 were awarded
    assert delivered_flexibility_wh("up", -3_000, -1_800, 1_000) == 1_000
    assert delivered_flexibility_wh("up", -3_000, -2_500, 1_000) == 500
    assert delivered_flexibility_wh("up", -3_000, -3_200, 1_000) == 0  # the opposite: nothing
    # the DSO's own curtailment raised the import by 400 Wh: not the household's doing
    assert delivered_flexibility_wh("up", -3_000, -2_400, 1_000, curtailed_wh=400) == 200
    assert delivered_flexibility_wh("down", 800, 300, 1_000) == 500
    with pytest.raises(ValidationError, match="direction"):
        delivered_flexibility_wh("sideways", 0, 0, 1)  # type: ignore[arg-type]
    arrays = delivered_up_wh(
        np.array([[-3_000, -3_000]]),
        np.array([[-1_800, -3_200]]),
        np.array([[1_000, 1_000]]),
        np.array([[0, 0]]),
    )
    assert arrays.tolist() == [[1_000, 0]]


def test_high_5_of_10_takes_the_mean_of_the_five_highest_days() -> None:
    history = np.array([[d * 10, 100] for d in range(1, 11)], dtype=np.int64)
    assert high_x_of_y_wh(history).tolist() == [80, 100]  # (60+70+80+90+100)/5
    with pytest.raises(ValidationError, match="history_wh"):
        high_x_of_y_wh(history[:9])


CAPACITY, LIMIT_W = 10_000, 5_000


def _fleet(n: int = 2, soc: int = 2_000) -> tuple[Fleet, BatteryFleet]:
    battery = Battery(CAPACITY, LIMIT_W, 0.9, soc)
    real = BatteryFleet.of([(k, battery) for k in range(n)])
    return Fleet(real.capacity_wh, real.max_power_w, real.round_trip_efficiency, real.soc_wh), real


def _sunny_day(steps: int = 96) -> np.ndarray:
    """Net before the battery: 300 Wh need at night, 1 500 Wh surplus from 08:00 to 16:00."""
    need = np.full(steps, 300, dtype=np.int64)
    need[32:64] = -1_500
    return np.stack([need, need + 100])


def test_without_awards_the_plan_is_the_self_consumption_dispatch() -> None:
    fleet, real = _fleet()
    need = _sunny_day()
    baseline_flow, baseline_soc = real.dispatch(need, 900)
    flow, soc = plan_batteries(fleet, need, baseline_flow, np.zeros_like(need), 900, 96)
    assert np.array_equal(flow, baseline_flow) and np.array_equal(soc, baseline_soc)


def test_a_battery_keeps_room_for_the_midday_event_instead_of_filling_at_nine() -> None:
    fleet, real = _fleet()
    need = _sunny_day()
    baseline_flow, baseline_soc = real.dispatch(need, 900)
    assert baseline_soc[0, 40] >= CAPACITY - 2  # self-consumption: full by 10:00 (rounding)
    award = np.zeros_like(need)
    award[:, 44:52] = 1_100  # 11:00-13:00, 8 x 1 100 Wh on top of the baseline flow (0: full)
    flow, soc = plan_batteries(fleet, need, baseline_flow, award, 900, 96)
    assert soc[0, 43] <= CAPACITY - int(8 * 1_100 * 0.9**0.5)  # room kept for the event
    assert np.array_equal(flow[:, 44:52] - baseline_flow[:, 44:52], award[:, 44:52])
    assert soc[0, 63] >= CAPACITY - 2  # and full again after it, for the evening


def test_battery_offers_follow_the_request_and_the_budget() -> None:
    fleet, real = _fleet()
    need = _sunny_day()
    baseline_flow, _ = real.dispatch(need, 900)
    wanted = np.zeros(96)
    wanted[44:52] = [1_000, 2_000, 4_000, 8_000, 8_000, 4_000, 2_000, 1_000]
    offers = battery_up_offers_wh(fleet, need, baseline_flow, wanted, 900, 96)
    limit = LIMIT_W * 900 // 3600
    assert (offers[:, :44] == 0).all() and (offers[:, 52:] == 0).all()
    assert (offers <= limit).all()
    assert offers[0, 47] >= offers[0, 45] >= offers[0, 44]  # more where more is asked
    assert 9_000 <= offers[0].sum() <= CAPACITY / 0.9**0.5  # about a whole battery


def test_spread_budget_water_fills_past_full_intervals() -> None:
    spread = spread_budget(
        np.array([[900]]), np.array([10.0, 1.0, 1.0]), np.array([[300, 400, 400]]), 3
    )
    assert spread.tolist() == [[300, 300, 300]]


def test_loads_move_into_the_awarded_intervals_and_keep_their_daily_energy() -> None:
    schedule = np.zeros((2, 8), dtype=np.int64)
    schedule[:, 6] = 500
    schedule[:, 7] = 250
    wanted = np.array([0, 0, 10.0, 10.0, 0, 0, 0, 0])
    offers = load_up_offers_wh(schedule, 2_000, wanted, 900, 8)
    assert offers[:, 2:4].sum(axis=1).tolist() == [750, 750]
    shifted = shift_loads(schedule, offers, 8)
    assert shifted.sum(axis=1).tolist() == [750, 750]
    assert shifted[:, 2:4].sum() == 1_500 and shifted[:, 6:].sum() == 0
    with pytest.raises(ValidationError, match="award_wh"):
        shift_loads(schedule, offers * 2, 8)
