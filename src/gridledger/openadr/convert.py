"""Between OpenADR 2.0b event dicts and the flexibility vocabulary (FlexRequest, FlexAward).

One flexibility request becomes one EiEvent per VEN of its zone, with two signals:

* ``LOAD_DISPATCH`` / ``delta`` in kW (measurement powerReal, scale k): the change of the
  household's net import the DSO asks for; negative is "down" (less import), positive "up";
* ``ELECTRICITY_PRICE`` / ``price`` in the settlement currency per kWh: what the DSO pays for
  each delivered kWh.

The event's targets carry the VEN (``ven_id``) and the grid zone (``group_id``). Its id is
``<request_id>:<ven_id>``: openleadr keys opt responses by event id, so each VEN gets its own
(request ids may hold ':', VEN ids may not).

Pure: no I/O, no asyncio. Parsing names the offending field (``event_signals[LOAD_DISPATCH]
.intervals[1].signal_payload: ...``) so a malformed event is refused before anything is booked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gridledger.errors import ValidationError
from gridledger.flex._types import FlexAward, FlexRequest

MARKET_CONTEXT = "oadr://gridledger/flex"
POWER_SIGNAL = "LOAD_DISPATCH"
PRICE_SIGNAL = "ELECTRICITY_PRICE"
_SCALES = {"none": 1, "k": 1_000, "M": 1_000_000}
MICRO = 1_000_000


def event_id_for(request_id: str, ven_id: str) -> str:
    return f"{request_id}:{ven_id}"


def request_id_of(event_id: str) -> str:
    """The flexibility request an event id belongs to (the id itself if it is not ours)."""
    head, sep, _ = event_id.rpartition(":")
    return head if sep else event_id


def check_request(request: FlexRequest) -> None:
    """Refuse a request the DSO side should never send; names the field."""
    if not request.request_id:
        raise ValidationError("request_id", "must not be empty")
    if not request.zone:
        raise ValidationError("zone", "must name a grid zone")
    if request.direction not in ("up", "down"):
        raise ValidationError("direction", f"must be 'up' or 'down', got {request.direction!r}")
    if request.power_w <= 0:
        raise ValidationError("power_w", f"must be positive, got {request.power_w}")
    if request.intervals <= 0:
        raise ValidationError("intervals", f"must be positive, got {request.intervals}")
    if request.price_micro_per_kwh < 0:
        raise ValidationError(
            "price_micro_per_kwh", f"must not be negative, got {request.price_micro_per_kwh}"
        )


def split_power_w(power_w: int, ven_ids: Sequence[str]) -> dict[str, int]:
    """The request's power shared equally among a zone's VENs (the remainder to the first)."""
    if not ven_ids:
        return {}
    share, rest = divmod(power_w, len(ven_ids))
    return {ven: share + (rest if i == 0 else 0) for i, ven in enumerate(sorted(ven_ids))}


def event_dict(
    request: FlexRequest,
    ven_id: str,
    power_w: int,
    interval_length_s: int,
    currency: str,
    created: datetime | None = None,
) -> dict[str, Any]:
    """The EiEvent (as openleadr's dict) asking ``ven_id`` for ``power_w`` of ``request``."""
    check_request(request)
    start = datetime.fromtimestamp(request.start, UTC)
    length = timedelta(seconds=interval_length_s)
    sign = -1 if request.direction == "down" else 1
    power_kw = sign * power_w / 1000
    price = request.price_micro_per_kwh / MICRO
    now = created or datetime.now(UTC)
    return {
        "event_descriptor": {
            "event_id": event_id_for(request.request_id, ven_id),
            "modification_number": 0,
            "market_context": MARKET_CONTEXT,
            "event_status": "far",
            "created_date_time": now,
            "modification_date_time": now,
            "priority": 0,
            "test_event": False,
        },
        "active_period": {"dtstart": start, "duration": length * request.intervals},
        "event_signals": [
            {
                "signal_name": POWER_SIGNAL,
                "signal_type": "delta",
                "signal_id": f"{request.request_id}-power",
                "measurement": {
                    "name": "powerReal",
                    "description": "RealPower",
                    "unit": "W",
                    "scale": "k",
                    "power_attributes": {"hertz": 50, "voltage": 230, "ac": True},
                },
                "intervals": _intervals(start, length, request.intervals, power_kw),
            },
            {
                "signal_name": PRICE_SIGNAL,
                "signal_type": "price",
                "signal_id": f"{request.request_id}-price",
                "measurement": {
                    "name": "currencyPerKWh",
                    "description": "currencyPerKWh",
                    "unit": currency,
                    "scale": "none",
                },
                "intervals": _intervals(start, length, request.intervals, price),
            },
        ],
        "targets": [{"ven_id": ven_id}, {"group_id": request.zone}],
        "response_required": "always",
    }


def price_event_dict(
    event_id: str,
    zone: str,
    ven_id: str,
    start: int,
    prices_micro_per_kwh: Sequence[int],
    interval_length_s: int,
    currency: str,
) -> dict[str, Any]:
    """A price-only EiEvent (price-based demand response): no answer is asked for."""
    if not prices_micro_per_kwh:
        raise ValidationError("prices_micro_per_kwh", "must hold one price per interval")
    if start % interval_length_s:
        raise ValidationError("start", "not on a market interval boundary")
    first = datetime.fromtimestamp(start, UTC)
    length = timedelta(seconds=interval_length_s)
    now = datetime.now(UTC)
    return {
        "event_descriptor": {
            "event_id": event_id_for(event_id, ven_id),
            "modification_number": 0,
            "market_context": MARKET_CONTEXT,
            "event_status": "far",
            "created_date_time": now,
            "modification_date_time": now,
            "priority": 0,
            "test_event": False,
        },
        "active_period": {"dtstart": first, "duration": length * len(prices_micro_per_kwh)},
        "event_signals": [
            {
                "signal_name": PRICE_SIGNAL,
                "signal_type": "price",
                "signal_id": f"{event_id}-price",
                "measurement": {
                    "name": "currencyPerKWh",
                    "description": "currencyPerKWh",
                    "unit": currency,
                    "scale": "none",
                },
                "intervals": [
                    {
                        "dtstart": first + length * i,
                        "duration": length,
                        "uid": i,
                        "signal_payload": price / MICRO,
                    }
                    for i, price in enumerate(prices_micro_per_kwh)
                ],
            }
        ],
        "targets": [{"ven_id": ven_id}, {"group_id": zone}],
        "response_required": "never",
    }


def event_end_s(event: Mapping[str, Any]) -> int:
    """When an event's active period ends (unix seconds)."""
    period = event["active_period"]
    return int((period["dtstart"] + period["duration"]).timestamp())


# -- parsing what a VEN receives ------------------------------------------------------------


def is_price_only(event: Mapping[str, Any]) -> bool:
    """A tariff (no answer asked, no power signal) rather than a flexibility request."""
    signals = event.get("event_signals")
    if event.get("response_required") != "never" or not isinstance(signals, list):
        return False
    names = [s.get("signal_name") for s in signals if isinstance(s, Mapping)]
    return PRICE_SIGNAL in names and POWER_SIGNAL not in names


def prices_from_event(
    event: Mapping[str, Any], interval_length_s: int, currency: str
) -> dict[int, int]:
    """A price-only event's tariff: interval start -> micro-units per kWh."""
    signal = _signal(event, PRICE_SIGNAL, "price", interval_length_s)
    unit = signal.measurement.get("unit", currency)
    if unit != currency:
        raise ValidationError(
            f"{signal.field}.measurement.unit", f"must be {currency} per kWh, got {unit!r}"
        )
    return {start: round(payload * MICRO) for start, _, payload in signal.intervals}


@dataclass(frozen=True)
class _Signal:
    field: str
    intervals: list[tuple[int, int, float]]  # (start unix s, duration s, payload)
    measurement: Mapping[str, Any]


def request_from_event(
    event: Mapping[str, Any], interval_length_s: int, currency: str
) -> FlexRequest:
    """The FlexRequest an EiEvent carries for this VEN; ValidationError names the bad field."""
    descriptor = _mapping(event, "event_descriptor")
    event_id = descriptor.get("event_id")
    if not isinstance(event_id, str) or not event_id:
        raise ValidationError("event_descriptor.event_id", "missing")
    zone = _zone(event.get("targets"))
    power = _signal(event, POWER_SIGNAL, "delta", interval_length_s)
    price = _signal(event, PRICE_SIGNAL, "price", interval_length_s)
    power_w = _power_w(power)
    if power_w == 0:
        raise ValidationError(f"{power.field}.intervals[0].signal_payload", "asks for 0 kW")
    price_micro = _price_micro(price, currency)
    if [i[0] for i in price.intervals] != [i[0] for i in power.intervals]:
        raise ValidationError(
            f"{price.field}.intervals", f"must cover the same intervals as {POWER_SIGNAL}"
        )
    return FlexRequest(
        request_id=request_id_of(event_id),
        zone=zone,
        direction="down" if power_w < 0 else "up",
        power_w=abs(power_w),
        start=power.intervals[0][0],
        intervals=len(power.intervals),
        price_micro_per_kwh=price_micro,
    )


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key) if isinstance(parent, Mapping) else None
    if not isinstance(value, Mapping):
        raise ValidationError(key, "missing or not a structure")
    return value


def _zone(targets: Any) -> str:
    if isinstance(targets, Mapping):
        targets = [targets]
    if not isinstance(targets, list):
        raise ValidationError("targets", "missing: an event names its VEN and grid zone")
    zones = [t.get("group_id") for t in targets if isinstance(t, Mapping) and t.get("group_id")]
    if len(zones) != 1 or not isinstance(zones[0], str):
        raise ValidationError("targets.group_id", f"expected one grid zone, got {zones!r}")
    return zones[0]


def _signal(event: Mapping[str, Any], name: str, kind: str, interval_length_s: int) -> _Signal:
    signals = event.get("event_signals")
    if not isinstance(signals, list):
        raise ValidationError("event_signals", "missing or not a list")
    found = [s for s in signals if isinstance(s, Mapping) and s.get("signal_name") == name]
    field = f"event_signals[{name}]"
    if len(found) != 1:
        raise ValidationError(field, f"expected exactly one {name} signal, got {len(found)}")
    signal = found[0]
    if signal.get("signal_type") != kind:
        raise ValidationError(
            f"{field}.signal_type", f"must be {kind!r}, got {signal.get('signal_type')!r}"
        )
    raw = signal.get("intervals")
    if not isinstance(raw, list) or not raw:
        raise ValidationError(f"{field}.intervals", "missing or empty")
    intervals = [
        _interval(item, f"{field}.intervals[{i}]", interval_length_s) for i, item in enumerate(raw)
    ]
    for i in range(1, len(intervals)):
        if intervals[i][0] != intervals[i - 1][0] + interval_length_s:
            raise ValidationError(
                f"{field}.intervals[{i}].dtstart", "must follow the previous interval without a gap"
            )
    measurement = signal.get("measurement") or {}
    if not isinstance(measurement, Mapping):
        raise ValidationError(f"{field}.measurement", "not a structure")
    return _Signal(field, intervals, measurement)


def _interval(item: Any, field: str, interval_length_s: int) -> tuple[int, int, float]:
    if not isinstance(item, Mapping):
        raise ValidationError(field, "not a structure")
    start = item.get("dtstart")
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ValidationError(f"{field}.dtstart", f"not a time with a zone: {start!r}")
    duration = item.get("duration")
    if not isinstance(duration, timedelta) or duration.total_seconds() != interval_length_s:
        raise ValidationError(
            f"{field}.duration",
            f"must be {interval_length_s} s (one market interval), got {duration!r}",
        )
    payload = item.get("signal_payload")
    if (
        isinstance(payload, bool)
        or not isinstance(payload, int | float)
        or not math.isfinite(payload)
    ):
        raise ValidationError(f"{field}.signal_payload", f"not a finite number: {payload!r}")
    start_s = int(start.timestamp())
    if start_s % interval_length_s:
        raise ValidationError(f"{field}.dtstart", "not on a market interval boundary")
    return start_s, interval_length_s, float(payload)


def _power_w(signal: _Signal) -> int:
    unit = signal.measurement.get("unit", "W")
    scale = signal.measurement.get("scale", "k")
    if unit != "W" or scale not in _SCALES:
        raise ValidationError(
            f"{signal.field}.measurement", f"must be real power in W, kW or MW, got {scale}{unit}"
        )
    values = {round(payload * _SCALES[scale]) for _, _, payload in signal.intervals}
    if len(values) != 1:
        raise ValidationError(
            f"{signal.field}.intervals", "the power must be the same in every interval"
        )
    return values.pop()


def _price_micro(signal: _Signal, currency: str) -> int:
    unit = signal.measurement.get("unit", currency)
    if unit != currency:
        raise ValidationError(
            f"{signal.field}.measurement.unit", f"must be {currency} per kWh, got {unit!r}"
        )
    values = {round(payload * MICRO) for _, _, payload in signal.intervals}
    if len(values) != 1:
        raise ValidationError(
            f"{signal.field}.intervals", "the price must be the same in every interval"
        )
    price = values.pop()
    if price < 0:
        raise ValidationError(f"{signal.field}.intervals[0].signal_payload", "negative price")
    return price


# -- what the DSO pays for ------------------------------------------------------------------


def awards_for(
    request: FlexRequest, participant: str, power_w: int, interval_length_s: int
) -> list[FlexAward]:
    """One award per interval of ``request`` for a household that opted in with ``power_w``."""
    energy_wh = power_w * interval_length_s // 3600
    return [
        FlexAward(
            request_id=request.request_id,
            participant=participant,
            zone=request.zone,
            direction=request.direction,
            interval_start=request.start + i * interval_length_s,
            energy_wh=energy_wh,
            price_micro_per_kwh=request.price_micro_per_kwh,
        )
        for i in range(request.intervals)
    ]


def _intervals(
    start: datetime, length: timedelta, count: int, payload: float
) -> list[dict[str, Any]]:
    """``count`` consecutive signal intervals of ``length`` from ``start``, one payload."""
    return [
        {"dtstart": start + length * i, "duration": length, "uid": i, "signal_payload": payload}
        for i in range(count)
    ]
