"""The DSO side: flexibility requests from the grid-aware forecast of the next intervals.

The operator runs the AC power flow on the forecast schedule (every household's planned net
position, one batch) and, for every interval where a transformer or line would exceed its
loading limit or a bus voltage would leave the band, asks the zone for just enough flexibility
to bring it back inside, with a safety ``margin``:

* direction: export through the transformer (``ext_grid_p_mw`` < 0) or a voltage above the
  band asks for "up" (more consumption: charge batteries, run shiftable loads); import or a
  voltage below the band asks for "down";
* power: the flows scale with the zone's net power, so an interval at ``ratio`` times its
  limit needs ``|P| * (1 - (1 - margin) / ratio)``; a voltage excursion uses the same rule on
  the voltage's distance from 1 pu. It is a first-order estimate: the grid-aware clearing and
  its confirming power flow still guard the limits if the estimate falls short.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.flex._types import Direction, FlexRequest

FloatArray = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class ZoneForecast:
    """A zone's forecast power flow, one value per interval (NaN: the flow did not converge)."""

    zone: str
    interval_starts_s: Int64Array
    ext_grid_p_mw: FloatArray  # + the zone imports through its transformer, - it exports
    max_trafo_loading_percent: FloatArray
    max_line_loading_percent: FloatArray
    min_vm_pu: FloatArray
    max_vm_pu: FloatArray


@dataclass(frozen=True)
class Limits:
    max_line_loading_percent: float = 100.0
    max_trafo_loading_percent: float = 100.0
    min_vm_pu: float = 0.90
    max_vm_pu: float = 1.10


def overload_ratio(forecast: ZoneForecast, limits: Limits) -> FloatArray:
    """Per interval, how far the worst limit is exceeded (1.0 = at the limit, <= 1 inside)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = np.stack(
            [
                forecast.max_trafo_loading_percent / limits.max_trafo_loading_percent,
                forecast.max_line_loading_percent / limits.max_line_loading_percent,
                (forecast.max_vm_pu - 1.0) / (limits.max_vm_pu - 1.0),
                (1.0 - forecast.min_vm_pu) / (1.0 - limits.min_vm_pu),
            ]
        )
    ratio: FloatArray = np.nanmax(np.nan_to_num(ratios, nan=0.0), axis=0)
    return ratio


def _direction(forecast: ZoneForecast, limits: Limits, step: int) -> Direction:
    if forecast.max_vm_pu[step] > limits.max_vm_pu:
        return "up"
    if forecast.min_vm_pu[step] < limits.min_vm_pu:
        return "down"
    return "up" if forecast.ext_grid_p_mw[step] < 0 else "down"


def requests_from_forecast(
    forecast: ZoneForecast,
    limits: Limits,
    price_micro_per_kwh: int,
    *,
    margin: float = 0.05,
) -> tuple[FlexRequest, ...]:
    """One request per interval in which the forecast breaks a limit (none when all is inside)."""
    if not 0.0 <= margin < 1.0:
        raise ValidationError("margin", f"must be within [0, 1), got {margin}")
    if price_micro_per_kwh < 0:
        raise ValidationError("price_micro_per_kwh", "must not be negative")
    n = forecast.interval_starts_s.shape[0]
    for name in ("ext_grid_p_mw", "max_trafo_loading_percent", "max_line_loading_percent"):
        if getattr(forecast, name).shape != (n,):
            raise ValidationError(name, f"need one value per interval ({n})")
    ratio = overload_ratio(forecast, limits)
    requests = []
    for step in np.flatnonzero(ratio > 1.0).tolist():
        power_w = abs(float(forecast.ext_grid_p_mw[step])) * 1e6 * (1 - (1 - margin) / ratio[step])
        if not np.isfinite(power_w) or power_w < 1:
            continue
        direction = _direction(forecast, limits, step)
        start = int(forecast.interval_starts_s[step])
        requests.append(
            FlexRequest(
                request_id=f"{forecast.zone}:{start}:{direction}",
                zone=forecast.zone,
                direction=direction,
                power_w=int(np.ceil(power_w)),
                start=start,
                intervals=1,
                price_micro_per_kwh=price_micro_per_kwh,
            )
        )
    return tuple(requests)


def merge_requests(
    first: tuple[FlexRequest, ...],
    awarded_w: dict[str, int],
    more: tuple[FlexRequest, ...],
) -> tuple[FlexRequest, ...]:
    """The requests after a re-forecast of the plan: what was awarded plus what is still missing.

    ``awarded_w`` is the power awarded per request id; ``more`` the re-forecast's requests for
    the remaining overloads. Asking for the unfilled part of a request again would only inflate
    it (the same offers are still short), so a request becomes ``awarded + more``.
    """
    by_id = {r.request_id: r for r in first}
    for r in more:
        old = by_id.get(r.request_id)
        power = r.power_w + (awarded_w.get(r.request_id, 0) if old is not None else 0)
        by_id[r.request_id] = dataclasses.replace(old or r, power_w=max(power, 1))
    return tuple(sorted(by_id.values(), key=lambda r: (r.zone, r.start, r.direction)))
