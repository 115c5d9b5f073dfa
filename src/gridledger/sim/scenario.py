"""Scenarios: everything one simulation run needs, read from a TOML file.

A scenario names a SimBench grid, the community on it (households, PV, battery and flexible
load shares), the tariffs, the market (mechanism, bidding strategy, grid-aware or not) and the
run (start date, days, seed, chain). :func:`load_scenario` reads ``[section] key = value``
tables; every error names the TOML key (``market.strategy: must be one of ...``). Unknown keys
are errors too, so a typo never silently falls back to a default. See ``scenarios/*.toml``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridledger.errors import DataSourceError, ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, PROFILE_INTERVAL_S, PROFILE_LENGTH
from gridledger.sim.community import COMMUNITY_GRID_CODE
from gridledger.sim.devices import DEVICE_SECTIONS, DeviceConfig, devices_from_mapping

MECHANISMS = ("uniform", "pay-as-bid", "cda")
STRATEGIES = ("truthful", "zi", "zip")
PV_SOURCES = ("simbench", "pvlib")
CHAINS = ("off", "memory")
POWERFLOWS = ("power-grid-model", "pandapower")


@dataclass(frozen=True)
class Scenario:
    """One run. Money in micro-units per kWh, energy in Wh, power in W; shares in [0, 1]."""

    name: str = "scenario"
    # grid
    grid_code: str = COMMUNITY_GRID_CODE
    background: bool = True  # grid loads no household replays keep their SimBench profiles
    transformer_sn_mva: float | None = None  # override the rating (a small transformer)
    line_rating_scale: float = 1.0  # scale every line's max_i_ka (a weak feeder)
    powerflow: str = "power-grid-model"  # the engine; "pandapower" solves the same net
    # limits
    max_line_loading_percent: float = 100.0
    max_trafo_loading_percent: float = 100.0
    min_vm_pu: float = 0.90
    max_vm_pu: float = 1.10
    # community
    households: int = 30
    pv_share: float = 0.5
    battery_share: float = 0.2
    flexible_share: float = 0.0
    pv_peak_w_min: int = 4_000
    pv_peak_w_max: int = 10_000
    pv_source: str = "simbench"
    latitude: float = 52.5  # pvlib site (Berlin by default)
    longitude: float = 13.4
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    # the households' own data instead of SimBench profiles (see gridledger.iotools.profiles)
    profile_load: str | None = None  # CSV, Parquet, Green Button file or folder
    profile_pv: str | None = None
    profile_timezone: str = "UTC"  # the run's days start at midnight here
    battery_capacity_wh: int = 10_000
    battery_max_power_w: int = 5_000
    flexible_daily_energy_wh: int = 3_000
    flexible_max_power_w: int = 2_000
    flexible_window_start_hour: int = 9
    flexible_window_end_hour: int = 17
    # tariffs
    import_price_micro_per_kwh: int = 300_000
    feed_in_price_micro_per_kwh: int = 80_000
    grid_fee_micro_per_kwh: int = 20_000
    # market
    mechanism: str = "uniform"
    strategy: str = "zi"
    grid_aware: bool = False
    # flexibility (demand response: docs/flexibility.md)
    flexibility: bool = False
    flex_request_price_micro_per_kwh: int = 150_000  # the DSO's price cap
    flex_battery_price_micro_per_kwh: int = 30_000  # households' offers: battery wear
    flex_load_price_micro_per_kwh: int = 50_000  # households' offers: moving a load
    flex_margin: float = 0.05  # the DSO asks for enough to stay this far below a limit
    # EVs, heat pumps, small wind: [ev], [heat_pump], [wind], [weather] (sim/devices.py)
    devices: DeviceConfig = dataclasses.field(default_factory=DeviceConfig)
    # run
    start_date: dt.date = dt.date(2016, 6, 6)
    days: int = 1
    seed: int = 0
    chain: str = "off"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("mechanism", MECHANISMS),
            ("strategy", STRATEGIES),
            ("pv_source", PV_SOURCES),
            ("chain", CHAINS),
            ("powerflow", POWERFLOWS),
        ):
            if getattr(self, name) not in allowed:
                raise ValidationError(
                    name, f"must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        for name in ("pv_share", "battery_share", "flexible_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValidationError(name, f"must be within [0, 1], got {getattr(self, name)}")
        self._check_positive()
        self._check_ranges()
        _check_grid_code(self.grid_code)

    def _check_positive(self) -> None:
        for name in (
            "households",
            "days",
            "pv_peak_w_min",
            "battery_capacity_wh",
            "battery_max_power_w",
            "flexible_max_power_w",
            "line_rating_scale",
            "max_line_loading_percent",
            "max_trafo_loading_percent",
        ):
            if getattr(self, name) <= 0:
                raise ValidationError(name, f"must be positive, got {getattr(self, name)}")
        if self.transformer_sn_mva is not None and self.transformer_sn_mva <= 0:
            raise ValidationError("transformer_sn_mva", "must be positive")
        for name in (
            "import_price_micro_per_kwh",
            "feed_in_price_micro_per_kwh",
            "grid_fee_micro_per_kwh",
            "flexible_daily_energy_wh",
            "flex_request_price_micro_per_kwh",
            "flex_battery_price_micro_per_kwh",
            "flex_load_price_micro_per_kwh",
            "seed",
        ):
            if getattr(self, name) < 0:
                raise ValidationError(name, f"must not be negative, got {getattr(self, name)}")

    def _check_ranges(self) -> None:
        if self.pv_peak_w_max < self.pv_peak_w_min:
            raise ValidationError("pv_peak_w_max", "must not be below pv_peak_w_min")
        if self.feed_in_price_micro_per_kwh > self.import_price_micro_per_kwh:
            raise ValidationError(
                "feed_in_price_micro_per_kwh", "must not exceed import_price_micro_per_kwh"
            )
        if not 0.0 <= self.flex_margin < 1.0:
            raise ValidationError("flex_margin", f"must be within [0, 1), got {self.flex_margin}")
        if not 0.0 < self.min_vm_pu < self.max_vm_pu:
            raise ValidationError("min_vm_pu", "need 0 < min_vm_pu < max_vm_pu")
        if not 0 <= self.flexible_window_start_hour < self.flexible_window_end_hour <= 24:
            raise ValidationError(
                "flexible_window_start_hour", "need 0 <= start hour < end hour <= 24"
            )
        first = (self.start_date - dt.date(self.start_date.year, 1, 1)).days
        if first * INTERVALS_PER_DAY + self.n_intervals > PROFILE_LENGTH:
            raise ValidationError(
                "days", f"the run from {self.start_date} for {self.days} days passes the year's end"
            )

    @property
    def n_intervals(self) -> int:
        return self.days * INTERVALS_PER_DAY

    @property
    def interval_length_s(self) -> int:
        return PROFILE_INTERVAL_S

    def replace(self, **changes: Any) -> Scenario:
        return dataclasses.replace(self, **changes)


# TOML (section, key) -> Scenario field
_TOML_KEYS: Mapping[tuple[str, str], str] = {
    ("", "name"): "name",
    ("grid", "code"): "grid_code",
    ("grid", "background"): "background",
    ("grid", "transformer_sn_mva"): "transformer_sn_mva",
    ("grid", "line_rating_scale"): "line_rating_scale",
    ("grid", "powerflow"): "powerflow",
    ("limits", "max_line_loading_percent"): "max_line_loading_percent",
    ("limits", "max_trafo_loading_percent"): "max_trafo_loading_percent",
    ("limits", "min_vm_pu"): "min_vm_pu",
    ("limits", "max_vm_pu"): "max_vm_pu",
    ("community", "households"): "households",
    ("community", "pv_share"): "pv_share",
    ("community", "battery_share"): "battery_share",
    ("community", "flexible_share"): "flexible_share",
    ("community", "pv_peak_w_min"): "pv_peak_w_min",
    ("community", "pv_peak_w_max"): "pv_peak_w_max",
    ("community", "pv_source"): "pv_source",
    ("pvlib", "latitude"): "latitude",
    ("pvlib", "longitude"): "longitude",
    ("pvlib", "tilt_deg"): "tilt_deg",
    ("pvlib", "azimuth_deg"): "azimuth_deg",
    ("profiles", "load"): "profile_load",
    ("profiles", "pv"): "profile_pv",
    ("profiles", "timezone"): "profile_timezone",
    ("battery", "capacity_wh"): "battery_capacity_wh",
    ("battery", "max_power_w"): "battery_max_power_w",
    ("flexible_load", "daily_energy_wh"): "flexible_daily_energy_wh",
    ("flexible_load", "max_power_w"): "flexible_max_power_w",
    ("flexible_load", "window_start_hour"): "flexible_window_start_hour",
    ("flexible_load", "window_end_hour"): "flexible_window_end_hour",
    ("tariffs", "import_price_micro_per_kwh"): "import_price_micro_per_kwh",
    ("tariffs", "feed_in_price_micro_per_kwh"): "feed_in_price_micro_per_kwh",
    ("tariffs", "grid_fee_micro_per_kwh"): "grid_fee_micro_per_kwh",
    ("market", "mechanism"): "mechanism",
    ("market", "strategy"): "strategy",
    ("market", "grid_aware"): "grid_aware",
    ("flexibility", "enabled"): "flexibility",
    ("flexibility", "request_price_micro_per_kwh"): "flex_request_price_micro_per_kwh",
    ("flexibility", "battery_price_micro_per_kwh"): "flex_battery_price_micro_per_kwh",
    ("flexibility", "load_price_micro_per_kwh"): "flex_load_price_micro_per_kwh",
    ("flexibility", "margin"): "flex_margin",
    ("run", "start_date"): "start_date",
    ("run", "days"): "days",
    ("run", "seed"): "seed",
    ("run", "chain"): "chain",
}
_TOML_KEY_OF = {field: (f"{s}.{k}" if s else k) for (s, k), field in _TOML_KEYS.items()}
_SECTIONS = {s for s, _ in _TOML_KEYS if s}


def _expected_type(field: dataclasses.Field[Any]) -> tuple[type, ...]:
    text = str(field.type)
    if "float" in text:
        return (int, float)
    if "bool" in text:
        return (bool,)
    if "int" in text:
        return (int,)
    if "date" in text:
        return (dt.date,)
    return (str,)


_FIELDS = {f.name: f for f in dataclasses.fields(Scenario)}


def _coerce(key: str, field_name: str, value: Any) -> Any:
    expected = _expected_type(_FIELDS[field_name])
    if isinstance(value, bool) and bool not in expected:
        raise ValidationError(key, f"must be {expected[-1].__name__}, got a boolean")
    if isinstance(value, dt.datetime) or not isinstance(value, expected):
        name = "date (YYYY-MM-DD)" if dt.date in expected else expected[-1].__name__
        raise ValidationError(key, f"must be a {name}, got {value!r}")
    return float(value) if float in expected and isinstance(value, int | float) else value


def _did_you_mean(given: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(given, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown(what: str, given: str, known: Sequence[str]) -> str:
    """``unknown key; did you mean 'households'? known: ...`` (difflib's closest match)."""
    return f"unknown {what}; {_did_you_mean(given, known)}known: {', '.join(known)}"


def _unknown_key(section: str, key: str) -> str:
    known = [k for s, k in _TOML_KEYS if s == section]
    return _unknown(f"key in [{section}]" if section else "top-level key", key, known)


# The SimBench low-voltage grids a community can live on (simbench.collect_all_simbench_codes);
# other SimBench codes are checked against simbench's own list, imported only for them.
LV_GRID_CODES = tuple(
    f"1-LV-{kind}--{n}-{switches}"
    for kind in ("rural1", "rural2", "rural3", "semiurb4", "semiurb5", "urban6")
    for n in (0, 1, 2)
    for switches in ("sw", "no_sw")
)


def _check_grid_code(code: str) -> None:
    if code in LV_GRID_CODES:
        return
    import simbench

    if code in simbench.collect_all_simbench_codes():
        return
    raise ValidationError(
        "grid_code",
        f"{code!r} is not a SimBench grid code; {_did_you_mean(code, LV_GRID_CODES)}"
        "the low-voltage ones are 1-LV-{rural1,rural2,rural3,semiurb4,semiurb5,urban6}--{0,1,2}-"
        "{sw,no_sw}, e.g. 1-LV-rural2--0-sw",
    )


def scenario_from_mapping(document: Mapping[str, Any]) -> Scenario:
    """Build a scenario from parsed TOML; errors name the TOML key."""
    values: dict[str, Any] = {}
    devices = {s: c for s, c in document.items() if s in DEVICE_SECTIONS}
    if devices:  # their own tables, checked by sim/devices.py (errors name "ev.share")
        values["devices"] = devices_from_mapping(devices)
    for section, content in document.items():
        if section in DEVICE_SECTIONS:
            continue
        if isinstance(content, Mapping):
            if section not in _SECTIONS:
                known = sorted(_SECTIONS | set(DEVICE_SECTIONS))
                raise ValidationError(section, _unknown("section", section, known))
            items = [(f"{section}.{k}", (section, k), v) for k, v in content.items()]
        else:
            items = [(section, ("", section), content)]
        for key, spec, value in items:
            if spec not in _TOML_KEYS:
                raise ValidationError(key, _unknown_key(*spec))
            values[_TOML_KEYS[spec]] = _coerce(key, _TOML_KEYS[spec], value)
    try:
        return Scenario(**values)
    except ValidationError as exc:
        raise ValidationError(_TOML_KEY_OF.get(exc.field, exc.field), exc.reason) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file (missing file: DataSourceError; bad content: ValidationError)."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataSourceError(f"scenario {source}: cannot be read: {exc.strerror}") from exc
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(str(source), f"not valid TOML: {exc}") from exc
    if "name" not in document:
        document = {"name": source.stem, **document}
    scenario = scenario_from_mapping(document)
    # profile paths are relative to the scenario file, wherever the run starts
    paths = {
        name: str(source.parent / value)
        for name in ("profile_load", "profile_pv")
        if (value := getattr(scenario, name)) is not None and not Path(value).is_absolute()
    }
    return scenario.replace(**paths) if paths else scenario
