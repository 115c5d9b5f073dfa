"""More household devices, each driven by a data source nobody here wrote.

* **Small wind** (``[wind]``): the per-unit power curve of a turbine in windpowerlib's bundled
  oedb turbine library, scaled to the household turbine's rated power; the 10 m wind speed of
  the weather year is lifted to hub height with windpowerlib's logarithmic profile and the curve
  is density-corrected with windpowerlib's barometric air density.
* **Heat pumps with a thermal store** (``[heat_pump]``): hourly space-heat demand from
  demandlib's BDEW standard heat load profile (single-family house) on the weather year's
  temperatures; the COP follows a fraction of the Carnot COP; a hot-water store lets the pump
  run when the community has a local surplus and coast on the store otherwise.
* **EV charging** (``[ev]``): a documented synthetic model (emobpy 0.6.2 does install, but
  pulls 21 more packages, plotting and a Zenodo downloader among them, for a file-based
  workflow): every EV arrives home each evening, leaves the next morning and needs the day's
  driving energy, each drawn from a seeded normal distribution; a smart charger fills the
  plug-in window's highest-surplus intervals first (greedy water-filling), a plain one charges
  at full power from arrival.

The weather year is a TMY3 file shipped inside pvlib (``[weather] station``): hourly dry-bulb
temperature, 10 m wind speed and pressure. The run's dates are mapped on it by month, day and
hour (29 February reuses 28 February); its hours are local standard time of the station.

Everything is arrays, one row per device, in whole Wh: the runner adds :attr:`DeviceRun.load_wh`
to the households' load and :attr:`DeviceRun.generation_wh` to their local generation before
battery dispatch, so the strategies quote the devices' energy and the grid-aware clearing sees
(and may curtail) it on the household's bus like any other order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import DataSourceError, ValidationError

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_HOUR = 3600
HOURS_PER_TMY = 8760
WEATHER_STATIONS = {  # pvlib/data TMY3 files: a windy cold coast and a mild inland site
    "sand-point-ak": "703165TY.csv",
    "greensboro-nc": "723170TYA.CSV",
}
DEVICE_SECTIONS = ("ev", "heat_pump", "wind", "weather")
_KELVIN = 273.15
_WIND_MEASURED_AT_M = 10.0  # TMY3 wind speed is measured at 10 m


# -- configuration (the scenario's [ev], [heat_pump], [wind] and [weather] tables) ----------
@dataclass(frozen=True)
class EvConfig:
    """EVs charging at home: shares in [0, 1], energy in Wh, power in W, hours of the day."""

    share: float = 0.0
    charger_power_w: int = 11_000
    daily_energy_wh_mean: int = 7_000  # ~40 km at 0.18 kWh/km
    daily_energy_wh_sd: int = 3_000
    arrival_hour_mean: float = 18.0
    arrival_hour_sd: float = 1.5
    departure_hour_mean: float = 7.5
    departure_hour_sd: float = 1.0
    smart: bool = True  # charge where the community surplus is highest, else from arrival

    def check(self) -> None:
        _share("ev.share", self.share)
        _positive("ev.charger_power_w", self.charger_power_w)
        _not_negative("ev.daily_energy_wh_mean", self.daily_energy_wh_mean)
        _not_negative("ev.daily_energy_wh_sd", self.daily_energy_wh_sd)
        if not 12.0 <= self.arrival_hour_mean < 24.0:
            raise ValidationError("ev.arrival_hour_mean", "must be within [12, 24)")
        if not 0.0 <= self.departure_hour_mean < 12.0:
            raise ValidationError("ev.departure_hour_mean", "must be within [0, 12)")
        _not_negative("ev.arrival_hour_sd", self.arrival_hour_sd)
        _not_negative("ev.departure_hour_sd", self.departure_hour_sd)


@dataclass(frozen=True)
class HeatPumpConfig:
    """Air-source heat pumps with a hot-water store (thermal Wh, electrical W)."""

    share: float = 0.0
    annual_heat_demand_kwh_min: int = 8_000
    annual_heat_demand_kwh_max: int = 20_000
    max_power_w: int = 3_500  # electrical input
    store_capacity_wh: int = 12_000  # ~300 l of water over a 35 K band
    store_loss_per_hour: float = 0.01  # fraction of the stored heat
    sink_temperature_c: float = 45.0  # flow temperature
    carnot_efficiency: float = 0.45  # COP = this x Carnot COP, clipped to [1, 7]
    building_class: int = 1  # BDEW building class (1: older single-family houses)
    smart: bool = True  # fill the store in surplus intervals, else heat as demanded

    def check(self) -> None:
        _share("heat_pump.share", self.share)
        _positive("heat_pump.annual_heat_demand_kwh_min", self.annual_heat_demand_kwh_min)
        if self.annual_heat_demand_kwh_max < self.annual_heat_demand_kwh_min:
            raise ValidationError(
                "heat_pump.annual_heat_demand_kwh_max", "must not be below the minimum"
            )
        _positive("heat_pump.max_power_w", self.max_power_w)
        _positive("heat_pump.store_capacity_wh", self.store_capacity_wh)
        if not 0.0 <= self.store_loss_per_hour < 1.0:
            raise ValidationError("heat_pump.store_loss_per_hour", "must be within [0, 1)")
        if not 0.0 < self.carnot_efficiency <= 1.0:
            raise ValidationError("heat_pump.carnot_efficiency", "must be within (0, 1]")
        if not 20.0 <= self.sink_temperature_c <= 80.0:
            raise ValidationError("heat_pump.sink_temperature_c", "must be within [20, 80]")
        if self.building_class not in range(1, 12):
            raise ValidationError("heat_pump.building_class", "must be a BDEW class 1..11")


@dataclass(frozen=True)
class WindConfig:
    """Small wind turbines on the households' land."""

    share: float = 0.0
    nominal_power_w: int = 10_000
    hub_height_m: float = 18.0
    roughness_length_m: float = 0.1  # open farmland with hedges
    turbine_type: str = "E-53/800"  # the power curve's shape (oedb library), scaled

    def check(self) -> None:
        _share("wind.share", self.share)
        _positive("wind.nominal_power_w", self.nominal_power_w)
        if not 2.0 <= self.hub_height_m <= 200.0:
            raise ValidationError("wind.hub_height_m", "must be within [2, 200]")
        if not 0.0 < self.roughness_length_m < 2.0:
            raise ValidationError("wind.roughness_length_m", "must be within (0, 2)")


@dataclass(frozen=True)
class DeviceConfig:
    """The scenario's devices; all shares 0 (the default) means no devices at all."""

    ev: EvConfig = EvConfig()
    heat_pump: HeatPumpConfig = HeatPumpConfig()
    wind: WindConfig = WindConfig()
    weather_station: str = "sand-point-ak"

    def __post_init__(self) -> None:
        self.ev.check()
        self.heat_pump.check()
        self.wind.check()
        if self.weather_station not in WEATHER_STATIONS:
            raise ValidationError(
                "weather.station",
                f"must be one of {sorted(WEATHER_STATIONS)}, got {self.weather_station!r}",
            )

    @property
    def any(self) -> bool:
        return bool(self.ev.share or self.heat_pump.share or self.wind.share)


_TABLES: Mapping[str, type[EvConfig] | type[HeatPumpConfig] | type[WindConfig]] = {
    "ev": EvConfig,
    "heat_pump": HeatPumpConfig,
    "wind": WindConfig,
}


def _coerce(key: str, default: Any, value: Any) -> Any:
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, float):
        expected = (int, float)
    else:
        expected = (type(default),)
    if isinstance(value, bool) and bool not in expected:
        raise ValidationError(key, f"must be {expected[-1].__name__}, got a boolean")
    if not isinstance(value, expected):
        raise ValidationError(key, f"must be a {expected[-1].__name__}, got {value!r}")
    return float(value) if float in expected else value


def _table(section: str, content: Any) -> dict[str, Any]:
    if not isinstance(content, Mapping):
        raise ValidationError(section, "must be a table")
    known = {f.name: f.default for f in dataclasses.fields(_TABLES[section])}
    values = {}
    for key, value in content.items():
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValidationError(
                f"{section}.{key}", f"unknown key in [{section}]; {hint}known: {', '.join(known)}"
            )
        values[key] = _coerce(f"{section}.{key}", known[key], value)
    return values


def devices_from_mapping(tables: Mapping[str, Any]) -> DeviceConfig:
    """``{"ev": {...}, "wind": {...}, "weather": {"station": ...}}`` (parsed TOML) -> config."""
    changes: dict[str, Any] = {}
    for section, content in tables.items():
        if section == "weather":
            if not isinstance(content, Mapping) or set(content) - {"station"}:
                raise ValidationError("weather", "the only key of [weather] is station")
            changes["weather_station"] = _coerce("weather.station", "", content.get("station"))
        else:
            config = _TABLES[section](**_table(section, content))
            changes[section] = config
    return DeviceConfig(**changes)


def _share(field: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValidationError(field, f"must be within [0, 1], got {value}")


def _positive(field: str, value: float) -> None:
    if value <= 0:
        raise ValidationError(field, f"must be positive, got {value}")


def _not_negative(field: str, value: float) -> None:
    if value < 0:
        raise ValidationError(field, f"must not be negative, got {value}")


# -- the weather year --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Weather:
    """Per run interval: air temperature (°C), 10 m wind speed (m/s), pressure (Pa)."""

    temperature_c: FloatArray
    wind_speed_m_per_s: FloatArray
    pressure_pa: FloatArray


@functools.lru_cache(maxsize=4)
def _tmy(station: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The station's 8,760 hours (hour 0 = 1 January 00:00-01:00 local standard time)."""
    import pvlib

    path = Path(pvlib.__file__).parent / "data" / WEATHER_STATIONS[station]
    try:
        data, _meta = pvlib.iotools.read_tmy3(str(path), coerce_year=2015, map_variables=True)
    except OSError as exc:
        raise DataSourceError(f"weather.station {station}: cannot read {path}: {exc}") from exc
    if len(data) != HOURS_PER_TMY:
        raise DataSourceError(f"weather.station {station}: {len(data)} hours, need 8760")
    # TMY3 stamps hour-ending: the row stamped 01:00 is the hour from 00:00
    return (
        data["temp_air"].to_numpy(dtype=np.float64),
        data["wind_speed"].to_numpy(dtype=np.float64),
        data["pressure"].to_numpy(dtype=np.float64) * 100.0,  # mbar -> Pa
    )


def tmy_hours(start: dt.date, n_intervals: int, interval_length_s: int) -> Int64Array:
    """The TMY hour row of every run interval (by month, day and hour of the run's dates)."""
    seconds = np.arange(n_intervals, dtype=np.int64) * interval_length_s
    day = seconds // 86_400
    hour = (seconds % 86_400) // SECONDS_PER_HOUR
    first = (start - dt.date(start.year, 1, 1)).days
    day_of_year = first + day
    leap = start.year % 4 == 0 and (start.year % 100 != 0 or start.year % 400 == 0)
    if leap:  # drop 29 February (day 59): it reuses 28 February
        day_of_year = np.where(day_of_year >= 59, np.maximum(day_of_year - 1, 58), day_of_year)
    rows: Int64Array = (day_of_year % 365) * 24 + hour
    return rows


def weather_window(
    station: str, start: dt.date, n_intervals: int, interval_length_s: int
) -> Weather:
    temperature, wind, pressure = _tmy(station)
    rows = tmy_hours(start, n_intervals, interval_length_s)
    return Weather(temperature[rows], wind[rows], pressure[rows])


# -- small wind (windpowerlib) ----------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def power_curve_per_unit(turbine_type: str) -> tuple[FloatArray, FloatArray]:
    """(wind speeds m/s, power as a fraction of rated) of a turbine in windpowerlib's library."""
    from windpowerlib import WindTurbine

    try:
        turbine = WindTurbine(turbine_type=turbine_type, hub_height=100.0)
    except (KeyError, ValueError) as exc:
        raise ValidationError(
            "wind.turbine_type", f"not in windpowerlib's library: {exc}"
        ) from None
    curve = turbine.power_curve
    if curve is None or turbine.nominal_power is None:
        raise ValidationError("wind.turbine_type", f"{turbine_type} has no power curve")
    speeds = curve["wind_speed"].to_numpy(dtype=np.float64)
    per_unit = curve["value"].to_numpy(dtype=np.float64) / float(turbine.nominal_power)
    return speeds, per_unit


def wind_per_unit(config: WindConfig, weather: Weather) -> tuple[FloatArray, FloatArray]:
    """(hub-height wind speed, output as a fraction of rated power) per interval."""
    from windpowerlib import density, power_output, temperature, wind_speed

    hub = config.hub_height_m
    v_hub = np.asarray(
        wind_speed.logarithmic_profile(
            weather.wind_speed_m_per_s, _WIND_MEASURED_AT_M, hub, config.roughness_length_m
        ),
        dtype=np.float64,
    )
    t_hub_k = np.asarray(
        temperature.linear_gradient(weather.temperature_c + _KELVIN, 2.0, hub), dtype=np.float64
    )
    rho = np.asarray(density.barometric(weather.pressure_pa, 0.0, hub, t_hub_k), dtype=np.float64)
    speeds, per_unit = power_curve_per_unit(config.turbine_type)
    output = np.asarray(
        power_output.power_curve(v_hub, speeds, per_unit, density=rho, density_correction=True),
        dtype=np.float64,
    )
    clipped: FloatArray = np.clip(output, 0.0, float(per_unit.max()))
    return v_hub, clipped


# -- heat demand (demandlib) and the heat pump's COP ---------------------------------------------
@functools.lru_cache(maxsize=16)
def _heat_shape(station: str, building_class: int) -> FloatArray:
    """BDEW single-family heat demand per TMY hour as a fraction of the annual demand."""
    import pandas as pd
    from demandlib import bdew

    temperature, _wind, _pressure = _tmy(station)
    index = pd.date_range("2015-01-01", periods=HOURS_PER_TMY, freq="h")
    building = bdew.HeatBuilding(
        index,
        temperature=pd.Series(temperature, index=index),
        shlp_type="EFH",
        building_class=building_class,
        wind_class=1,
        annual_heat_demand=1.0,
        name="EFH",
        holidays={},
    )
    shape = np.asarray(building.get_bdew_profile(), dtype=np.float64)
    normalised: FloatArray = shape / shape.sum()
    return normalised


def heat_pump_cop(config: HeatPumpConfig, temperature_c: FloatArray) -> FloatArray:
    """A fraction of the Carnot COP between the outdoor air and the flow temperature."""
    sink_k = config.sink_temperature_c + _KELVIN
    lift_k = np.maximum(config.sink_temperature_c - temperature_c, 5.0)
    cop: FloatArray = np.clip(config.carnot_efficiency * sink_k / lift_k, 1.0, 7.0)
    return cop


def _integer_rows(values: FloatArray) -> Int64Array:
    """Whole Wh per interval that keep each row's running total (no drift from rounding)."""
    cumulative = np.rint(np.cumsum(values, axis=1)).astype(np.int64)
    return np.diff(cumulative, axis=1, prepend=0)


# -- the runs --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class EvRun:
    """Charging sessions (one row each) and each EV's charging energy (rows: EVs)."""

    owner: Int64Array  # household row of each EV
    session_ev: Int64Array  # EV row of each session
    arrival: Int64Array  # interval the EV plugs in
    departure: Int64Array  # interval it leaves (excluded); the last ends with the run
    requested_wh: Int64Array  # the day's driving energy
    needed_wh: Int64Array  # what the plug-in window can deliver of it
    delivered_wh: Int64Array
    charge_wh: Int64Array  # (EVs, intervals)


@dataclass(frozen=True, eq=False)
class HeatPumpRun:
    owner: Int64Array
    annual_heat_demand_kwh: Int64Array
    heat_demand_wh: Int64Array  # (pumps, intervals), thermal
    heat_wh: Int64Array  # what the pump delivered into the store
    electricity_wh: Int64Array
    store_wh: Int64Array  # store content after each interval
    unmet_heat_wh: Int64Array
    loss_wh: Int64Array  # the store's standing losses
    store_capacity_wh: int
    cop: FloatArray  # per interval


@dataclass(frozen=True, eq=False)
class WindRun:
    owner: Int64Array
    nominal_power_w: int
    hub_wind_speed_m_per_s: FloatArray
    per_unit: FloatArray
    generation_wh: Int64Array  # (turbines, intervals)


@dataclass(frozen=True, eq=False)
class DeviceRun:
    """Every device's energy over the run; ``load_wh``/``generation_wh`` per household row."""

    config: DeviceConfig
    interval_length_s: int
    load_wh: Int64Array  # EV charging + heat pump electricity
    generation_wh: Int64Array  # wind
    surplus_before_devices: BoolArray  # per interval: the community had a local surplus
    ev: EvRun | None
    heat_pump: HeatPumpRun | None
    wind: WindRun | None


def _owners(n_households: int, share: float, rng: np.random.Generator) -> Int64Array:
    count = round(share * n_households)
    return np.sort(rng.permutation(n_households)[:count]).astype(np.int64)


def simulate_wind(
    config: WindConfig, owner: Int64Array, weather: Weather, interval_length_s: int
) -> WindRun:
    v_hub, per_unit = wind_per_unit(config, weather)
    hours = interval_length_s / SECONDS_PER_HOUR
    energy = np.broadcast_to(per_unit * config.nominal_power_w * hours, (owner.size, per_unit.size))
    return WindRun(owner, config.nominal_power_w, v_hub, per_unit, _integer_rows(energy))


def ev_sessions(
    config: EvConfig, n_evs: int, n_intervals: int, interval_length_s: int, rng: np.random.Generator
) -> tuple[Int64Array, Int64Array, Int64Array, Int64Array]:
    """(EV row, arrival, departure, requested Wh) of every evening's session of every EV."""
    per_day = 86_400 // interval_length_s
    per_hour = SECONDS_PER_HOUR // interval_length_s
    days = -(-n_intervals // per_day)
    ev = np.repeat(np.arange(n_evs, dtype=np.int64), days)
    day = np.tile(np.arange(days, dtype=np.int64), n_evs)
    arrive_h = np.clip(
        rng.normal(config.arrival_hour_mean, config.arrival_hour_sd, ev.size), 12, 23.75
    )
    leave_h = np.clip(
        rng.normal(config.departure_hour_mean, config.departure_hour_sd, ev.size), 3, 11.75
    )
    energy = rng.normal(config.daily_energy_wh_mean, config.daily_energy_wh_sd, ev.size)
    arrival = np.minimum(
        day * per_day + np.rint(arrive_h * per_hour).astype(np.int64), n_intervals - 1
    )
    departure = np.minimum(
        (day + 1) * per_day + np.rint(leave_h * per_hour).astype(np.int64), n_intervals
    )
    requested = np.clip(np.rint(energy), 0, None).astype(np.int64)
    return ev, arrival, departure, requested


def simulate_evs(
    config: EvConfig,
    owner: Int64Array,
    signal: FloatArray,
    interval_length_s: int,
    rng: np.random.Generator,
) -> EvRun:
    """Every session charged inside its window: highest ``signal`` first (smart) or at once."""
    n_intervals = signal.shape[0]
    ev, arrival, departure, requested = ev_sessions(
        config, owner.size, n_intervals, interval_length_s, rng
    )
    step_wh = config.charger_power_w * interval_length_s // SECONDS_PER_HOUR
    width = departure - arrival
    needed = np.minimum(requested, width * step_wh)
    span = int(width.max(initial=1))
    slots = arrival[:, None] + np.arange(span, dtype=np.int64)[None, :]
    inside = slots < departure[:, None]
    at = np.minimum(slots, n_intervals - 1)
    preference = -signal[at] if config.smart else np.broadcast_to(np.arange(span), slots.shape)
    order = np.argsort(np.where(inside, preference, np.inf), axis=1, kind="stable")
    ranked = np.clip(
        needed[:, None] - np.arange(span, dtype=np.int64)[None, :] * step_wh, 0, step_wh
    )
    energy = np.zeros_like(slots)
    np.put_along_axis(energy, order, ranked, axis=1)
    energy[~inside] = 0
    charge = np.zeros((owner.size, n_intervals), dtype=np.int64)
    rows = np.broadcast_to(ev[:, None], slots.shape)
    np.add.at(charge, (rows[inside], slots[inside]), energy[inside])
    return EvRun(owner, ev, arrival, departure, requested, needed, energy.sum(axis=1), charge)


def simulate_heat_pumps(
    config: HeatPumpConfig,
    owner: Int64Array,
    weather: Weather,
    rows: Int64Array,
    surplus: BoolArray,
    station: str,
    interval_length_s: int,
    rng: np.random.Generator,
) -> HeatPumpRun:
    """Store dispatch, every pump at once: fill in surplus intervals, else keep it from empty.

    Each interval the store loses ``store_loss_per_hour`` of its content and serves the heat
    demand. Electricity is whole Wh; the heat it makes is floored, so the store never passes
    its capacity; what the pump cannot make even at full power is counted as unmet heat.
    """
    annual = rng.integers(
        config.annual_heat_demand_kwh_min, config.annual_heat_demand_kwh_max + 1, owner.size
    ).astype(np.int64)
    per_interval = _heat_shape(station, config.building_class)[rows] * (
        interval_length_s / SECONDS_PER_HOUR
    )
    demand = _integer_rows(annual[:, None] * 1000.0 * per_interval[None, :])
    cop = heat_pump_cop(config, weather.temperature_c)
    max_wh = config.max_power_w * interval_length_s // SECONDS_PER_HOUR
    loss_rate = config.store_loss_per_hour * interval_length_s / SECONDS_PER_HOUR
    capacity = config.store_capacity_wh
    store = np.full(owner.size, capacity // 2, dtype=np.int64)
    shape = demand.shape
    heat, electricity, stores, unmet, losses = (np.zeros(shape, dtype=np.int64) for _ in range(5))
    for step in range(shape[1]):
        loss = np.floor(store * loss_rate).astype(np.int64)
        draw = demand[:, step] + loss
        c = cop[step]
        fill = np.floor((capacity - store + draw) / c).astype(np.int64)  # up to a full store
        need = np.ceil(np.maximum(draw - store, 0) / c).astype(np.int64)  # to stay >= 0
        wanted = fill if (config.smart and surplus[step]) else need
        elec = np.minimum(np.minimum(np.maximum(wanted, need), fill), max_wh)
        made = np.floor(elec * c).astype(np.int64)
        after = store + made - draw
        unmet[:, step] = np.maximum(-after, 0)
        store = np.maximum(after, 0)
        heat[:, step], electricity[:, step], stores[:, step] = made, elec, store
        losses[:, step] = loss
    return HeatPumpRun(
        owner, annual, demand, heat, electricity, stores, unmet, losses, capacity, cop
    )


def simulate_devices(
    config: DeviceConfig,
    n_households: int,
    load_wh: Int64Array,
    generation_wh: Int64Array,
    start: dt.date,
    interval_length_s: int,
    seed: int,
) -> DeviceRun:
    """Place and run every device; ``load_wh``/``generation_wh`` are the households' own.

    The flexible devices follow the community's surplus (generation, wind included, less
    load), the signal the shiftable loads use too. Each device type draws its owners from
    its own seeded generator, so adding EVs does not move the heat pumps.
    """
    n_intervals = load_wh.shape[1]
    weather = weather_window(config.weather_station, start, n_intervals, interval_length_s)
    shape = (n_households, n_intervals)
    device_load = np.zeros(shape, dtype=np.int64)
    device_generation = np.zeros(shape, dtype=np.int64)
    wind = None
    if config.wind.share:
        owner = _owners(n_households, config.wind.share, np.random.default_rng(seed + 31))
        wind = simulate_wind(config.wind, owner, weather, interval_length_s)
        device_generation[owner] += wind.generation_wh
    signal = (generation_wh + device_generation - load_wh).sum(axis=0).astype(np.float64)
    surplus = signal > 0
    ev = None
    if config.ev.share:
        rng = np.random.default_rng(seed + 37)
        owner = _owners(n_households, config.ev.share, rng)
        ev = simulate_evs(config.ev, owner, signal, interval_length_s, rng)
        device_load[owner] += ev.charge_wh
    heat_pump = None
    if config.heat_pump.share:
        rng = np.random.default_rng(seed + 41)
        owner = _owners(n_households, config.heat_pump.share, rng)
        rows = tmy_hours(start, n_intervals, interval_length_s)
        heat_pump = simulate_heat_pumps(
            config.heat_pump,
            owner,
            weather,
            rows,
            surplus,
            config.weather_station,
            interval_length_s,
            rng,
        )
        device_load[owner] += heat_pump.electricity_wh
    return DeviceRun(
        config,
        interval_length_s,
        device_load,
        device_generation,
        surplus,
        ev,
        heat_pump,
        wind,
    )


# -- KPIs per device type ----------------------------------------------------------------------
def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _surplus_share(energy_wh: Int64Array, surplus: BoolArray) -> float:
    """Share of a device's energy used in intervals with a community surplus."""
    return _ratio(int(energy_wh[:, surplus].sum()), int(energy_wh.sum()))


def _ev_kpis(run: EvRun, surplus: BoolArray, interval_length_s: int) -> dict[str, Any]:
    per_hour = SECONDS_PER_HOUR / interval_length_s
    return {
        "count": int(run.owner.size),
        "sessions": int(run.arrival.size),
        "energy_requested_wh": int(run.requested_wh.sum()),
        "energy_needed_wh": int(run.needed_wh.sum()),
        "energy_delivered_wh": int(run.delivered_wh.sum()),
        "sessions_met_by_departure": int((run.delivered_wh >= run.needed_wh).sum()),
        "mean_plugged_in_h": round(_ratio(float((run.departure - run.arrival).mean()), per_hour), 2)
        if run.arrival.size
        else 0.0,
        "peak_charging_w": int(run.charge_wh.sum(axis=0).max(initial=0) * per_hour),
        "surplus_share": round(_surplus_share(run.charge_wh, surplus), 4),
    }


def _heat_pump_kpis(run: HeatPumpRun, surplus: BoolArray) -> dict[str, Any]:
    return {
        "count": int(run.owner.size),
        "heat_demand_wh": int(run.heat_demand_wh.sum()),
        "heat_delivered_wh": int(run.heat_wh.sum()),
        "electricity_wh": int(run.electricity_wh.sum()),
        "seasonal_cop": round(_ratio(int(run.heat_wh.sum()), int(run.electricity_wh.sum())), 3),
        "unmet_heat_wh": int(run.unmet_heat_wh.sum()),
        "store_losses_wh": int(run.loss_wh.sum()),
        "store_capacity_wh": run.store_capacity_wh,
        "store_min_wh": int(run.store_wh.min(initial=0)),
        "store_max_wh": int(run.store_wh.max(initial=0)),
        "surplus_share": round(_surplus_share(run.electricity_wh, surplus), 4),
    }


def _wind_kpis(run: WindRun, interval_length_s: int) -> dict[str, Any]:
    generated = int(run.generation_wh.sum())
    rated_wh = run.nominal_power_w * run.owner.size * run.per_unit.size * interval_length_s / 3600
    hours = run.per_unit.size * interval_length_s / SECONDS_PER_HOUR
    return {
        "count": int(run.owner.size),
        "nominal_power_w": run.nominal_power_w,
        "generation_wh": generated,
        "capacity_factor": round(_ratio(generated, rated_wh), 4),
        "full_load_hours": round(_ratio(generated, run.nominal_power_w * run.owner.size), 2),
        "mean_hub_wind_speed_m_per_s": round(float(run.hub_wind_speed_m_per_s.mean()), 2),
        "hours": round(hours, 2),
    }


def device_kpis(run: DeviceRun) -> dict[str, Any]:
    """The summary's ``devices`` block: one table of KPIs per device type present."""
    kpis: dict[str, Any] = {
        "weather_station": run.config.weather_station,
        "config": dataclasses.asdict(run.config),  # the summary's scenario block shows a repr
    }
    if run.ev is not None:
        kpis["ev"] = _ev_kpis(run.ev, run.surplus_before_devices, run.interval_length_s)
    if run.heat_pump is not None:
        kpis["heat_pump"] = _heat_pump_kpis(run.heat_pump, run.surplus_before_devices)
    if run.wind is not None:
        kpis["wind"] = _wind_kpis(run.wind, run.interval_length_s)
    return kpis


def devices_html(kpis: Mapping[str, Any]) -> str:
    """The report's section: one table per device type."""
    import html

    parts = [f"<h2>Devices</h2><p>weather: {html.escape(str(kpis['weather_station']))}</p>"]
    for kind, title in (("ev", "EV charging"), ("heat_pump", "Heat pumps"), ("wind", "Wind")):
        table = kpis.get(kind)
        if not table:
            continue
        rows = "".join(
            f"<tr><td>{html.escape(key)}</td><td>{html.escape(str(value))}</td></tr>"
            for key, value in table.items()
        )
        parts.append(f"<h3>{title}</h3><table id='devices-{kind}'>{rows}</table>")
    return "".join(parts)
