"""Household load and PV profiles from a user's own files, on the simulation's interval grid.

Three formats, one result (:class:`ProfileTable`: whole Wh per household and interval):

* CSV or Parquet: a ``timestamp`` column and one column per household. Every household column
  states its unit in the header, ``"<name> [Wh]"`` (energy over the row's interval) or
  ``"<name> [W]"`` (mean power over it; also kWh and kW). A timestamp is the *start* of the
  interval its row measures and must carry its UTC offset (``2016-06-01T00:00:00+02:00``,
  ``...Z``), unless the header names a zone for naive times: ``"timestamp [Europe/Berlin]"``.
* Green Button (NAESB ESPI) XML, read with
  :func:`gridledger.iotools.greenbutton.import_greenbutton`: one file per household (or a
  folder of them, named by file stem); imported energy is the
  household's load and exported energy its PV surplus (a net meter sees no more).

Rows must be evenly spaced: a missing step is a gap, a repeated or backwards timestamp an
overlap, and both are errors that name the time. :func:`resample` moves the table onto the
run's interval length: whole multiples are summed, a coarser source is split evenly (integer Wh,
the parts sum to the original).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from gridledger.errors import DataSourceError, ValidationError

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
TIMESTAMP = "timestamp"
_COLUMN = re.compile(r"^\s*(?P<name>.+?)\s*\[(?P<unit>[^\]]+)\]\s*$")
_WH_PER_UNIT = {"Wh": 1.0, "kWh": 1000.0}
_W_PER_UNIT = {"W": 1.0, "kW": 1000.0}
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True, eq=False)
class ProfileTable:
    """Energy per household (rows, ``names``) and interval (columns) from ``start_s`` (UTC)."""

    names: tuple[str, ...]
    start_s: int
    interval_length_s: int
    energy_wh: Int64Array

    @property
    def n_intervals(self) -> int:
        return int(self.energy_wh.shape[1])

    def window(self, start_s: int, n_intervals: int) -> Int64Array:
        """The ``n_intervals`` from ``start_s``; an error says which part the data lacks."""
        offset, rest = divmod(start_s - self.start_s, self.interval_length_s)
        end_s = self.start_s + self.n_intervals * self.interval_length_s
        wanted_end_s = start_s + n_intervals * self.interval_length_s
        if rest:
            raise ValidationError("profiles", f"{_utc(start_s)} is not on the data's interval grid")
        if offset < 0 or wanted_end_s > end_s:
            raise ValidationError(
                "profiles",
                f"the run needs {_utc(start_s)} to {_utc(wanted_end_s)}, "
                f"the data covers {_utc(self.start_s)} to {_utc(end_s)}",
            )
        return self.energy_wh[:, offset : offset + n_intervals]


def _utc(unix_s: int) -> str:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def read_profiles(path: str | Path, interval_length_s: int) -> ProfileTable:
    """Read a CSV, Parquet or Green Button file (or a folder of Green Button files)."""
    source = Path(path)
    if source.is_dir():
        files = sorted(source.glob("*.xml"))
        if not files:
            raise DataSourceError(f"{source}: a profile folder must hold Green Button .xml files")
        return resample(greenbutton_profiles(files), interval_length_s)
    if not source.is_file():
        raise DataSourceError(f"{source}: no such profile file")
    suffix = source.suffix.lower()
    if suffix == ".xml":
        return resample(greenbutton_profiles([source]), interval_length_s)
    if suffix == ".csv":
        frame = _read(source, lambda: pd.read_csv(source, dtype=str, keep_default_na=False))
    elif suffix in (".parquet", ".pq"):
        frame = _read(source, lambda: pd.read_parquet(source))
    else:
        raise DataSourceError(f"{source}: profiles must be .csv, .parquet or Green Button .xml")
    return resample(table_from_frame(frame, str(source)), interval_length_s)


def _read(source: Path, reader: object) -> pd.DataFrame:
    try:
        frame = reader()  # type: ignore[operator]
    except (OSError, ValueError, ImportError) as exc:
        raise DataSourceError(f"{source}: cannot be read: {exc}") from exc
    assert isinstance(frame, pd.DataFrame)
    return frame


def table_from_frame(frame: pd.DataFrame, where: str) -> ProfileTable:
    """A table from a timestamp column and ``"<name> [unit]"`` columns (see the module doc)."""
    stamp_columns = [c for c in frame.columns if str(c).split("[")[0].strip() == TIMESTAMP]
    if len(stamp_columns) != 1:
        raise ValidationError(f"{where}: header", f"needs exactly one {TIMESTAMP!r} column")
    stamp_column = stamp_columns[0]
    starts_s = _timestamps(frame[stamp_column], str(stamp_column), where)
    step_s = _check_spacing(starts_s, where)
    names, energy = [], []
    for column in frame.columns:
        if column == stamp_column:
            continue
        name, to_wh = _unit(str(column), step_s, where)
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValidationError(
                f"{where}: {column}", f"row {int(bad[0]) + 2}: not a number (missing value?)"
            )
        if (values < 0).any():
            row = int(np.flatnonzero(values < 0)[0]) + 2
            raise ValidationError(f"{where}: {column}", f"row {row}: must not be negative")
        names.append(name)
        energy.append(np.rint(values * to_wh).astype(np.int64))
    if not names:
        raise ValidationError(f"{where}: header", "needs at least one household column")
    if len(set(names)) != len(names):
        raise ValidationError(f"{where}: header", "household names must be unique")
    return ProfileTable(tuple(names), int(starts_s[0]), step_s, np.stack(energy))


def _unit(column: str, step_s: int, where: str) -> tuple[str, float]:
    """Household name and the factor to Wh per row of a ``"<name> [unit]"`` header."""
    match = _COLUMN.match(column)
    if match is None:
        raise ValidationError(
            f"{where}: {column}", "state the unit in the header, e.g. 'household-01 [Wh]' or '[W]'"
        )
    unit = match["unit"].strip()
    if unit in _WH_PER_UNIT:
        return match["name"], _WH_PER_UNIT[unit]
    if unit in _W_PER_UNIT:
        return match["name"], _W_PER_UNIT[unit] * step_s / _SECONDS_PER_HOUR
    raise ValidationError(f"{where}: {column}", f"unit {unit!r}: use Wh, kWh, W or kW")


def _timestamps(values: pd.Series, header: str, where: str) -> Int64Array:
    zone_name = header.split("[", 1)[1].rstrip("] ") if "[" in header else None
    zone = None
    if zone_name is not None:
        try:
            zone = zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValidationError(
                f"{where}: {header}", f"unknown time zone {zone_name!r}"
            ) from None
    if not len(values):
        raise ValidationError(f"{where}: {header}", "no rows")
    try:
        stamps = pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"{where}: {header}", f"not ISO 8601 timestamps: {exc}") from None
    if stamps.dt.tz is None:
        if zone is None:
            raise ValidationError(
                f"{where}: {header}",
                "timestamps need a UTC offset (2016-06-01T00:00:00+02:00) or a zone in the "
                "header ('timestamp [Europe/Berlin]')",
            )
        try:
            stamps = stamps.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
        except Exception as exc:  # pandas raises its own errors for DST folds and gaps
            raise ValidationError(
                f"{where}: {header}", f"a local time is ambiguous or does not exist: {exc}"
            ) from None
    elif zone is not None:
        raise ValidationError(f"{where}: {header}", "timestamps carry offsets: drop the zone")
    seconds: Int64Array = (stamps.dt.tz_convert("UTC").astype("int64") // 10**9).to_numpy(
        dtype=np.int64
    )
    return seconds


def _check_spacing(starts_s: Int64Array, where: str) -> int:
    if starts_s.size < 2:
        raise ValidationError(f"{where}: {TIMESTAMP}", "need at least two rows to know the step")
    steps = np.diff(starts_s)
    back = np.flatnonzero(steps <= 0)
    if back.size:
        row = int(back[0])
        later, earlier = _utc(int(starts_s[row + 1])), _utc(int(starts_s[row]))
        raise ValidationError(
            f"{where}: {TIMESTAMP}", f"overlap: {later} does not come after {earlier}"
        )
    step_s = int(np.min(steps))
    gaps = np.flatnonzero(steps != step_s)
    if gaps.size:
        row = int(gaps[0])
        start, end = int(starts_s[row]) + step_s, int(starts_s[row + 1])
        raise ValidationError(
            f"{where}: {TIMESTAMP}", f"gap: no data from {_utc(start)} to {_utc(end)}"
        )
    return step_s


def resample(table: ProfileTable, interval_length_s: int) -> ProfileTable:
    """The same energy on intervals of ``interval_length_s`` (aligned to the table's start)."""
    source_s = table.interval_length_s
    if interval_length_s <= 0:
        raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
    if source_s == interval_length_s:
        return table
    energy = table.energy_wh
    if interval_length_s % source_s == 0:
        factor = interval_length_s // source_s
        whole = energy.shape[1] // factor * factor
        if whole == 0:
            raise ValidationError("profiles", f"shorter than one {interval_length_s} s interval")
        summed = energy[:, :whole].reshape(energy.shape[0], -1, factor).sum(axis=2)
        return ProfileTable(table.names, table.start_s, interval_length_s, summed)
    if source_s % interval_length_s == 0:
        parts = source_s // interval_length_s
        base, extra = np.divmod(energy, parts)
        # the remainder goes to the first parts, so every row's parts sum to the original
        split = base[:, :, np.newaxis] + (np.arange(parts) < extra[:, :, np.newaxis])
        return ProfileTable(
            table.names,
            table.start_s,
            interval_length_s,
            split.reshape(energy.shape[0], -1).astype(np.int64),
        )
    raise ValidationError(
        "profiles",
        f"a step of {source_s} s cannot be resampled to {interval_length_s} s intervals "
        "(one must be a whole multiple of the other)",
    )


def greenbutton_profiles(files: Sequence[Path]) -> ProfileTable:
    """One household per Green Button file: imported energy as load (see :func:`pv_of`)."""
    return _greenbutton_table(files, "import")


def greenbutton_export_profiles(files: Sequence[Path]) -> ProfileTable:
    """The exported energy of the same files: the households' PV surplus."""
    return _greenbutton_table(files, "export")


def _greenbutton_table(files: Sequence[Path], flow: str) -> ProfileTable:
    from gridledger.iotools.greenbutton import import_greenbutton

    rows: list[tuple[str, int, int, Int64Array]] = []
    for path in files:
        intervals, summary = import_greenbutton(path)
        if summary.gaps:
            start, end = summary.gaps[0]
            raise ValidationError(f"{path}", f"gap: no data from {_utc(start)} to {_utc(end)}")
        n = (summary.end_s - summary.start_s) // summary.resolution_s
        energy = np.zeros(n, dtype=np.int64)
        for item in intervals:
            if item.flow == flow:
                energy[(item.start_s - summary.start_s) // summary.resolution_s] += item.energy_wh
        rows.append((path.stem, summary.start_s, summary.resolution_s, energy))
    steps = {step for _, _, step, _ in rows}
    if len(steps) != 1:
        raise ValidationError("profiles", f"Green Button files differ in resolution: {steps}")
    step_s = steps.pop()
    start_s = max(start for _, start, _, _ in rows)
    misaligned = [name for name, start, _, _ in rows if (start_s - start) % step_s]
    if misaligned:
        raise ValidationError("profiles", f"Green Button files off the common grid: {misaligned}")
    end_s = min(start + len(e) * step_s for _, start, _, e in rows)
    if end_s <= start_s:
        raise ValidationError("profiles", "the Green Button files share no common period")
    energy = np.stack([e[(start_s - s) // step_s : (end_s - s) // step_s] for _, s, _, e in rows])
    return ProfileTable(tuple(name for name, _, _, _ in rows), start_s, step_s, energy)


def pv_of(path: str | Path, interval_length_s: int) -> ProfileTable:
    """PV per household from ``path``: a CSV/Parquet table, or Green Button export energy."""
    source = Path(path)
    files = sorted(source.glob("*.xml")) if source.is_dir() else [source]
    if source.is_dir() or source.suffix.lower() == ".xml":
        return resample(greenbutton_export_profiles(files), interval_length_s)
    return read_profiles(source, interval_length_s)
