"""The pure edge: FlexRequest <-> EiEvent dicts, the planner, household files. No network."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from gridledger.errors import ValidationError
from gridledger.flex import FlexAward, FlexRequest
from gridledger.openadr import Household, awards_for, event_dict, headroom_planner
from gridledger.openadr.convert import request_from_event, split_power_w
from gridledger.openadr.ven import household_from_file
from tests.openadr.support import INTERVAL_S, ZONE

START = 1_780_000_200  # on a 15-minute boundary
REQUEST = FlexRequest("r-7", ZONE, "down", 2500, START, 3, 312_500)


def _event() -> dict[str, Any]:
    return event_dict(REQUEST, "0xV", 2500, INTERVAL_S, "EUR")


def test_event_carries_the_request_and_parses_back() -> None:
    event = _event()
    power, price = event["event_signals"]
    assert (power["signal_name"], power["signal_type"]) == ("LOAD_DISPATCH", "delta")
    assert [i["signal_payload"] for i in power["intervals"]] == [-2.5, -2.5, -2.5]  # kW, down
    assert (price["signal_name"], price["intervals"][0]["signal_payload"]) == (
        "ELECTRICITY_PRICE",
        0.3125,  # EUR per kWh
    )
    assert event["event_descriptor"]["event_id"] == "r-7:0xV"
    assert event["targets"] == [{"ven_id": "0xV"}, {"group_id": ZONE}]
    assert request_from_event(event, INTERVAL_S, "EUR") == REQUEST
    # The flexibility core's ids hold ':' ("zone:start:direction"); they survive the trip.
    forecast_id = FlexRequest(f"{ZONE}:{START}:up", ZONE, "up", 800, START, 1, 0)
    parsed = request_from_event(
        event_dict(forecast_id, "0xV", 800, INTERVAL_S, "EUR"), INTERVAL_S, "EUR"
    )
    assert parsed == forecast_id


def _break(path: list[Any], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(_event())
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["event_descriptor"], KeyError, "event_descriptor: missing or not a structure"),
        (["targets"], [{"ven_id": "0xV"}], "targets.group_id: expected one grid zone, got []"),
        (
            ["event_signals", 0, "intervals", 1, "signal_payload"],
            "lots",
            "event_signals[LOAD_DISPATCH].intervals[1].signal_payload: not a finite number: 'lots'",
        ),
        (
            ["event_signals", 0, "intervals", 2, "signal_payload"],
            -1.0,
            "event_signals[LOAD_DISPATCH].intervals: the power must be the same in every interval",
        ),
        (
            ["event_signals", 0, "intervals", 0, "signal_payload"],
            0.0,
            "event_signals[LOAD_DISPATCH].intervals: the power must be the same in every interval",
        ),
        (
            ["event_signals", 0, "measurement", "scale"],
            "G",
            "event_signals[LOAD_DISPATCH].measurement: must be real power in W, kW or MW, got GW",
        ),
        (
            ["event_signals", 0, "signal_type"],
            "level",
            "event_signals[LOAD_DISPATCH].signal_type: must be 'delta', got 'level'",
        ),
        (
            ["event_signals", 1, "intervals", 0, "duration"],
            timedelta(minutes=5),
            "event_signals[ELECTRICITY_PRICE].intervals[0].duration: must be 900 s",
        ),
        (
            ["event_signals", 1, "intervals", 0, "signal_payload"],
            -0.1,
            "event_signals[ELECTRICITY_PRICE].intervals: the price must be the same",
        ),
        (
            ["event_signals", 0, "intervals"],
            [],
            "event_signals[LOAD_DISPATCH].intervals: missing or empty",
        ),
    ],
)
def test_malformed_events_name_the_field(path: list[Any], value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        request_from_event(_break(path, value), INTERVAL_S, "EUR")
    assert str(caught.value).startswith(message)


def test_gap_between_intervals_and_off_boundary_starts_are_refused() -> None:
    event = copy.deepcopy(_event())
    intervals = event["event_signals"][0]["intervals"]
    intervals[1]["dtstart"] = intervals[2]["dtstart"]
    with pytest.raises(ValidationError, match=r"intervals\[1\].dtstart: must follow"):
        request_from_event(event, INTERVAL_S, "EUR")
    shifted = FlexRequest("r-8", ZONE, "up", 1000, START + 60, 1, 0)
    with pytest.raises(ValidationError, match="not on a market interval boundary"):
        request_from_event(event_dict(shifted, "0xV", 1000, INTERVAL_S, "EUR"), INTERVAL_S, "EUR")


def test_the_vtn_refuses_requests_it_should_never_send() -> None:
    for field, bad in [
        ("zone", ""),
        ("direction", "sideways"),
        ("intervals", 0),
        ("price_micro_per_kwh", -1),
        ("request_id", ""),
    ]:
        broken = FlexRequest(**{**REQUEST.__dict__, field: bad})
        with pytest.raises(ValidationError, match=f"^{field}: "):
            event_dict(broken, "0xV", 1, INTERVAL_S, "EUR")


def test_power_split_and_awards() -> None:
    assert split_power_w(7000, ["b", "a", "c"]) == {"a": 2334, "b": 2333, "c": 2333}
    assert split_power_w(7000, []) == {}
    assert awards_for(REQUEST, "0xV", 2000, INTERVAL_S) == [
        FlexAward("r-7", "0xV", ZONE, "down", START + i * INTERVAL_S, 500, 312_500)
        for i in range(3)
    ]


def test_headroom_planner_keeps_what_the_battery_can_sustain() -> None:
    half_full = Household("0xH", 10_000, 5_000, 5_000, 0)
    ask = FlexRequest("p", ZONE, "down", 4000, START, 4, 0)  # 4 kW for 1 h = 4 kWh
    assert headroom_planner(ask, half_full, INTERVAL_S)
    long_ask = FlexRequest("p", ZONE, "down", 4000, START, 8, 0)  # 8 kWh: only 5 stored
    assert not headroom_planner(long_ask, half_full, INTERVAL_S)
    with_loads = Household("0xH", 10_000, 5_000, 5_000, shiftable_power_w=1_500)
    assert headroom_planner(long_ask, with_loads, INTERVAL_S)  # 2.5 kW battery + 1.5 kW loads
    full = Household("0xH", 10_000, 10_000, 5_000)
    assert not headroom_planner(FlexRequest("p", ZONE, "up", 1, START, 1, 0), full, INTERVAL_S)
    assert not headroom_planner(ask, Household("0xH"), INTERVAL_S)


def test_household_file_in_people_units() -> None:
    household = household_from_file(
        "0xH", {"battery_capacity_kwh": 13.5, "battery_soc_kwh": 2, "net_power_kw": -1.25}
    )
    assert household == Household("0xH", 13_500, 2_000, 0, 0, -1_250)
    with pytest.raises(ValidationError, match=r"^battery_kwh: unknown household setting"):
        household_from_file("0xH", {"battery_kwh": 1})
    with pytest.raises(ValidationError, match=r"^shiftable_kw: must not be negative"):
        household_from_file("0xH", {"shiftable_kw": -1})
    with pytest.raises(ValidationError, match=r"^battery_power_kw: not a number"):
        household_from_file("0xH", {"battery_power_kw": "4 kW"})
