"""Battery dispatch: SOC bounds, power limit, losses, and self-consumption behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import PROFILE_LENGTH
from gridledger.sim import Battery, dispatch_battery

QUARTER_HOUR_S = 900


def test_surplus_charges_with_one_way_loss() -> None:
    battery = Battery(capacity_wh=10_000, max_power_w=5_000, round_trip_efficiency=0.81)
    flow_wh, after = battery.dispatch(-1_000, QUARTER_HOUR_S)
    assert flow_wh == 1_000
    assert after.soc_wh == 900  # sqrt(0.81) = 0.9 on the way in


def test_deficit_discharges_with_one_way_loss() -> None:
    battery = Battery(10_000, 5_000, round_trip_efficiency=0.81, soc_wh=5_000)
    flow_wh, after = battery.dispatch(900, QUARTER_HOUR_S)
    assert flow_wh == -900
    assert after.soc_wh == 4_000  # 900 Wh delivered cost 1000 Wh stored


def test_power_limit_caps_energy_per_interval() -> None:
    battery = Battery(10_000, 2_000, soc_wh=5_000)  # 2 kW x 15 min = 500 Wh
    assert battery.dispatch(-3_000, QUARTER_HOUR_S)[0] == 500
    assert battery.dispatch(3_000, QUARTER_HOUR_S)[0] == -500
    assert battery.dispatch(-3_000, 3_600)[0] == 2_000  # hourly intervals allow more


def test_full_battery_refuses_and_empty_battery_gives_nothing() -> None:
    full = Battery(10_000, 5_000, soc_wh=10_000)
    empty = Battery(10_000, 5_000, soc_wh=0)
    assert full.dispatch(-800, QUARTER_HOUR_S) == (0, full)
    assert empty.dispatch(800, QUARTER_HOUR_S) == (0, empty)
    assert dispatch_battery(empty, 0, QUARTER_HOUR_S) == (0, empty)


def test_round_trip_returns_the_round_trip_efficiency() -> None:
    battery = Battery(100_000, 1_000_000, round_trip_efficiency=0.9)
    charged_wh, battery = battery.dispatch(-10_000, QUARTER_HOUR_S)
    delivered_wh = -battery.dispatch(50_000, QUARTER_HOUR_S)[0]
    assert charged_wh == 10_000
    assert delivered_wh == pytest.approx(9_000, abs=2)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"capacity_wh": 0}, "capacity_wh"),
        ({"max_power_w": -1}, "max_power_w"),
        ({"round_trip_efficiency": 1.2}, "round_trip_efficiency"),
        ({"soc_wh": 10_001}, "soc_wh"),
    ],
)
def test_invalid_battery_names_the_field(arguments: dict[str, float], field: str) -> None:
    values: dict[str, float] = {"capacity_wh": 10_000, "max_power_w": 5_000, **arguments}
    with pytest.raises(ValidationError) as raised:
        Battery(**values)  # type: ignore[arg-type]
    assert raised.value.field == field


@settings(max_examples=6, deadline=None)
@given(
    capacity_wh=st.integers(1, 30_000),
    max_power_w=st.integers(1, 20_000),
    round_trip_efficiency=st.floats(0.5, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_year_of_random_flows_keeps_soc_in_bounds(
    capacity_wh: int, max_power_w: int, round_trip_efficiency: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    flows_wh = rng.integers(-4_000, 4_001, size=PROFILE_LENGTH)
    battery = Battery(capacity_wh, max_power_w, round_trip_efficiency, soc_wh=capacity_wh // 2)
    limit_wh = max_power_w * QUARTER_HOUR_S // 3600
    efficiency = math.sqrt(round_trip_efficiency)
    for net_wh in flows_wh.tolist():
        flow_wh, after = battery.dispatch(net_wh, QUARTER_HOUR_S)
        assert 0 <= after.soc_wh <= capacity_wh
        assert abs(flow_wh) <= limit_wh
        assert flow_wh * net_wh <= 0  # charges only from surplus, discharges only into deficit
        assert abs(flow_wh) <= abs(net_wh)  # never overshoots into export or import
        stored_wh = after.soc_wh - battery.soc_wh
        if flow_wh > 0:  # energy in: at most the flow after the inbound loss
            assert stored_wh <= flow_wh * efficiency + 1e-9
        elif flow_wh < 0:  # energy out: SOC drops by at least delivered / efficiency (rounded)
            assert -stored_wh >= math.floor(-flow_wh / efficiency)
        battery = after
