"""A household's OpenADR 2.0b VEN (openleadr): it answers flexibility events with opt-in or
opt-out as its planner decides, and reports the household's net power as telemetry.

The planner is a pure injected callable ``(request, household, interval_length_s) -> bool``:
the VEN only translates. :func:`headroom_planner` is the default (battery headroom plus
shiftable loads); the flexibility planning in :mod:`gridledger.flex` can be plugged in instead.
A malformed event is refused (opt-out) with the field named, and nothing is committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gridledger.config import Settings
from gridledger.errors import AuthorizationError, ServiceUnavailable, ValidationError
from gridledger.flex._types import FlexRequest
from gridledger.openadr import convert

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Household:
    """What a household's VEN knows of its flexible assets right now (W and Wh)."""

    participant: str
    battery_capacity_wh: int = 0
    battery_soc_wh: int = 0
    battery_power_w: int = 0  # the inverter's limit, charging or discharging
    shiftable_power_w: int = 0  # loads that can move out of (or into) the event's intervals
    net_power_w: int = 0  # telemetry: net import (+) or export (-) now


Planner = Callable[[FlexRequest, Household, int], bool]


def headroom_planner(request: FlexRequest, household: Household, interval_length_s: int) -> bool:
    """Opt in when the battery's headroom plus shiftable loads cover the asked power throughout.

    "down" (less import): discharge what the battery holds, defer shiftable loads;
    "up" (soak up an export peak): charge into the free capacity, pull shiftable loads in.
    """
    hours_s = request.intervals * interval_length_s
    if request.direction == "down":
        stored_wh = household.battery_soc_wh
    else:
        stored_wh = household.battery_capacity_wh - household.battery_soc_wh
    # The battery's sustainable power over the event: limited by its inverter and its energy.
    battery_w = min(household.battery_power_w, max(stored_wh, 0) * 3600 // hours_s)
    return battery_w + household.shiftable_power_w >= request.power_w


class Ven:
    """An openleadr OpenADRClient for one household. Use on its event loop (async)."""

    def __init__(
        self,
        settings: Settings,
        vtn_url: str,
        household: Callable[[], Household],
        planner: Planner = headroom_planner,
    ) -> None:
        from openleadr import OpenADRClient

        self.settings = settings
        self.household = household
        self.planner = planner
        self.ven_name = settings.ven_id or household().participant
        self.vtn_url = vtn_url
        self.client = OpenADRClient(ven_name=self.ven_name, vtn_url=vtn_url)
        self.client.add_handler("on_event", self._on_event)
        self.client.add_handler("on_update_event", self._on_event)
        self.client.add_report(
            callback=lambda: float(self.household().net_power_w),
            resource_id="household",
            measurement="real_power",
            unit="W",
            sampling_rate=_sampling_rate(),
            report_duration=timedelta(seconds=settings.openadr_report_interval_s),
        )
        self._heard_vtn = False
        self.client.add_hook("after_receive_xml", self._heard)
        self.commitments: dict[str, FlexRequest] = {}  # request_id -> what we promised
        self.declined: list[str] = []
        self.rejected: list[tuple[str, str]] = []  # (event_id, the error naming the field)
        self.prices: dict[int, int] = {}  # interval start -> price (micro per kWh) from the DSO

    def _heard(self, _xml: str) -> None:
        self._heard_vtn = True

    async def start(self) -> None:
        """Register with the VTN, offer telemetry and start polling."""
        await self.client.run()
        if self.client.registration_id is None:
            if not self._heard_vtn:
                raise ServiceUnavailable(f"--vtn-url: no OpenADR VTN answers at {self.vtn_url}")
            raise AuthorizationError(
                f"the VTN at {self.vtn_url} refused to register VEN {self.ven_name} "
                "(it is not a participant the DSO knows)"
            )
        log.info("OpenADR VEN %s registered with %s", self.ven_name, self.vtn_url)

    async def stop(self) -> None:
        if self.client.client_session is not None:
            await self.client.stop()

    @property
    def ven_id(self) -> str | None:
        value = self.client.ven_id
        return str(value) if value is not None else None

    def _on_event(self, event: Mapping[str, Any]) -> str:
        """openleadr asks: optIn or optOut. Nothing is committed unless the event parses."""
        event_id = str((event.get("event_descriptor") or {}).get("event_id", "?"))
        status = (event.get("event_descriptor") or {}).get("event_status")
        if convert.is_price_only(event):
            return self._on_prices(event_id, event)
        try:
            request = convert.request_from_event(
                event, self.settings.interval_length_s, self.settings.currency
            )
        except ValidationError as exc:
            log.warning("OpenADR: refused malformed event %s: %s", event_id, exc)
            self.rejected.append((event_id, str(exc)))
            return convert_opt(False)
        if status == "cancelled":
            self.commitments.pop(request.request_id, None)
            return convert_opt(False)
        if self.planner(request, self.household(), self.settings.interval_length_s):
            self.commitments[request.request_id] = request
            return convert_opt(True)
        self.commitments.pop(request.request_id, None)
        self.declined.append(request.request_id)
        return convert_opt(False)

    def _on_prices(self, event_id: str, event: Mapping[str, Any]) -> str:
        """A tariff for price-based demand response: kept for the planner; nothing to answer."""
        try:
            prices = convert.prices_from_event(
                event, self.settings.interval_length_s, self.settings.currency
            )
        except ValidationError as exc:
            log.warning("OpenADR: refused malformed price event %s: %s", event_id, exc)
            self.rejected.append((event_id, str(exc)))
            return convert_opt(False)
        self.prices.update(prices)
        return convert_opt(True)


def convert_opt(opt_in: bool) -> str:
    return "optIn" if opt_in else "optOut"


def _sampling_rate() -> Any:
    from openleadr import objects

    # Offer anything from 1 s to 1 h: the VTN picks (openadr_report_interval_s).
    return objects.SamplingRate(
        min_period=timedelta(seconds=1), max_period=timedelta(hours=1), on_change=False
    )


def household_from_file(participant: str, values: Mapping[str, Any]) -> Household:
    """A household from people's units (kWh, kW), as in ``gridledger ven --household FILE``."""
    known = {
        "battery_capacity_kwh",
        "battery_soc_kwh",
        "battery_power_kw",
        "shiftable_kw",
        "net_power_kw",
    }
    for key in values:
        if key not in known:
            shown = ", ".join(sorted(known))
            raise ValidationError(key, f"unknown household setting; known: {shown}")

    def number(key: str, unit_wh: int) -> int:
        raw = values.get(key, 0)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValidationError(key, f"not a number: {raw!r}")
        if raw < 0 and key != "net_power_kw":
            raise ValidationError(key, f"must not be negative, got {raw}")
        return round(raw * unit_wh)

    household = Household(
        participant,
        battery_capacity_wh=number("battery_capacity_kwh", 1000),
        battery_soc_wh=number("battery_soc_kwh", 1000),
        battery_power_w=number("battery_power_kw", 1000),
        shiftable_power_w=number("shiftable_kw", 1000),
        net_power_w=number("net_power_kw", 1000),
    )
    if household.battery_soc_wh > household.battery_capacity_wh:
        raise ValidationError("battery_soc_kwh", "must not exceed battery_capacity_kwh")
    return household
