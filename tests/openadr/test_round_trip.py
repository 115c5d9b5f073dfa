"""A real openleadr VTN and three household VENs over HTTP on 127.0.0.1.

One VEN opts in (its battery can cover the ask), one opts out (no flexible assets), one
registered and then went silent: the DSO sees "no response" and awards (pays) only the first.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

from gridledger.errors import ConflictError, ValidationError
from gridledger.flex import FlexAward, FlexRequest
from gridledger.openadr import Household, LoopThread, Ven, VtnThread, event_dict, headroom_planner
from gridledger.openadr.vtn import NO_RESPONSE, OPT_IN, OPT_OUT
from tests.openadr.support import (
    INTERVAL_S,
    SETTINGS,
    ZONE,
    flex_request,
    next_interval_start,
    wait_until,
)

WILLING = "0x00000000000000000000000000000000000000A1"
UNABLE = "0x00000000000000000000000000000000000000B2"
SILENT = "0x00000000000000000000000000000000000000C3"
STRANGER = "0x00000000000000000000000000000000000000D4"
HOUSEHOLDS = {
    # 10 kWh battery at half charge, 5 kW inverter, 1 kW of shiftable loads.
    WILLING: Household(WILLING, 10_000, 5_000, 5_000, 1_000, net_power_w=1_500),
    UNABLE: Household(UNABLE, net_power_w=400),
    SILENT: Household(SILENT, 10_000, 5_000, 5_000),
}


class Community:
    """The VTN on its loop thread, the VENs on another, as a DSO and its households would."""

    def __init__(self) -> None:
        self.vtn = VtnThread.start(SETTINGS, lambda name: ZONE if name in HOUSEHOLDS else None)
        self.loop = LoopThread("vens")
        self.planned: list[str] = []
        self.vens = {name: self._ven(name) for name in HOUSEHOLDS}
        for ven in self.vens.values():
            self.loop.run(ven.start())
        self.loop.run(self.vens[SILENT].stop())  # registered, then the household went offline

    def _ven(self, name: str) -> Ven:
        def planner(request: FlexRequest, household: Household, interval_s: int) -> bool:
            self.planned.append(request.request_id)
            return bool(headroom_planner(request, household, interval_s))

        return self.loop.call(Ven, SETTINGS, self.vtn.url, lambda: HOUSEHOLDS[name], planner)

    def close(self) -> None:
        for name, ven in self.vens.items():
            if name != SILENT:
                self.loop.run(ven.stop())
        self.loop.close()
        self.vtn.stop()


@pytest.fixture(scope="module")
def community() -> Iterator[Community]:
    built = Community()
    yield built
    built.close()


def test_event_round_trip_opt_in_opt_out_and_silence(community: Community) -> None:
    request = flex_request("dr-1")
    dispatch = community.vtn.issue(request)
    assert dispatch == {WILLING: 2000, UNABLE: 2000, SILENT: 2000}

    answers = community.vtn.wait_for_answers("dr-1", count=2, timeout_s=10)
    assert answers == {WILLING: OPT_IN, UNABLE: OPT_OUT, SILENT: NO_RESPONSE}

    # The household side committed to exactly its share of the request.
    committed = community.vens[WILLING].commitments["dr-1"]
    assert (committed.zone, committed.direction, committed.power_w) == (ZONE, "down", 2000)
    assert (committed.start, committed.intervals) == (request.start, 2)
    assert committed.price_micro_per_kwh == 250_000
    assert "dr-1" not in community.vens[UNABLE].commitments

    # Only the VEN that opted in is awarded, so only it is paid: 2 kW for 15 min = 500 Wh each.
    assert community.vtn.awards("dr-1") == [
        FlexAward("dr-1", WILLING, ZONE, "down", request.start + i * INTERVAL_S, 500, 250_000)
        for i in range(2)
    ]
    latency = community.vtn.vtn.latency_s("dr-1")
    print(f"OpenADR round trip (issue -> opt answer, poll 1 s): {latency}")
    assert set(latency) == {WILLING, UNABLE}
    assert max(latency.values()) < 3 * SETTINGS.openadr_poll_s


def test_up_request_for_an_export_peak_and_telemetry(community: Community) -> None:
    community.vtn.issue(flex_request("dr-up", power_w=9000, direction="up"))
    answers = community.vtn.wait_for_answers("dr-up", count=2, timeout_s=10)
    assert answers[WILLING] == OPT_IN  # 5 kWh free in the battery covers 3 kW for 30 min
    assert community.vens[WILLING].commitments["dr-up"].direction == "up"
    # Telemetry: each live VEN reports its net power (W) at the sampling the VTN asked for.
    wait_until(lambda: community.vtn.vtn.latest_power_w(UNABLE) == 400, 10, "the VEN's telemetry")
    assert community.vtn.vtn.latest_power_w(WILLING) == 1500
    assert community.vtn.vtn.latest_power_w(SILENT) is None


def test_malformed_request_is_refused_at_the_vtn_and_sends_nothing(community: Community) -> None:
    bad = flex_request("dr-bad", power_w=0)
    with pytest.raises(ValidationError, match="power_w: must be positive"):
        community.vtn.issue(bad)
    assert "dr-bad" not in community.vtn.vtn.issued
    with pytest.raises(ValidationError, match="request_id: 'never' was never issued"):
        community.vtn.awards("never")
    community.vtn.issue(flex_request("dr-twice"))
    with pytest.raises(ConflictError, match="already issued"):
        community.vtn.issue(flex_request("dr-twice"))


def test_malformed_event_payload_gives_a_clear_error_and_books_nothing(
    community: Community,
) -> None:
    """A VTN sends an event priced in another currency: the VEN names the field, opts out,
    never consults its planner and commits nothing; the DSO has nothing to award."""
    request = flex_request("dr-usd")
    event = event_dict(request, WILLING, 2000, INTERVAL_S, "USD")
    answered: list[str] = []

    def on_answer(ven_id: str, event_id: str, opt_type: str) -> None:
        answered.append(opt_type)

    community.vtn.loop.call(community.vtn.vtn.server.add_raw_event, WILLING, event, on_answer)
    wait_until(lambda: bool(answered), 10, "the VEN's answer to the malformed event")
    ven = community.vens[WILLING]
    assert answered == [OPT_OUT]
    assert ven.rejected[-1] == (
        "dr-usd:" + WILLING,
        "event_signals[ELECTRICITY_PRICE].measurement.unit: must be EUR per kWh, got 'USD'",
    )
    assert "dr-usd" not in ven.commitments
    assert "dr-usd" not in community.planned

    # And a payload with the power missing altogether.
    broken = copy.deepcopy(event_dict(flex_request("dr-nopower"), WILLING, 2000, INTERVAL_S, "EUR"))
    broken["event_signals"] = broken["event_signals"][1:]
    answered.clear()
    community.vtn.loop.call(community.vtn.vtn.server.add_raw_event, WILLING, broken, on_answer)
    wait_until(lambda: bool(answered), 10, "the VEN's answer to the event without power")
    assert answered == [OPT_OUT]
    assert ven.rejected[-1][1] == (
        "event_signals[LOAD_DISPATCH]: expected exactly one LOAD_DISPATCH signal, got 0"
    )
    assert "dr-nopower" not in ven.commitments


def test_a_stranger_is_not_registered(community: Community) -> None:
    from gridledger.errors import AuthorizationError

    stranger = community.loop.call(
        Ven, SETTINGS, community.vtn.url, lambda: Household(STRANGER), headroom_planner
    )
    with pytest.raises(AuthorizationError, match=rf"refused to register VEN {STRANGER}"):
        community.loop.run(stranger.start())
    assert STRANGER not in community.vtn.vtn.vens


def test_a_cancelled_request_is_dropped_by_the_ven_and_not_awarded(community: Community) -> None:
    community.vtn.issue(flex_request("dr-off"))
    community.vtn.wait_for_answers("dr-off", count=2, timeout_s=10)
    ven = community.vens[WILLING]
    assert "dr-off" in ven.commitments
    community.vtn.cancel("dr-off")
    wait_until(lambda: "dr-off" not in ven.commitments, 10, "the VEN to drop the cancelled event")
    assert community.vtn.awards("dr-off") == []


def test_price_signals_for_price_based_demand_response(community: Community) -> None:
    start = next_interval_start()
    assert community.vtn.publish_prices(ZONE, start, [120_000, 350_000]) == 3
    for name in (WILLING, UNABLE):
        ven = community.vens[name]
        wait_until(lambda v=ven: start in v.prices, 10, "the tariff at the VEN")  # type: ignore[misc]
        assert ven.prices == {start: 120_000, start + INTERVAL_S: 350_000}


def test_vens_register_again_after_the_vtn_restarts() -> None:
    """The VTN's registry lives in memory: a restarted VTN asks a polling VEN to re-register
    (openleadr's oadrRequestReregistration) and the VEN answers events again."""
    zone_of = {WILLING: ZONE}.get
    first = VtnThread.start(SETTINGS, zone_of)
    port = first.vtn.port
    loop = LoopThread("ven")
    ven = loop.call(Ven, SETTINGS, first.url, lambda: HOUSEHOLDS[WILLING], headroom_planner)
    try:
        loop.run(ven.start())
        first.stop()
        second = VtnThread.start(SETTINGS.replace(openadr_port=port), zone_of)
        try:
            wait_until(lambda: WILLING in second.vtn.vens, 10, "the VEN to register again")
            second.issue(flex_request("after-restart"))
            assert second.wait_for_answers("after-restart", 1, 10) == {WILLING: OPT_IN}
        finally:
            second.stop()
    finally:
        loop.run(ven.stop())
        loop.close()
