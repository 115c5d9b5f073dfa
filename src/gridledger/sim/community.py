"""The simulated energy community: households on the buses of a real SimBench LV grid.

Each household is one SimBench load (its real 15-minute profile, as whole Wh per interval),
some own PV and a few own a battery. Residential loads (SimBench ``H0`` profiles) are picked
before commercial or agricultural ones. PV first reuses the grid's own static generators with
their real profiles; when the grid has fewer sgens than PV households, the rest get a SimBench
PV profile scaled to a rooftop size. Everything random comes from one seeded generator, so a
seed names a community exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandapower as pp

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import (
    INTERVALS_PER_DAY,
    PROFILE_INTERVAL_S,
    Float64Array,
    GridEnergy,
    Int64Array,
    grid_energy_wh,
    interval_of_day,
    load_lv_grid,
    pv_profile_names,
    pv_profile_per_unit,
)
from gridledger.sim.assets import Battery, BatteryFleet

COMMUNITY_GRID_CODE = "1-LV-rural2--0-sw"  # 99 loads, 92 of them residential (H0)
SUNNY_JUNE_DAY = dt.date(2016, 6, 10)  # clear at all PV sites of 1-LV-rural2: 3.6-4.1 kWh/kWp
RESIDENTIAL_PROFILE_PREFIX = "H0"
DEFAULT_BATTERY = Battery(capacity_wh=10_000, max_power_w=5_000, round_trip_efficiency=0.9)


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Household:
    """One prosumer or consumer. ``load_wh`` and ``pv_wh`` are int64 Wh per interval."""

    name: str
    bus: int
    load_index: int
    load_profile: str
    load_wh: Int64Array
    pv_wh: Int64Array
    pv_source: str  # "" without PV, "sgen <index>" or "<profile> x <peak> W"
    pv_sgen_index: int | None  # the grid sgen this PV replays, if any
    battery: Battery | None

    @property
    def net_wh_before_battery(self) -> Int64Array:
        """Per interval: positive needs energy, negative has surplus."""
        return self.load_wh - self.pv_wh

    @property
    def has_pv(self) -> bool:
        return bool(self.pv_source)


@dataclass(frozen=True, eq=False)
class HouseholdArrays:
    """A community as one array per quantity; rows are households in community order."""

    names: tuple[str, ...]
    bus: Int64Array
    load_wh: Int64Array  # (households, intervals)
    pv_wh: Int64Array
    batteries: BatteryFleet

    @property
    def net_wh_before_battery(self) -> Int64Array:
        net: Int64Array = self.load_wh - self.pv_wh
        return net


@dataclass(frozen=True)
class Community:
    """Households of one grid over a window of ``n_intervals`` from ``start_interval``."""

    grid_code: str
    start_interval: int
    n_intervals: int
    interval_length_s: int
    households: tuple[Household, ...]

    def household(self, name: str) -> Household:
        for household in self.households:
            if household.name == name:
                return household
        raise ValidationError("name", f"no household named {name!r} in this community")

    def interval_start_s(self, interval: int, epoch_start_s: int = 0) -> int:
        """Start time of window interval ``interval``, counted from ``epoch_start_s``."""
        return epoch_start_s + interval * self.interval_length_s

    @property
    def start_date(self) -> dt.date:
        """Reference-year (2016) date of the window's first interval."""
        return dt.date(2016, 1, 1) + dt.timedelta(days=self.start_interval // INTERVALS_PER_DAY)

    def arrays(self) -> HouseholdArrays:
        """The households as arrays, for simulations over many intervals."""
        homes = self.households
        return HouseholdArrays(
            names=tuple(h.name for h in homes),
            bus=np.array([h.bus for h in homes], dtype=np.int64),
            load_wh=np.stack([h.load_wh for h in homes]),
            pv_wh=np.stack([h.pv_wh for h in homes]),
            batteries=BatteryFleet.of(
                [(row, h.battery) for row, h in enumerate(homes) if h.battery is not None]
            ),
        )

    @property
    def total_load_wh(self) -> int:
        return int(sum(int(h.load_wh.sum()) for h in self.households))

    @property
    def total_pv_wh(self) -> int:
        return int(sum(int(h.pv_wh.sum()) for h in self.households))


def _check_arguments(
    n_households: int, pv_share: float, battery_count: int, pv_peak_w_range: tuple[int, int]
) -> None:
    if n_households <= 0:
        raise ValidationError("n_households", f"must be positive, got {n_households}")
    if not 0.0 <= pv_share <= 1.0:
        raise ValidationError("pv_share", f"must be within [0, 1], got {pv_share}")
    if not 0 <= battery_count <= n_households:
        raise ValidationError(
            "battery_count", f"must be within 0..n_households={n_households}, got {battery_count}"
        )
    low, high = pv_peak_w_range
    if not 0 < low <= high:
        raise ValidationError("pv_peak_w_range", f"need 0 < low <= high, got {pv_peak_w_range}")


def _pick_loads(net: pp.pandapowerNet, n_households: int, rng: np.random.Generator) -> list[int]:
    """Residential loads first (in seeded order), then the others; ``n_households`` of them."""
    profiles = net.load["profile"].astype(str)
    residential = [
        int(i) for i in net.load.index[profiles.str.startswith(RESIDENTIAL_PROFILE_PREFIX)]
    ]
    others = [int(i) for i in net.load.index if int(i) not in set(residential)]
    if n_households > len(residential) + len(others):
        raise ValidationError(
            "n_households",
            f"grid has only {len(net.load)} loads, asked for {n_households} households",
        )
    ordered = list(rng.permutation(residential)) + list(rng.permutation(others))
    return sorted(int(i) for i in ordered[:n_households])


def _pv_arrays(
    net: pp.pandapowerNet,
    energy: GridEnergy,
    start_day: int | dt.date,
    n_pv: int,
    pv_peak_w_range: tuple[int, int],
    use_grid_sgens: bool,
    rng: np.random.Generator,
    pv_per_unit: Float64Array | None = None,
) -> list[tuple[Int64Array, str, int | None]]:
    """``n_pv`` PV series: the grid's sgens (real profiles) first, then scaled PV profiles.

    With ``pv_per_unit`` (one value per window interval) the scaled PV follows it instead of
    a SimBench profile (for example :func:`gridledger.sim.pv.pvlib_clear_sky_per_unit`).
    """
    arrays: list[tuple[Int64Array, str, int | None]] = []
    n_sgens = len(energy.sgen_index) if use_grid_sgens else 0
    for row in rng.permutation(n_sgens)[:n_pv]:
        sgen = energy.sgen_index[int(row)]
        arrays.append((energy.sgen_wh[int(row)], f"sgen {sgen}", sgen))
    names = ("pvlib",) if pv_per_unit is not None else pv_profile_names(net)
    if len(arrays) < n_pv and not names:
        raise ValidationError("pv_share", "grid ships no PV profile to scale for extra PV")
    hours_per_interval = PROFILE_INTERVAL_S / 3600
    while len(arrays) < n_pv:
        name = names[int(rng.integers(len(names)))]
        peak_w = int(rng.integers(pv_peak_w_range[0] // 100, pv_peak_w_range[1] // 100 + 1)) * 100
        per_unit = (
            pv_per_unit
            if pv_per_unit is not None
            else pv_profile_per_unit(net, name, start_day, energy.n_intervals)
        )
        wh = np.rint(per_unit * peak_w * hours_per_interval).astype(np.int64)
        arrays.append((wh, f"{name} x {peak_w} W", None))
    return arrays


def build_community(
    n_households: int = 12,
    seed: int = 0,
    pv_share: float = 0.5,
    battery_count: int = 2,
    grid_code: str = COMMUNITY_GRID_CODE,
    start_day: int | dt.date = SUNNY_JUNE_DAY,
    n_intervals: int = 96,
    pv_peak_w_range: tuple[int, int] = (4_000, 10_000),
    battery_template: Battery = DEFAULT_BATTERY,
    use_grid_sgens: bool = True,
    pv_per_unit: Float64Array | None = None,
) -> Community:
    """Households on real SimBench loads with real profiles; deterministic for a ``seed``.

    ``pv_share`` of households (rounded) get PV; ``battery_count`` get a battery, PV owners
    first, each starting half full. The window covers ``n_intervals`` from ``start_day``.
    ``use_grid_sgens=False`` gives every PV owner a rooftop-sized scaled profile instead of
    the grid's (farm-sized, up to ~29 kWp) static generators. ``pv_per_unit`` replaces the
    SimBench PV profiles of scaled rooftops by one given per-unit series (e.g. from pvlib).
    """
    _check_arguments(n_households, pv_share, battery_count, pv_peak_w_range)
    if pv_per_unit is not None and np.shape(pv_per_unit) != (n_intervals,):
        raise ValidationError("pv_per_unit", f"need {n_intervals} values, one per interval")
    net = load_lv_grid(grid_code)
    energy = grid_energy_wh(net, start_day, n_intervals)
    rng = np.random.default_rng(seed)
    load_ids = _pick_loads(net, n_households, rng)
    n_pv = round(pv_share * n_households)
    pv_slots = sorted(int(i) for i in rng.permutation(n_households)[:n_pv])
    pv_series = dict(
        zip(
            pv_slots,
            _pv_arrays(
                net, energy, start_day, n_pv, pv_peak_w_range, use_grid_sgens, rng, pv_per_unit
            ),
            strict=True,
        )
    )
    no_pv = [i for i in rng.permutation(n_households) if int(i) not in pv_series]
    battery_slots = {int(i) for i in (list(rng.permutation(pv_slots)) + no_pv)[:battery_count]}
    start_battery = Battery(
        battery_template.capacity_wh,
        battery_template.max_power_w,
        battery_template.round_trip_efficiency,
        battery_template.capacity_wh // 2,
    )
    row_of_load = {load: row for row, load in enumerate(energy.load_index)}
    zeros = np.zeros(n_intervals, dtype=np.int64)
    households = []
    for slot, load in enumerate(load_ids):
        pv_wh, pv_source, pv_sgen = pv_series.get(slot, (zeros, "", None))
        households.append(
            Household(
                name=f"household-{slot + 1:02d}",
                bus=int(net.load.at[load, "bus"]),
                load_index=load,
                load_profile=str(net.load.at[load, "profile"]),
                load_wh=_read_only(energy.load_wh[row_of_load[load]]),
                pv_wh=_read_only(pv_wh),
                pv_source=pv_source,
                pv_sgen_index=pv_sgen,
                battery=start_battery if slot in battery_slots else None,
            )
        )
    return Community(
        grid_code=grid_code,
        start_interval=interval_of_day(start_day),
        n_intervals=n_intervals,
        interval_length_s=PROFILE_INTERVAL_S,
        households=tuple(households),
    )


def _read_only(values: Int64Array) -> Int64Array:
    copy = np.array(values, dtype=np.int64, copy=True)
    copy.setflags(write=False)
    return copy
