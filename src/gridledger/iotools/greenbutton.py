"""Green Button (NAESB ESPI Atom XML) interval data: read it, and write it back.

Reads both the default-namespace style (``<IntervalBlock xmlns="http://naesb.org/espi">``) and
the ``espi:``-prefixed style; ElementTree resolves both to the same qualified names. Values are
scaled by the ReadingType's ``powerOfTenMultiplier`` into integer Wh (uom 72). ``flowDirection``
1 is energy delivered to the customer (import), 19 energy received from them (export).
The writer emits the prefixed style, one MeterReading + ReadingType per flow direction.

:func:`read_greenbutton` returns the readings as published and refuses a reading whose duration
is not positive (the error names its entry). :func:`import_greenbutton` is what a user imports:
the readings on one regular grid (the file's most common duration), longer or misaligned ones
(a utility's 2-hour daylight-saving reading) split in proportion to time with exact integer
sums, and a :class:`GreenButtonSummary` that states the resolution, period, gaps and units.
"""

from __future__ import annotations

import datetime as dt
import itertools
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gridledger.errors import DataSourceError
from gridledger.metering.reading import Reading

ATOM = "http://www.w3.org/2005/Atom"
ESPI = "http://naesb.org/espi"
UOM_WH = 72
FLOW_CODES = {1: "import", 19: "export"}
Flow = Literal["import", "export"]


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """Energy over one interval, in whole Wh."""

    start_s: int
    duration_s: int
    energy_wh: int
    flow: Flow = "import"


@dataclass(frozen=True, slots=True)
class _Located:
    item: IntervalEnergy
    where: str  # names the reading in the file, for errors and the summary


def read_greenbutton(source: str | Path | bytes) -> list[IntervalEnergy]:
    """All interval readings of a Green Button file as published, sorted by (flow, start)."""
    located = _read_located(source)
    bad = [r for r in located if r.item.duration_s <= 0]
    if bad:
        raise _not_positive(bad)
    return [r.item for r in located]


def _read_located(source: str | Path | bytes) -> list[_Located]:
    root = _parse(source)
    types = _reading_types(root)
    block_type = _block_reading_types(root, types)
    out: list[_Located] = []
    for entry in root.iter(f"{{{ATOM}}}entry"):
        name = (_links(entry, "self") or [entry.findtext(f"{{{ATOM}}}title") or "?"])[0]
        for block in entry.iter(f"{{{ESPI}}}IntervalBlock"):
            multiplier, flow = block_type(entry)
            out.extend(
                _Located(item, f"IntervalReading {n} of entry {name!r}")
                for n, item in enumerate(_block_readings(block, multiplier, flow), start=1)
            )
    if not out:
        raise DataSourceError("Green Button file has no IntervalReading elements")
    return sorted(out, key=lambda r: (r.item.flow, r.item.start_s))


def _not_positive(bad: Sequence[_Located]) -> DataSourceError:
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return DataSourceError(
        f"{first.where}, starting {_utc(first.item.start_s)}: duration "
        f"{first.item.duration_s} s is not positive{more}; fix the file, or import with "
        "--skip-invalid to leave such readings out (they are reported)"
    )


def _utc(unix_s: int) -> str:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class GreenButtonSummary:
    """What an import found: resolution, period, gaps and units (energy in Wh, uom 72)."""

    readings: int  # as published, skipped ones included
    intervals: int  # on the regular grid, per flow
    resolution_s: int
    start_s: int
    end_s: int  # end of the last interval
    gaps: tuple[tuple[int, int], ...]  # (start_s, end_s) with no reading of any flow
    resampled: tuple[str, ...]  # readings split onto the grid (longer or misaligned)
    skipped: tuple[str, ...]  # readings left out (duration not positive, or overlapping)
    skipped_wh: int
    imported_wh: int
    exported_wh: int
    unit: str = "Wh"

    def lines(self, timezone: str = "UTC") -> list[str]:
        """The summary in words, clock times in ``timezone``."""
        from gridledger.web.units import energy_text, local_time_text

        def span(start_s: int, end_s: int) -> str:
            return f"{local_time_text(start_s, timezone)} to {local_time_text(end_s, timezone)}"

        gap_s = sum(end - start for start, end in self.gaps)
        out = [
            f"{self.intervals:,} intervals of {_duration(self.resolution_s)} from "
            f"{self.readings:,} readings, {span(self.start_s, self.end_s)}",
            f"energy in {self.unit} (uom {UOM_WH}): {energy_text(self.imported_wh)} imported, "
            f"{energy_text(self.exported_wh)} exported",
            f"gaps: {len(self.gaps)}"
            + (f" ({_duration(gap_s)} in total, first {span(*self.gaps[0])})" if self.gaps else ""),
        ]
        if self.resampled:
            out.append(
                f"resampled to {_duration(self.resolution_s)}: {len(self.resampled)} reading(s) "
                f"of another length or start, first {self.resampled[0]}"
            )
        if self.skipped:
            out.append(
                f"skipped: {len(self.skipped)} reading(s) without a positive duration or "
                "overlapping the one before "
                f"({energy_text(self.skipped_wh)}), first {self.skipped[0]}"
            )
        return out


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def import_greenbutton(
    source: str | Path | bytes, *, skip_invalid: bool = False
) -> tuple[list[IntervalEnergy], GreenButtonSummary]:
    """The readings on one regular grid (sorted by flow, start) and what the import found.

    The grid's step is the most common duration; its slots start at the first reading. A reading
    that is longer than a slot or does not start on one is split over the slots it covers in
    proportion to time (integer Wh, the parts sum to the reading). Overlapping readings are an
    error. ``skip_invalid`` leaves out readings with a duration <= 0, and a reading that overlaps
    the one before it, instead of refusing them; the summary lists them.
    """
    located = _read_located(source)
    bad = [r for r in located if r.item.duration_s <= 0]
    if bad and not skip_invalid:
        raise _not_positive(bad)
    kept = [r for r in located if r.item.duration_s > 0]
    if not kept:
        raise DataSourceError("Green Button file has no reading with a positive duration")
    durations = Counter(r.item.duration_s for r in kept)
    resolution_s = max(durations, key=lambda d: (durations[d], -d))
    origin_s = min(r.item.start_s for r in kept)
    slots: dict[tuple[Flow, int], int] = {}
    resampled: list[str] = []
    previous: dict[Flow, _Located] = {}
    for located_item in kept:
        item = located_item.item
        before = previous.get(item.flow)
        if before is not None and item.start_s < before.item.start_s + before.item.duration_s:
            if not skip_invalid:
                raise DataSourceError(
                    f"{located_item.where}, starting {_utc(item.start_s)}: overlaps "
                    f"{before.where}; fix the file, or import with --skip-invalid to leave "
                    "the later one out (it is reported)"
                )
            bad.append(located_item)
            continue
        previous[item.flow] = located_item
        parts = _split(item, origin_s, resolution_s)
        if len(parts) > 1 or (item.start_s - origin_s) % resolution_s:
            resampled.append(f"{located_item.where}, starting {_utc(item.start_s)}")
        for slot, energy_wh in parts:
            slots[item.flow, slot] = slots.get((item.flow, slot), 0) + energy_wh
    intervals = [
        IntervalEnergy(origin_s + slot * resolution_s, resolution_s, energy_wh, flow)
        for (flow, slot), energy_wh in sorted(slots.items())
    ]
    covered = sorted({slot for _, slot in slots})
    gaps = tuple(
        (origin_s + (a + 1) * resolution_s, origin_s + b * resolution_s)
        for a, b in itertools.pairwise(covered)
        if b > a + 1
    )
    summary = GreenButtonSummary(
        readings=len(located),
        intervals=len(covered),
        resolution_s=resolution_s,
        start_s=origin_s,
        end_s=origin_s + (covered[-1] + 1) * resolution_s,
        gaps=gaps,
        resampled=tuple(resampled),
        skipped=tuple(f"{r.where}, starting {_utc(r.item.start_s)}" for r in bad),
        skipped_wh=sum(r.item.energy_wh for r in bad),
        imported_wh=sum(i.energy_wh for i in intervals if i.flow == "import"),
        exported_wh=sum(i.energy_wh for i in intervals if i.flow == "export"),
    )
    return intervals, summary


def _split(item: IntervalEnergy, origin_s: int, step_s: int) -> list[tuple[int, int]]:
    """(slot, Wh) of the slots ``item`` covers; floors of the cumulative share, so sums agree."""
    end_s = item.start_s + item.duration_s
    first, last = (item.start_s - origin_s) // step_s, (end_s - 1 - origin_s) // step_s
    parts, given, covered_s = [], 0, 0
    for slot in range(first, last + 1):
        slot_start = origin_s + slot * step_s
        covered_s += min(end_s, slot_start + step_s) - max(item.start_s, slot_start)
        share = item.energy_wh * covered_s // item.duration_s
        parts.append((slot, share - given))
        given = share
    return parts


def _parse(source: str | Path | bytes) -> ET.Element:
    try:
        if isinstance(source, bytes):
            return ET.fromstring(source)
        return ET.parse(source).getroot()
    except (OSError, ET.ParseError) as exc:
        raise DataSourceError(f"cannot read Green Button XML {source!r:.80}: {exc}") from None


def _href_key(href: str) -> str:
    """Hrefs are relative in some files and absolute in others: compare their tails."""
    return href.rstrip("/").split("/resource/")[-1].lstrip("/")


def _links(entry: ET.Element, rel: str) -> list[str]:
    return [
        _href_key(link.get("href", ""))
        for link in entry.findall(f"{{{ATOM}}}link")
        if link.get("rel") == rel
    ]


def _reading_types(root: ET.Element) -> dict[str, tuple[int, Flow]]:
    """ReadingType self-href -> (powerOfTenMultiplier, flow)."""
    found: dict[str, tuple[int, Flow]] = {}
    for entry in root.iter(f"{{{ATOM}}}entry"):
        element = entry.find(f"{{{ATOM}}}content/{{{ESPI}}}ReadingType")
        if element is None:
            continue
        uom = _int(element, "uom", UOM_WH)
        if uom != UOM_WH:
            raise DataSourceError(f"ReadingType uom {uom} is not supported; only 72 (Wh) is")
        code = _int(element, "flowDirection", 1)
        if code not in FLOW_CODES:
            raise DataSourceError(f"ReadingType flowDirection {code} is not 1 or 19")
        flow: Flow = "import" if code == 1 else "export"
        for href in _links(entry, "self") or [str(len(found))]:
            found[href] = (_int(element, "powerOfTenMultiplier", 0), flow)
    if not found:
        raise DataSourceError("Green Button file has no ReadingType")
    return found


def _block_reading_types(
    root: ET.Element, types: dict[str, tuple[int, Flow]]
) -> Callable[[ET.Element], tuple[int, Flow]]:
    """A function giving the ReadingType of an IntervalBlock entry (via its MeterReading)."""
    by_meter_reading: dict[str, tuple[int, Flow]] = {}
    for entry in root.iter(f"{{{ATOM}}}entry"):
        if entry.find(f"{{{ATOM}}}content/{{{ESPI}}}MeterReading") is None:
            continue
        related = [types[h] for h in _links(entry, "related") if h in types]
        for href in _links(entry, "self"):
            if related:
                by_meter_reading[href] = related[0]
    only = next(iter(types.values())) if len(types) == 1 else None

    def reading_type(entry: ET.Element) -> tuple[int, Flow]:
        for up in _links(entry, "up"):
            parent = up.removesuffix("/IntervalBlock")
            if parent in by_meter_reading:
                return by_meter_reading[parent]
        if only is None:
            raise DataSourceError(
                "IntervalBlock does not link to a MeterReading with a ReadingType"
            )
        return only

    return reading_type


def _block_readings(block: ET.Element, multiplier: int, flow: Flow) -> Iterable[IntervalEnergy]:
    for element in block.findall(f"{{{ESPI}}}IntervalReading"):
        period = element.find(f"{{{ESPI}}}timePeriod")
        if period is None:
            raise DataSourceError("IntervalReading without timePeriod")
        value = _int(element, "value")
        yield IntervalEnergy(
            _int(period, "start"), _int(period, "duration"), _scale(value, multiplier), flow
        )


def _scale(value: int, power_of_ten: int) -> int:
    if power_of_ten >= 0:
        return value * int(10**power_of_ten)
    divisor = int(10**-power_of_ten)
    return (value + divisor // 2) // divisor  # round half up to whole Wh, in integers


def _int(parent: ET.Element, tag: str, default: int | None = None) -> int:
    element = parent.find(f"{{{ESPI}}}{tag}")
    if element is None or element.text is None:
        if default is None:
            raise DataSourceError(f"<{tag}> missing in <{parent.tag.split('}')[-1]}>")
        return default
    try:
        return int(element.text.strip())
    except ValueError:
        raise DataSourceError(f"<{tag}> is not an integer: {element.text!r}") from None


# -- writing ---------------------------------------------------------------------------------
def write_greenbutton(
    intervals: Sequence[IntervalEnergy], title: str = "gridledger meter"
) -> bytes:
    """An ESPI Atom feed (``espi:`` prefixed) holding ``intervals``; read back identically."""
    ET.register_namespace("", ATOM)
    ET.register_namespace("espi", ESPI)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, f"{{{ATOM}}}title", title)
    usage = _entry(feed, "UsagePoint/01", "UsagePoint")
    _espi(usage, "UsagePoint")
    for n, flow in enumerate(("import", "export"), start=1):
        chosen = sorted((i for i in intervals if i.flow == flow), key=lambda i: i.start_s)
        if not chosen:
            continue
        meter_reading = f"UsagePoint/01/MeterReading/{n:02d}"
        entry = _entry(feed, meter_reading, "MeterReading", related=[f"ReadingType/{n:02d}"])
        _espi(entry, "MeterReading")
        reading_type = _espi(_entry(feed, f"ReadingType/{n:02d}", "ReadingType"), "ReadingType")
        for tag, value in (
            ("flowDirection", 1 if flow == "import" else 19),
            ("powerOfTenMultiplier", 0),
            ("uom", UOM_WH),
        ):
            _text(reading_type, f"{{{ESPI}}}{tag}", str(value))
        block_entry = _entry(
            feed,
            f"{meter_reading}/IntervalBlock/01",
            "IntervalBlock",
            up=f"{meter_reading}/IntervalBlock",
        )
        _write_block(_espi(block_entry, "IntervalBlock"), chosen)
    ET.indent(feed)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))


def _write_block(block: ET.Element, chosen: Sequence[IntervalEnergy]) -> None:
    interval = ET.SubElement(block, f"{{{ESPI}}}interval")
    _text(
        interval,
        f"{{{ESPI}}}duration",
        str(chosen[-1].start_s + chosen[-1].duration_s - chosen[0].start_s),
    )
    _text(interval, f"{{{ESPI}}}start", str(chosen[0].start_s))
    for item in chosen:
        element = ET.SubElement(block, f"{{{ESPI}}}IntervalReading")
        period = ET.SubElement(element, f"{{{ESPI}}}timePeriod")
        _text(period, f"{{{ESPI}}}duration", str(item.duration_s))
        _text(period, f"{{{ESPI}}}start", str(item.start_s))
        _text(element, f"{{{ESPI}}}value", str(item.energy_wh))


def _entry(
    feed: ET.Element, href: str, title: str, related: Sequence[str] = (), up: str | None = None
) -> ET.Element:
    entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
    ET.SubElement(entry, f"{{{ATOM}}}link", rel="self", href=href)
    if up is not None:
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="up", href=up)
    for target in related:
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="related", href=target)
    _text(entry, f"{{{ATOM}}}title", title)
    return ET.SubElement(entry, f"{{{ATOM}}}content")


def _espi(content: ET.Element, tag: str) -> ET.Element:
    return ET.SubElement(content, f"{{{ESPI}}}{tag}")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


# -- conversion to and from meter readings ---------------------------------------------------
def to_readings(
    intervals: Sequence[IntervalEnergy], meter: str, first_sequence: int = 1
) -> list[Reading]:
    """One unsigned Reading per interval start (import and export merged), sequence rising."""
    merged: dict[tuple[int, int], list[int]] = {}
    for item in intervals:
        slot = merged.setdefault((item.start_s, item.duration_s), [0, 0])
        slot[0 if item.flow == "import" else 1] += item.energy_wh
    return [
        Reading(meter, first_sequence + n, start, duration, imported, exported)
        for n, ((start, duration), (imported, exported)) in enumerate(sorted(merged.items()))
    ]


def from_readings(readings: Iterable[Reading]) -> list[IntervalEnergy]:
    """Interval energies of stored readings (an export row only where energy was exported)."""
    out: list[IntervalEnergy] = []
    for r in readings:
        out.append(IntervalEnergy(r.interval_start_s, r.interval_length_s, r.imported_wh, "import"))
        if r.exported_wh:
            out.append(
                IntervalEnergy(r.interval_start_s, r.interval_length_s, r.exported_wh, "export")
            )
    return out
