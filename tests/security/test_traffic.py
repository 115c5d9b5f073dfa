"""The traffic detector flags storms of failures per source and stays quiet on normal traffic."""

from __future__ import annotations

import pytest

from gridledger.errors import ValidationError
from gridledger.metering import Outcome
from gridledger.security.traffic import (
    TrafficDetector,
    TrafficEvent,
    TrafficRule,
    detect_traffic,
    events_from_outcomes,
    learn_rules,
    peak_counts,
)

T0 = 1_700_000_000


def normal_day(n_meters: int = 50) -> list[TrafficEvent]:
    """Each meter reports every 15 minutes from its own address; one in 200 is a replay."""
    events = []
    for slot in range(96):
        for m in range(n_meters):
            code = "replay" if (slot * n_meters + m) % 200 == 0 else "accepted"
            events.append(TrafficEvent(T0 + slot * 900 + m, f"meter-{m}", code))
    return events


def test_normal_traffic_raises_no_alert() -> None:
    assert detect_traffic(normal_day()) == []


def test_forged_reading_storm_is_flagged_once_per_burst() -> None:
    storm = [TrafficEvent(T0 + 5_000 + i // 10, "10.0.0.66", "bad_signature") for i in range(400)]
    alerts = detect_traffic(normal_day() + storm)
    forged = [a for a in alerts if a.rule == "forged_readings"]
    assert [a.source for a in forged] == ["10.0.0.66"]
    assert forged[0].count == 6  # the first event over the limit of 5 per minute
    assert forged[0].window_end_s - forged[0].window_start_s < 60
    assert {a.source for a in alerts} == {"10.0.0.66"}  # honest meters are never named


def test_auth_failure_burst_is_flagged_and_a_slow_trickle_is_not() -> None:
    burst = [TrafficEvent(T0 + i * 5, "203.0.113.9", "auth_failed") for i in range(8)]
    trickle = [TrafficEvent(T0 + i * 61, "198.51.100.1", "auth_failed") for i in range(50)]
    alerts = detect_traffic(burst + trickle)
    assert [(a.source, a.rule, a.count) for a in alerts] == [("203.0.113.9", "auth_failures", 6)]


def test_request_rate_rule_counts_every_code() -> None:
    flood = [TrafficEvent(T0 + i // 20, "192.0.2.7", "accepted") for i in range(400)]
    alerts = detect_traffic(flood)
    assert [(a.source, a.rule) for a in alerts] == [("192.0.2.7", "request_rate")]


def test_a_new_burst_after_a_quiet_window_alerts_again() -> None:
    rule = TrafficRule("replays", frozenset({"replay"}), 60, 2)
    first = [TrafficEvent(T0 + i, "s", "replay") for i in range(5)]
    second = [TrafficEvent(T0 + 300 + i, "s", "replay") for i in range(5)]
    assert len(detect_traffic(first + second, [rule])) == 2


def test_streaming_detector_refuses_events_out_of_order() -> None:
    detector = TrafficDetector()
    detector.observe(TrafficEvent(T0 + 10, "s", "accepted"))
    with pytest.raises(ValidationError):
        detector.observe(TrafficEvent(T0, "s", "accepted"))


def test_gateway_outcomes_become_events_with_their_reason_codes() -> None:
    outcomes = [
        Outcome("0xabc", 1, "accepted"),
        Outcome("0xabc", 2, "rejected", "bad_signature", "signature: forged"),
        Outcome("0xabc", 2, "duplicate"),
    ]
    events = events_from_outcomes(outcomes, "10.0.0.1", T0)
    assert [e.code for e in events] == ["accepted", "bad_signature", "duplicate"]


def test_limits_learned_from_a_clean_run_flag_a_storm_but_not_a_second_clean_day() -> None:
    # a clean run where each gateway (one per 10 meters) relays its meters' batches at once
    clean = [
        TrafficEvent(T0 + slot * 900, f"gw-{m // 10}", "accepted")
        for slot in range(96)
        for m in range(50)
    ]
    rules = learn_rules(clean)
    by_name = {r.name: r for r in rules}
    assert peak_counts(clean, rules)["request_rate"] == 10
    assert by_name["request_rate"].max_count == 20  # twice the busiest source's peak
    assert by_name["auth_failures"].max_count == 3  # never seen clean: the headroom
    assert detect_traffic(clean, rules) == []
    storm = [TrafficEvent(T0 + 7_000, "gw-9", "accepted") for _ in range(25)]
    fails = [TrafficEvent(T0 + 8_000 + i, "10.0.0.9", "auth_failed") for i in range(4)]
    alerts = detect_traffic(clean + storm + fails, rules)
    assert {(a.source, a.rule) for a in alerts} == {
        ("gw-9", "request_rate"),
        ("10.0.0.9", "auth_failures"),
    }


def test_learning_refuses_a_margin_below_one() -> None:
    with pytest.raises(ValidationError, match="margin"):
        learn_rules([], margin=0.5)
