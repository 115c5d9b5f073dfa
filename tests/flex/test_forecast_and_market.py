"""The DSO's requests from a forecast power flow, and the flexibility market's clearing."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.flex import FlexOffer, FlexRequest, Limits, ZoneForecast, clear_flex
from gridledger.flex.forecast import merge_requests, requests_from_forecast

ZONE = "feeder-1"


def _forecast(
    p_mw: list[float], trafo: list[float], vmax: list[float] | None = None
) -> ZoneForecast:
    n = len(p_mw)
    return ZoneForecast(
        ZONE,
        np.arange(n, dtype=np.int64) * 900,
        np.array(p_mw),
        np.array(trafo),
        np.full(n, 20.0),
        np.full(n, 0.98),
        np.array(vmax if vmax is not None else [1.02] * n),
    )


def test_an_export_overload_asks_for_up_flexibility_sized_to_the_limit() -> None:
    # 80 kW of export at 125 % of the rating: 80 * (1 - 0.95 / 1.25) = 19.2 kW is needed
    requests = requests_from_forecast(
        _forecast([0.01, -0.08, -0.05], [15.0, 125.0, 80.0]), Limits(), 150_000, margin=0.05
    )
    assert len(requests) == 1
    (request,) = requests
    assert (request.direction, request.start, request.intervals) == ("up", 900, 1)
    assert request.power_w == pytest.approx(19_200, abs=2)
    assert request.price_micro_per_kwh == 150_000 and request.zone == ZONE


def test_an_import_overload_asks_for_down_and_high_voltage_for_up() -> None:
    requests = requests_from_forecast(
        _forecast([0.07, 0.01], [110.0, 30.0], vmax=[1.02, 1.12]), Limits(), 100_000, margin=0.0
    )
    assert [r.direction for r in requests] == ["down", "up"]
    assert requests[0].power_w == pytest.approx(70_000 * (1 - 1 / 1.1), abs=2)


def test_a_forecast_within_limits_asks_for_nothing() -> None:
    assert requests_from_forecast(_forecast([-0.05], [99.9]), Limits(), 100_000) == ()


def test_bad_margin_is_named() -> None:
    with pytest.raises(ValidationError, match="margin"):
        requests_from_forecast(_forecast([-0.05], [120.0]), Limits(), 1, margin=1.5)


def test_a_re_forecast_adds_the_missing_power_to_what_was_awarded() -> None:
    first = (FlexRequest("z:0:up", "z", "up", 10_000, 0, 1, 100_000),)
    more = (
        FlexRequest("z:0:up", "z", "up", 2_000, 0, 1, 100_000),
        FlexRequest("z:900:up", "z", "up", 500, 900, 1, 100_000),
    )
    merged = merge_requests(first, {"z:0:up": 7_000}, more)
    assert [(r.request_id, r.power_w) for r in merged] == [("z:0:up", 9_000), ("z:900:up", 500)]


def _offer(who: str, power_w: int, price: int, start: int = 0, zone: str = ZONE) -> FlexOffer:
    return FlexOffer(who, zone, "up", power_w, start, price)


def test_merit_order_pay_as_cleared_within_the_request_price() -> None:
    request = FlexRequest("r1", ZONE, "up", 8_000, 0, 1, 60_000)  # 2 000 Wh in 15 minutes
    offers = [
        _offer("carol", 4_000, 50_000),
        _offer("alice", 4_000, 20_000),
        _offer("bob", 4_000, 40_000),
        _offer("dave", 40_000, 70_000),  # above the DSO's price: never taken
        _offer("erin", 4_000, 10_000, zone="other"),  # another zone
        _offer("fred", 4_000, 10_000, start=900),  # another interval
    ]
    awards = clear_flex([request], offers, 900)
    assert [(a.participant, a.energy_wh) for a in awards] == [("alice", 1_000), ("bob", 1_000)]
    assert {a.price_micro_per_kwh for a in awards} == {40_000}  # the marginal offer's price
    assert all(a.request_id == "r1" and a.interval_start == 0 for a in awards)


def test_short_offers_fill_what_they_can_and_a_bad_offer_is_named() -> None:
    request = FlexRequest("r1", ZONE, "up", 40_000, 0, 2, 60_000)
    awards = clear_flex([request], [_offer("alice", 4_000, 1), _offer("bob", 2_000, 1, 900)], 900)
    assert [(a.participant, a.interval_start, a.energy_wh) for a in awards] == [
        ("alice", 0, 1_000),
        ("bob", 900, 500),
    ]
    with pytest.raises(ValidationError, match="power_w"):
        clear_flex([request], [_offer("alice", 0, 1)], 900)
