"""Meter streams for training and evaluating the detectors: SimBench household loads, year-long.

Every residential (``H0``) load of a SimBench LV grid becomes one meter with its real 15-minute
profile as whole Wh. SimBench builds each household as one of five base profiles (H0-A, -B, -C,
-G, -L) times a rated power, so many households of a grid are exact copies; detectors therefore
compare a meter with its own history and with the whole community, never with "its" base
profile, which a real fleet would not hand out.

The year is cut into 35-day episodes (28 days of trusted history, then 7 days to judge). Even
episodes train, odd episodes are held out, so no day of held-out data is ever seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ValidationError
from gridledger.iotools.simbench import (
    INTERVALS_PER_DAY,
    PROFILE_LENGTH,
    Int64Array,
    grid_energy_wh,
    load_lv_grid,
)

HISTORY_DAYS = 28
JUDGED_DAYS = 7
EPISODE_DAYS = HISTORY_DAYS + JUDGED_DAYS
HISTORY_INTERVALS = HISTORY_DAYS * INTERVALS_PER_DAY
EPISODE_INTERVALS = EPISODE_DAYS * INTERVALS_PER_DAY
N_EPISODES = PROFILE_LENGTH // EPISODE_INTERVALS  # 10 episodes fit in the 366-day year
TRAIN_EPISODES = (0, 2, 4, 6, 8)
HELD_OUT_EPISODES = (1, 3, 5, 7, 9)
TRAIN_GRIDS = ("1-LV-rural2--0-sw", "1-LV-rural3--0-sw", "1-LV-semiurb4--0-sw")
HELD_OUT_GRIDS = ("1-LV-semiurb5--0-sw", "1-LV-urban6--0-sw")
RESIDENTIAL_PREFIX = "H0"


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class GridMeters:
    """Year-long Wh series of the residential meters of one SimBench grid (rows = meters)."""

    grid_code: str
    load_index: tuple[int, ...]
    profile: tuple[str, ...]
    meter: tuple[str, ...]  # checksummed address of each meter's (deterministic) key
    energy_wh: Int64Array  # shape (n_meters, PROFILE_LENGTH)

    @property
    def n_meters(self) -> int:
        return len(self.meter)


@dataclass(frozen=True, eq=False)
class Episode:
    """One 35-day slice of a grid's meters: 28 days of history, then 7 judged days."""

    grid_code: str
    episode: int
    profile: tuple[str, ...]
    meter: tuple[str, ...]
    energy_wh: Int64Array  # shape (n_meters, EPISODE_INTERVALS)
    start_interval: int  # of the reference year

    @property
    def n_meters(self) -> int:
        return len(self.meter)


def meter_address(grid_code: str, load_index: int) -> str:
    """The deterministic address of the meter on a SimBench load (dev keys, never real ones)."""
    return address_of(key_from_seed(f"meter:{grid_code}:load-{load_index}"))


@lru_cache(maxsize=8)
def grid_meters(grid_code: str) -> GridMeters:
    """The residential meters of ``grid_code`` over the whole reference year (cached)."""
    net = load_lv_grid(grid_code)
    energy = grid_energy_wh(net, 0, PROFILE_LENGTH)
    profiles = net.load["profile"].astype(str)
    rows = [
        row
        for row, load in enumerate(energy.load_index)
        if profiles.at[load].startswith(RESIDENTIAL_PREFIX)
    ]
    if not rows:
        raise ValidationError("grid_code", f"{grid_code} has no residential (H0) loads")
    loads = tuple(energy.load_index[row] for row in rows)
    series = np.ascontiguousarray(energy.load_wh[rows])
    series.setflags(write=False)
    return GridMeters(
        grid_code=grid_code,
        load_index=loads,
        profile=tuple(str(profiles.at[load]) for load in loads),
        meter=tuple(meter_address(grid_code, load) for load in loads),
        energy_wh=series,
    )


def episode(meters: GridMeters, index: int) -> Episode:
    """Episode ``index`` (0..9) of a grid's meters."""
    if not 0 <= index < N_EPISODES:
        raise ValidationError("index", f"episode must be in 0..{N_EPISODES - 1}, got {index}")
    start = index * EPISODE_INTERVALS
    return Episode(
        grid_code=meters.grid_code,
        episode=index,
        profile=meters.profile,
        meter=meters.meter,
        energy_wh=meters.energy_wh[:, start : start + EPISODE_INTERVALS],
        start_interval=start,
    )


def episodes(grid_codes: tuple[str, ...], indices: tuple[int, ...]) -> list[Episode]:
    return [episode(grid_meters(code), i) for code in grid_codes for i in indices]
