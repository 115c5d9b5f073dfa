"""Green Button files from the real sample set: read, write back, read again."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from gridledger.errors import DataSourceError
from gridledger.iotools.greenbutton import (
    IntervalEnergy,
    from_readings,
    read_greenbutton,
    to_readings,
    write_greenbutton,
)

FILES = {  # name: (durations seen {s: count}, first start, first Wh, total Wh)
    "15minLP_15Days.xml": ({900: 1340}, 1330578000, 324, 1_397_734),
    # The utility's DST days, kept as published: one 2-hour and one 0-second interval.
    "Coastal_Single_Family_Jan_1_2011_to_Jan_1_2012.xml": (
        {3600: 8758, 7200: 1, 0: 1},
        1293868800,
        703,
        6_562_977,
    ),
    "test_usage_data_01.xml": ({900: 96}, 1330578000, 282, 93_846),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_files_parse(greenbutton_dir: Path, name: str) -> None:
    intervals = read_greenbutton(greenbutton_dir / name)
    durations, first_start, first_wh, total_wh = FILES[name]
    assert Counter(i.duration_s for i in intervals) == durations
    assert (intervals[0].start_s, intervals[0].energy_wh) == (first_start, first_wh)
    assert sum(i.energy_wh for i in intervals) == total_wh
    assert {i.flow for i in intervals} == {"import"}
    assert all(isinstance(i.energy_wh, int) and i.energy_wh >= 0 for i in intervals)


@pytest.mark.parametrize("name", sorted(FILES))
def test_export_then_import_gives_the_same_readings(greenbutton_dir: Path, name: str) -> None:
    original = read_greenbutton(greenbutton_dir / name)
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
