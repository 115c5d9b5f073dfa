"""Households on their own data: CSV, Parquet and Green Button profiles, resampled, checked."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gridledger.errors import ValidationError
from gridledger.iotools.greenbutton import import_greenbutton
from gridledger.iotools.profiles import read_profiles, resample
from gridledger.sim import load_scenario, run_scenario

GREEN_BUTTON = Path(__file__).parents[1] / "data" / "greenbutton" / "15minLP_15Days.xml"
SCENARIO = Path(__file__).parents[2] / "scenarios" / "own-data.toml"


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_hourly_mean_power_is_split_into_quarter_hours_of_energy(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "timestamp,a [W],b [kW]\n"
        "2016-06-06T00:00:00+02:00,1000,0.3\n"
        "2016-06-06T01:00:00+02:00,401,1\n",
    )
    table = read_profiles(path, 900)
    assert table.names == ("a", "b") and table.interval_length_s == 900
    assert table.energy_wh.tolist() == [
        [250, 250, 250, 250, 101, 100, 100, 100],  # parts sum to the hour's 401 Wh
        [75, 75, 75, 75, 250, 250, 250, 250],
    ]
    assert table.start_s == int(pd.Timestamp("2016-06-05T22:00:00Z").timestamp())


def test_five_minute_energy_is_summed_and_a_local_zone_header_is_honoured(tmp_path: Path) -> None:
    rows = "".join(f"2016-01-04T00:{5 * i:02d}:00,{i}\n" for i in range(6))
    table = read_profiles(_csv(tmp_path, "timestamp [Europe/Berlin],home [Wh]\n" + rows), 900)
    assert table.energy_wh.tolist() == [[0 + 1 + 2, 3 + 4 + 5]]
    assert table.start_s == int(pd.Timestamp("2016-01-03T23:00:00Z").timestamp())


def test_parquet_with_aware_timestamps_reads_like_the_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2016-06-06", periods=4, freq="15min", tz="UTC"),
            "x [Wh]": [1, 2, 3, 4],
        }
    )
    frame.to_parquet(tmp_path / "p.parquet")
    table = read_profiles(tmp_path / "p.parquet", 900)
    assert table.names == ("x",) and table.energy_wh.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "timestamp,a [Wh]\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,1\n2016-01-01T00:45Z,1\n",
            "gap",
        ),
        (
            "timestamp,a [Wh]\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,1\n2016-01-01T00:15Z,1\n",
            "overlap",
        ),
        ("timestamp,a [Wh]\n2016-01-01T00:00,1\n2016-01-01T00:15,1\n", "UTC offset"),
        ("timestamp,a\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,1\n", "state the unit"),
        ("timestamp,a [MJ]\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,1\n", "use Wh, kWh, W or kW"),
        ("timestamp [Mars/Olympus],a [Wh]\n2016-01-01T00:00,1\n2016-01-01T00:15,1\n", "time zone"),
        ("timestamp,a [Wh]\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,\n", "not a number"),
        ("timestamp,a [Wh]\n2016-01-01T00:00Z,1\n2016-01-01T00:15Z,-4\n", "negative"),
        (  # the autumn DST fold: 02:30 happens twice in Berlin
            "timestamp [Europe/Berlin],a [Wh]\n"
            + "".join(f"2016-10-30T02:{m:02d}:00,1\n" for m in (0, 15, 30, 45)),
            "ambiguous",
        ),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        read_profiles(_csv(tmp_path, text), 900)


def test_a_step_that_does_not_divide_the_interval_is_refused(tmp_path: Path) -> None:
    table = read_profiles(
        _csv(tmp_path, "timestamp,a [Wh]\n2016-01-01T00:00Z,1\n2016-01-01T00:10Z,1\n"), 600
    )
    with pytest.raises(ValidationError, match="whole multiple"):
        resample(table, 900)


def test_a_green_button_file_drives_a_household_with_its_imported_energy() -> None:
    table = read_profiles(GREEN_BUTTON, 900)
    _, summary = import_greenbutton(GREEN_BUTTON)
    assert table.names == (GREEN_BUTTON.stem,)
    assert int(table.energy_wh.sum()) == summary.imported_wh
    assert table.n_intervals * 900 == summary.end_s - summary.start_s


def test_the_own_data_scenario_runs_on_the_csv_households() -> None:
    scenario = load_scenario(SCENARIO)
    result = run_scenario(scenario, write_files=False)
    assert result.household_names == tuple(f"home-{c}" for c in "abcdef")
    loads = read_profiles(scenario.profile_load or "", 900)
    pvs = read_profiles(scenario.profile_pv or "", 900)
    # the run's window is the CSV's two local days; flexible load is off in this scenario
    assert int(result.series.demand_wh.sum()) == int(loads.energy_wh.sum())
    assert int(result.series.pv_generated_wh.sum()) == int(pvs.energy_wh.sum())
    assert result.summary["batteries"] == 2 and result.series.local_traded_wh.sum() > 0
    with pytest.raises(ValidationError, match="the data covers"):
        run_scenario(scenario.replace(days=3), write_files=False)


def test_scenario_keys_for_profiles_and_the_engine_are_checked(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        '[profiles]\nload = "mine.csv"\ntimezone = "Europe/Berlin"\n'
        '[grid]\npowerflow = "pandapower"\n',
        encoding="utf-8",
    )
    scenario = load_scenario(tmp_path / "s.toml")
    assert scenario.profile_load == str(tmp_path / "mine.csv")  # next to the scenario file
    assert scenario.powerflow == "pandapower" and scenario.profile_timezone == "Europe/Berlin"
    (tmp_path / "bad.toml").write_text('[grid]\npowerflow = "matpower"\n', encoding="utf-8")
    with pytest.raises(ValidationError, match=r"grid\.powerflow"):
        load_scenario(tmp_path / "bad.toml")
    (tmp_path / "zone.toml").write_text(
        '[profiles]\nload = "mine.csv"\ntimezone = "Mars/Olympus"\n', encoding="utf-8"
    )
    with pytest.raises(ValidationError, match=r"profiles\.timezone"):
        run_scenario(load_scenario(tmp_path / "zone.toml"), write_files=False)
