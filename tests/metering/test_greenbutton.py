"""Green Button files from the real sample set: read, write back, read again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gridledger.errors import DataSourceError
from gridledger.iotools.greenbutton import (
    IntervalEnergy,
    from_readings,
    import_greenbutton,
    read_greenbutton,
    to_readings,
    write_greenbutton,
)

FILES = {  # name: (durations seen {s: count}, first start, first Wh, total Wh)
    "15minLP_15Days.xml": ({900: 1340}, 1330578000, 324, 1_397_734),
    "test_usage_data_01.xml": ({900: 96}, 1330578000, 282, 93_846),
}
# The utility's daylight-saving days, as published: a 2-hour reading in March, a 0-second
# reading of 462 Wh in November, and one reading that starts on the hour before it ends.
COASTAL = "Coastal_Single_Family_Jan_1_2011_to_Jan_1_2012.xml"
COASTAL_WH = 6_562_977


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_files_parse(greenbutton_dir: Path, name: str) -> None:
    intervals = read_greenbutton(greenbutton_dir / name)
    durations, first_start, first_wh, total_wh = FILES[name]
    assert Counter(i.duration_s for i in intervals) == durations
    assert (intervals[0].start_s, intervals[0].energy_wh) == (first_start, first_wh)
    assert sum(i.energy_wh for i in intervals) == total_wh
    assert {i.flow for i in intervals} == {"import"}
    assert all(isinstance(i.energy_wh, int) and i.energy_wh >= 0 for i in intervals)
    regular, summary = import_greenbutton(greenbutton_dir / name)
    assert regular == intervals  # already regular: nothing resampled, nothing skipped
    assert (summary.resolution_s, summary.gaps, summary.resampled, summary.skipped) == (
        900,
        (),
        (),
        (),
    )
    assert summary.end_s == intervals[-1].start_s + 900 and summary.imported_wh == total_wh


def test_a_zero_duration_is_refused_with_its_entry_named(greenbutton_dir: Path) -> None:
    for read in (read_greenbutton, import_greenbutton):
        with pytest.raises(DataSourceError) as caught:
            read(greenbutton_dir / COASTAL)
        message = str(caught.value)
        assert "IntervalReading 123 of entry 'RetailCustomer/9b6c7063/UsagePoint/01/" in message
        assert "2011-11-06 09:00 UTC: duration 0 s is not positive" in message
        assert "--skip-invalid" in message


def test_daylight_saving_days_are_resampled_and_reported(greenbutton_dir: Path) -> None:
    intervals, summary = import_greenbutton(greenbutton_dir / COASTAL, skip_invalid=True)
    assert {i.duration_s for i in intervals} == {3600}
    assert summary.resolution_s == 3600 and summary.readings == 8760
    # the 2-hour reading of 461 Wh at 09:00 UTC became two hours, its Wh kept exactly
    march = {i.start_s: i.energy_wh for i in intervals if 1300003200 <= i.start_s <= 1300014000}
    assert march == {1300003200: 500, 1300006800: 230, 1300010400: 231, 1300014000: 455}
    assert len(summary.resampled) == 1 and "starting 2011-03-13 09:00 UTC" in summary.resampled[0]
    assert len(summary.skipped) == 2 and summary.skipped_wh == 462 + 721
    assert summary.imported_wh + summary.skipped_wh == COASTAL_WH  # nothing silently lost
    assert summary.gaps == ((1320598800, 1320602400),)  # the hour the published clock skipped
    assert (summary.start_s, summary.end_s) == (1293868800, 1293868800 + 365 * 86400)
    text = "\n".join(summary.lines("America/Los_Angeles"))
    assert "8,759 intervals of 1 h from 8,760 readings, 2011-01-01 00:00 PST" in text
    assert "energy in Wh (uom 72)" in text and "gaps: 1 (1 h in total" in text
    assert "resampled to 1 h: 1 reading" in text and "skipped: 2 reading" in text


@pytest.mark.parametrize("duration_s", [0, -900])
def test_non_positive_durations_are_refused(duration_s: int) -> None:
    xml = write_greenbutton([IntervalEnergy(0, 900, 5), IntervalEnergy(900, duration_s, 462)])
    with pytest.raises(DataSourceError, match=rf"IntervalReading 2 of entry .*{duration_s} s"):
        import_greenbutton(xml)


def test_misaligned_and_long_readings_are_split_in_proportion_to_time() -> None:
    xml = write_greenbutton(
        [
            IntervalEnergy(0, 900, 100),
            IntervalEnergy(900, 900, 100),
            IntervalEnergy(2250, 1350, 301),  # starts mid-slot, ends on a slot
            IntervalEnergy(5400, 900, 7),  # after a 30-minute gap
        ]
    )
    intervals, summary = import_greenbutton(xml)
    assert [(i.start_s, i.energy_wh) for i in intervals] == [
        (0, 100),
        (900, 100),
        (1800, 100),
        (2700, 201),
        (5400, 7),
    ]
    assert summary.gaps == ((3600, 5400),) and len(summary.resampled) == 1


def test_overlapping_readings_are_refused_unless_skipped() -> None:
    xml = write_greenbutton([IntervalEnergy(0, 900, 5), IntervalEnergy(450, 900, 6)])
    with pytest.raises(DataSourceError, match="overlaps IntervalReading 1"):
        import_greenbutton(xml)
    intervals, summary = import_greenbutton(xml, skip_invalid=True)
    assert intervals == [IntervalEnergy(0, 900, 5)] and summary.skipped_wh == 6


@pytest.mark.parametrize("name", [*sorted(FILES), COASTAL])
def test_export_then_import_gives_the_same_readings(greenbutton_dir: Path, name: str) -> None:
    original, _ = import_greenbutton(greenbutton_dir / name, skip_invalid=True)
    written = write_greenbutton(original)
    assert b"<espi:IntervalBlock" in written  # the prefixed style, read by the same parser
    assert read_greenbutton(written) == original


def test_multiplier_and_export_flow_are_applied() -> None:
    xml = write_greenbutton(
        [IntervalEnergy(0, 900, 5, "import"), IntervalEnergy(0, 900, 2, "export")]
    )
    scaled = xml.replace(b"<espi:powerOfTenMultiplier>0<", b"<espi:powerOfTenMultiplier>3<")
    assert read_greenbutton(scaled) == [
        IntervalEnergy(0, 900, 2000, "export"),
        IntervalEnergy(0, 900, 5000, "import"),
    ]
    milli = xml.replace(b"<espi:powerOfTenMultiplier>0<", b"<espi:powerOfTenMultiplier>-3<")
    assert [i.energy_wh for i in read_greenbutton(milli)] == [0, 0]


def test_readings_round_trip_through_green_button() -> None:
    meter = "0x" + "ab" * 20
    intervals = [IntervalEnergy(900 * k, 900, 10 * k, "import") for k in range(4)]
    intervals.append(IntervalEnergy(1800, 900, 7, "export"))
    readings = to_readings(intervals, meter)
    assert [(r.sequence, r.imported_wh, r.exported_wh) for r in readings] == [
        (1, 0, 0),
        (2, 10, 0),
        (3, 20, 7),
        (4, 30, 0),
    ]
    assert to_readings(read_greenbutton(write_greenbutton(from_readings(readings))), meter) == (
        readings
    )


@pytest.mark.parametrize(
    "xml",
    [
        b"<feed xmlns='http://www.w3.org/2005/Atom'/>",
        b"not xml",
        b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><content><ReadingType "
        b"xmlns='http://naesb.org/espi'><uom>38</uom></ReadingType></content></entry></feed>",
    ],
)
def test_malformed_files_raise_data_source_errors(xml: bytes) -> None:
    with pytest.raises(DataSourceError):
        read_greenbutton(xml)
