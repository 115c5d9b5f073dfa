"""Meter streams for training and evaluating the detectors: SimBench household loads, year-long.

Every residential (``H0``) load of a SimBench LV grid becomes one meter with its real 15-minute
profile as whole Wh. SimBench builds each household as one of five base profiles (H0-A, -B, -C,
-G, -L) times a rated power, so many households of a grid are exact (scaled) copies, in step to
the quarter hour. A real fleet has no such twins, and a detector comparing a meter with its
twin would look far better than it can be. So each meter is de-synchronised: it replays its
profile shifted by a seeded whole number of weeks on the 364-day (52-week) cycle, which keeps
weekdays and seasons aligned to within weeks while making households of one base profile
similar rather than identical.

The cycle is cut into 35-day episodes (28 days of trusted history, then 7 days to judge). Even
episodes train, odd episodes are held out, on separate grids. The five base profiles are shared
by every SimBench grid, so held-out weeks of one meter are training weeks of others' base
profile; what is held out is the grid, the mix and the meter's own timeline.
"""

from __future__ import annotations

import zlib
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
CYCLE_DAYS = 364  # 52 whole weeks: a shift by weeks wraps without breaking the weekday order
CYCLE_INTERVALS = CYCLE_DAYS * INTERVALS_PER_DAY
N_EPISODES = CYCLE_INTERVALS // EPISODE_INTERVALS  # 10 episodes fit in the cycle
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
    week_offset: tuple[int, ...]  # how many weeks each meter's profile is shifted
    energy_wh: Int64Array  # shape (n_meters, CYCLE_INTERVALS)

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
    """The residential meters of ``grid_code`` over the 52-week cycle, de-synchronised (cached)."""
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
    rng = np.random.default_rng(zlib.crc32(grid_code.encode()))
    offsets = tuple(int(k) for k in rng.integers(0, CYCLE_DAYS // 7, len(rows)))
    cycle = energy.load_wh[rows, :CYCLE_INTERVALS]
    series = np.stack(
        [np.roll(cycle[i], -k * 7 * INTERVALS_PER_DAY) for i, k in enumerate(offsets)]
    )
    series.setflags(write=False)
    return GridMeters(
        grid_code=grid_code,
        load_index=loads,
        profile=tuple(str(profiles.at[load]) for load in loads),
        meter=tuple(meter_address(grid_code, load) for load in loads),
        week_offset=offsets,
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
