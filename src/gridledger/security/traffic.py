"""Traffic detector: windowed counts of a node's request outcomes per source, pure and streaming.

Events are what the gateway and the API already know: a source (client address or meter), a
time and a reason code (the gateway's ``bad_signature``, ``replay``, ``unknown_meter``... plus
``auth_failed`` (401), ``rate_limited`` (429) and ``request`` from the API, ``mqtt_connect``
from the MQTT broker's log). A rule counts one set of codes per source over a sliding window and
alerts when the count exceeds its limit; an alert is raised once per burst, again only after a
quiet full window. Limits can be learned from
a clean run (:func:`learn_rules`): a margin over the busiest honest source's peak.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from gridledger.errors import ValidationError
from gridledger.metering.gateway import Outcome

ALL_CODES: frozenset[str] = frozenset()  # empty: every event counts (a request-rate rule)


@dataclass(frozen=True, slots=True)
class TrafficEvent:
    """One request outcome: ``code`` is a gateway reason code, ``auth_failed`` or ``accepted``."""

    time_s: int
    source: str
    code: str


@dataclass(frozen=True)
class TrafficRule:
    """Alert when more than ``max_count`` events with one of ``codes`` come from one source
    within ``window_s`` seconds (any code at all when ``codes`` is empty)."""

    name: str
    codes: frozenset[str]
    window_s: int
    max_count: int

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValidationError("window_s", f"must be positive, got {self.window_s}")
        if self.max_count < 0:
            raise ValidationError("max_count", f"must not be negative, got {self.max_count}")

    def matches(self, code: str) -> bool:
        return not self.codes or code in self.codes


# A meter sends one batch per 15 minutes; an honest source almost never fails these checks.
DEFAULT_RULES: tuple[TrafficRule, ...] = (
    TrafficRule("forged_readings", frozenset({"bad_signature"}), 60, 5),
    TrafficRule("replays", frozenset({"replay"}), 60, 5),
    TrafficRule("unknown_meters", frozenset({"unknown_meter", "inactive_meter"}), 60, 10),
    TrafficRule("auth_failures", frozenset({"auth_failed"}), 60, 5),
    TrafficRule("malformed", frozenset({"malformed"}), 60, 20),
    TrafficRule("rate_limited", frozenset({"rate_limited"}), 60, 20),  # 429s: hammering on
    # MQTT (re)connections the broker logged from one address: a reconnect storm, a flapping
    # meter or a client-id takeover fight; many meters may share one address, hence 30.
    TrafficRule("mqtt_reconnects", frozenset({"mqtt_connect"}), 60, 30),
    TrafficRule("request_rate", ALL_CODES, 60, 300),
)


@dataclass(frozen=True)
class TrafficAlert:
    """``count`` events matching ``rule`` from ``source`` in [window_start_s, window_end_s]."""

    source: str
    rule: str
    window_start_s: int
    window_end_s: int
    count: int


@dataclass
class TrafficDetector:
    """Streaming form: feed events in time order with :meth:`observe`."""

    rules: Sequence[TrafficRule] = DEFAULT_RULES
    _recent: dict[tuple[str, str], deque[int]] = field(default_factory=dict)
    _alerted_at: dict[tuple[str, str], int] = field(default_factory=dict)
    _last_time_s: int | None = None

    def observe(self, event: TrafficEvent) -> list[TrafficAlert]:
        if self._last_time_s is not None and event.time_s < self._last_time_s:
            raise ValidationError(
                "time_s", f"events must come in time order: {event.time_s} < {self._last_time_s}"
            )
        self._last_time_s = event.time_s
        alerts = []
        for rule in self.rules:
            if rule.matches(event.code):
                alert = self._count(rule, event)
                if alert is not None:
                    alerts.append(alert)
        return alerts

    def _count(self, rule: TrafficRule, event: TrafficEvent) -> TrafficAlert | None:
        key = (event.source, rule.name)
        times = self._recent.setdefault(key, deque())
        times.append(event.time_s)
        while times[0] <= event.time_s - rule.window_s:
            times.popleft()
        if len(times) <= rule.max_count:
            return None
        last = self._alerted_at.get(key)
        if last is not None and event.time_s - last < rule.window_s:
            return None  # the same burst: one alert is enough
        self._alerted_at[key] = event.time_s
        return TrafficAlert(event.source, rule.name, times[0], event.time_s, len(times))


def detect_traffic(
    events: Iterable[TrafficEvent], rules: Sequence[TrafficRule] = DEFAULT_RULES
) -> list[TrafficAlert]:
    """Every alert the rules raise over ``events`` (sorted by time here, so any order works)."""
    detector = TrafficDetector(rules)
    ordered = sorted(events, key=lambda e: e.time_s)
    return [alert for event in ordered for alert in detector.observe(event)]


def events_from_outcomes(
    outcomes: Iterable[Outcome], source: str, time_s: int
) -> list[TrafficEvent]:
    """Traffic events of one gateway answer: rejected readings carry their reason code."""
    return [
        TrafficEvent(time_s, source, o.code if o.status == "rejected" and o.code else o.status)
        for o in outcomes
    ]


def peak_counts(events: Iterable[TrafficEvent], rules: Sequence[TrafficRule]) -> dict[str, int]:
    """Per rule, the most matching events any one source sent within one of its windows."""
    peaks = {rule.name: 0 for rule in rules}
    recent: dict[tuple[str, str], deque[int]] = {}
    for event in sorted(events, key=lambda e: e.time_s):
        for rule in rules:
            if not rule.matches(event.code):
                continue
            times = recent.setdefault((event.source, rule.name), deque())
            times.append(event.time_s)
            while times[0] <= event.time_s - rule.window_s:
                times.popleft()
            peaks[rule.name] = max(peaks[rule.name], len(times))
    return peaks


def learn_rules(
    clean_events: Iterable[TrafficEvent],
    rules: Sequence[TrafficRule] = DEFAULT_RULES,
    margin: float = 2.0,
    headroom: int = 3,
) -> tuple[TrafficRule, ...]:
    """The rules with limits learned from a clean run: ``margin`` times the busiest source's
    peak, and at least ``headroom`` above it (a rule never seen in a clean run still allows
    ``headroom`` events, so one mistyped password is not an attack)."""
    if margin < 1.0:
        raise ValidationError("margin", f"must be at least 1, got {margin}")
    if headroom < 1:
        raise ValidationError("headroom", f"must be at least 1, got {headroom}")
    peaks = peak_counts(clean_events, rules)
    return tuple(
        replace(
            rule, max_count=max(math.ceil(margin * peaks[rule.name]), peaks[rule.name] + headroom)
        )
        for rule in rules
    )
