"""SimBench grids and their year-long 15-minute profiles, as pandapower nets and int64 Wh arrays.

SimBench ships every grid and its profiles (one reference year, 2016, 35,136 quarter hours)
inside the package, so nothing here touches the network. Loading a net costs seconds, so nets
are cached per process; callers get a deep copy and may mutate it freely.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from gridledger.errors import DataSourceError, ValidationError

if TYPE_CHECKING:  # pandapower + simbench take seconds to import: only where a grid is loaded
    import pandapower as pp
    import pandas as pd

DEFAULT_LV_GRID_CODE = "1-LV-rural1--0-sw"
PROFILE_YEAR = 2016
PROFILE_INTERVAL_S = 900
INTERVALS_PER_DAY = 86_400 // PROFILE_INTERVAL_S
PROFILE_LENGTH = 35_136  # 366 days x 96: SimBench's reference year is a leap year
_WH_PER_MW_INTERVAL = 1_000_000 * PROFILE_INTERVAL_S / 3600

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GridEnergy:
    """Energy per 15-minute interval of every load and static generator of a grid.

    Rows follow ``load_index`` / ``sgen_index`` (pandapower element indices); columns are
    intervals starting at ``start_interval`` of the reference year. Loads consume, sgens produce;
    both are non-negative Wh.
    """

    start_interval: int
    load_index: tuple[int, ...]
    load_wh: Int64Array
    sgen_index: tuple[int, ...]
    sgen_wh: Int64Array

    @property
    def n_intervals(self) -> int:
        return int(self.load_wh.shape[1])


@lru_cache(maxsize=8)
def _cached_net(code: str) -> pp.pandapowerNet:
    try:
        import simbench

        net = simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises bare ValueError/KeyError for unknown codes
        raise DataSourceError(f"SimBench grid code {code!r}: cannot be loaded: {exc}") from exc
    if len(net.bus) == 0:
        raise DataSourceError(f"SimBench grid code {code!r}: the grid has no buses")
    return net


def load_lv_grid(code: str = DEFAULT_LV_GRID_CODE) -> pp.pandapowerNet:
    """Return the SimBench grid ``code`` as a fresh pandapower net (loaded once per process)."""
    return copy.deepcopy(_cached_net(code))


def load_profiles(net: pp.pandapowerNet) -> dict[tuple[str, str], pd.DataFrame]:
    """Absolute time series of the net, keyed like ``("load", "p_mw")``; rows are intervals."""
    try:
        import simbench

        profiles: dict[tuple[str, str], pd.DataFrame] = simbench.get_absolute_values(
            net, profiles_instead_of_study_cases=True
        )
    except Exception as exc:
        raise DataSourceError(f"net profiles: cannot compute absolute values: {exc}") from exc
    return profiles


def interval_of_day(start_day: int | dt.date) -> int:
    """First interval index of ``start_day`` (day of the reference year, 0-based, or a date).

    A date from any year maps to the same month and day of the reference year.
    """
    if isinstance(start_day, dt.date):
        try:
            day = dt.date(PROFILE_YEAR, start_day.month, start_day.day)
        except ValueError as exc:  # defensive: 2016 is a leap year, so every date maps
            raise ValidationError("start_day", str(exc)) from exc
        day_index = (day - dt.date(PROFILE_YEAR, 1, 1)).days
    else:
        day_index = int(start_day)
    if not 0 <= day_index < PROFILE_LENGTH // INTERVALS_PER_DAY:
        raise ValidationError("start_day", f"day index {day_index} outside 0..365")
    return day_index * INTERVALS_PER_DAY


def _check_window(start_interval: int, n_intervals: int) -> None:
    if n_intervals <= 0:
        raise ValidationError("n_intervals", f"must be positive, got {n_intervals}")
    if start_interval + n_intervals > PROFILE_LENGTH:
        raise ValidationError(
            "n_intervals",
            f"window {start_interval}+{n_intervals} runs past the {PROFILE_LENGTH}-interval year",
        )


def mw_to_interval_wh(p_mw: Float64Array) -> Int64Array:
    """Mean power per 15-minute interval (MW) to energy (Wh), rounded to whole Wh."""
    return np.rint(np.asarray(p_mw, dtype=np.float64) * _WH_PER_MW_INTERVAL).astype(np.int64)


def grid_energy_wh(
    net: pp.pandapowerNet, start_day: int | dt.date, n_intervals: int = INTERVALS_PER_DAY
) -> GridEnergy:
    """Wh per interval of the net's loads and sgens, ``n_intervals`` from ``start_day``."""
    start = interval_of_day(start_day)
    _check_window(start, n_intervals)
    profiles = load_profiles(net)
    window = slice(start, start + n_intervals)
    loads = profiles[("load", "p_mw")].iloc[window]
    sgens = profiles[("sgen", "p_mw")].iloc[window]
    return GridEnergy(
        start_interval=start,
        load_index=tuple(int(i) for i in loads.columns),
        load_wh=np.clip(mw_to_interval_wh(loads.to_numpy().T), 0, None),
        sgen_index=tuple(int(i) for i in sgens.columns),
        sgen_wh=np.clip(mw_to_interval_wh(sgens.to_numpy().T), 0, None),
    )


def pv_profile_per_unit(
    net: pp.pandapowerNet, profile_name: str, start_day: int | dt.date, n_intervals: int
) -> Float64Array:
    """Normalised PV output (fraction of installed peak) of a SimBench renewables profile."""
    start = interval_of_day(start_day)
    _check_window(start, n_intervals)
    renewables: pd.DataFrame = net.profiles["renewables"]
    if profile_name not in renewables.columns:
        raise DataSourceError(f"renewables profile {profile_name!r}: not in this SimBench grid")
    values: Float64Array = renewables[profile_name].to_numpy(dtype=np.float64)
    return np.clip(values[start : start + n_intervals], 0.0, None)


def pv_profile_names(net: pp.pandapowerNet) -> tuple[str, ...]:
    """Names of the PV profiles the grid ships (``PV5``, ``PV6``...), sorted."""
    renewables: pd.DataFrame = net.profiles["renewables"]
    return tuple(sorted(str(c) for c in renewables.columns if str(c).startswith("PV")))
