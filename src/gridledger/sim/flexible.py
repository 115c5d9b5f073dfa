"""A shiftable (flexible) load: a fixed daily energy placed inside a time window.

Think of a dishwasher, a heat-pump boiler or an EV that must get ``daily_energy_wh`` between
``window_start_interval`` and ``window_end_interval`` of each day, at most ``max_power_w``.
:func:`schedule_shiftable` places it where a signal (for example the community's forecast PV
surplus) is highest: greedy water-filling, which is optimal for a linear value of the signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError

Int64Array = npt.NDArray[np.int64]
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class ShiftableLoad:
    """Energy per day (Wh), power limit (W) and the window (interval of the day, end excluded)."""

    daily_energy_wh: int
    max_power_w: int
    window_start_interval: int
    window_end_interval: int

    def __post_init__(self) -> None:
        if self.daily_energy_wh < 0:
            raise ValidationError(
                "daily_energy_wh", f"must not be negative: {self.daily_energy_wh}"
            )
        if self.max_power_w <= 0:
            raise ValidationError("max_power_w", f"must be positive, got {self.max_power_w}")
        if not 0 <= self.window_start_interval < self.window_end_interval:
            raise ValidationError(
                "window_start_interval", "need 0 <= window_start_interval < window_end_interval"
            )

    def max_energy_wh(self, interval_length_s: int) -> int:
        return self.max_power_w * interval_length_s // _SECONDS_PER_HOUR

    def check_fits(self, interval_length_s: int, intervals_per_day: int) -> None:
        """The window lies in the day and the power limit can deliver the energy in it."""
        if self.window_end_interval > intervals_per_day:
            raise ValidationError(
                "window_end_interval", f"must be at most {intervals_per_day} (one day)"
            )
        width = self.window_end_interval - self.window_start_interval
        if width * self.max_energy_wh(interval_length_s) < self.daily_energy_wh:
            raise ValidationError("daily_energy_wh", "does not fit in the window at max_power_w")


def schedule_shiftable(
    load: ShiftableLoad, signal: npt.ArrayLike, interval_length_s: int
) -> Int64Array:
    """Energy (Wh) per interval of one day: fill the window's highest-signal intervals first.

    ``signal`` has one value per interval of the day; ties go to the earlier interval.
    """
    values = np.asarray(signal, dtype=np.float64)
    load.check_fits(interval_length_s, int(values.shape[0]))
    schedule = np.zeros(values.shape[0], dtype=np.int64)
    window = np.arange(load.window_start_interval, load.window_end_interval)
    order = window[np.argsort(-values[window], kind="stable")]
    step_wh = load.max_energy_wh(interval_length_s)
    left_wh = load.daily_energy_wh
    for interval in order:
        if left_wh == 0:
            break
        schedule[interval] = min(step_wh, left_wh)
        left_wh -= int(schedule[interval])
    return schedule


def schedule_days(
    load: ShiftableLoad, signal: npt.ArrayLike, interval_length_s: int, intervals_per_day: int
) -> Int64Array:
    """:func:`schedule_shiftable` for each whole day of a multi-day ``signal``."""
    values = np.asarray(signal, dtype=np.float64)
    if values.shape[0] % intervals_per_day:
        raise ValidationError("signal", f"length must be whole days of {intervals_per_day}")
    days = values.reshape(-1, intervals_per_day)
    return np.concatenate([schedule_shiftable(load, day, interval_length_s) for day in days])
