"""CSV order books: ``id,side,energy_wh,price`` (plus an optional ``zone`` column).

``side`` is ``buy`` or ``sell``; ``price`` is the limit in micro-units per kWh (a buy's includes
the grid fee). Rows keep their file order as the arrival sequence. Errors name the file line
(the header is line 1) and the field, e.g. ``row 7, energy_wh: must be a positive integer,
got '-5'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from gridledger.errors import DataSourceError, ValidationError
from gridledger.market.book import MAX_ENERGY_WH, MAX_PRICE_MICRO_PER_KWH, Book
from gridledger.market.orders import SIDE_CODES

REQUIRED_COLUMNS = ("id", "side", "energy_wh", "price")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def read_book_csv(path: str | Path) -> Book:
    """Read a CSV order book from ``path``."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return parse_book_csv(handle)
    except OSError as exc:
        raise DataSourceError(f"cannot read order book {path}: {exc.strerror or exc}") from None


def parse_book_csv(lines: Iterable[str]) -> Book:
    """Parse CSV text lines (a file handle or ``text.splitlines()``) into a Book."""
    reader = csv.reader(lines)
    header = [name.strip() for name in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationError("header", f"missing column(s) {', '.join(missing)}, got {header}")
    where = {name: header.index(name) for name in (*REQUIRED_COLUMNS, "zone") if name in header}
    columns: dict[str, list[int]] = {name: [] for name in where}
    first_line_of_id: dict[int, int] = {}
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValidationError(
                f"row {line_no}", f"has {len(row)} fields, header has {len(header)}"
            )
        values = _parse_row(row, where, line_no)
        if values["id"] in first_line_of_id:
            raise ValidationError(
                f"row {line_no}, id", f"duplicate of row {first_line_of_id[values['id']]}"
            )
        first_line_of_id[values["id"]] = line_no
        for name, value in values.items():
            columns[name].append(value)
    return Book.from_arrays(
        ids=columns["id"],
        side=columns["side"],
        energy_wh=columns["energy_wh"],
        price_micro_per_kwh=columns["price"],
        zone=columns.get("zone"),
    )


def _parse_row(row: list[str], where: dict[str, int], line_no: int) -> dict[str, int]:
    cell = {name: row[index].strip() for name, index in where.items()}
    side = cell["side"].lower()
    if side not in SIDE_CODES:
        raise ValidationError(
            f"row {line_no}, side", f"must be 'buy' or 'sell', got {cell['side']!r}"
        )
    values = {
        "id": _integer(cell["id"], line_no, "id", _INT64_MIN, _INT64_MAX, "an integer"),
        "side": SIDE_CODES[side],
        "energy_wh": _integer(
            cell["energy_wh"], line_no, "energy_wh", 1, MAX_ENERGY_WH, "a positive integer"
        ),
        "price": _integer(
            cell["price"], line_no, "price", 0, MAX_PRICE_MICRO_PER_KWH, "a non-negative integer"
        ),
    }
    if "zone" in cell:
        values["zone"] = _integer(cell["zone"], line_no, "zone", 0, 1 << 31, "a zone number >= 0")
    return values


def _integer(text: str, line_no: int, name: str, low: int, high: int, kind: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValidationError(f"row {line_no}, {name}", f"must be {kind}, got {text!r}") from None
    if value < low:
        raise ValidationError(f"row {line_no}, {name}", f"must be {kind}, got {text!r}")
    if value > high:
        raise ValidationError(f"row {line_no}, {name}", f"must be at most {high}, got {text!r}")
    return value


def book_to_csv(book: Book) -> str:
    """The book as CSV text in arrival order (``zone`` included when any zone is non-zero)."""
    with_zone = bool(book.zone.any())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*REQUIRED_COLUMNS, "zone"] if with_zone else REQUIRED_COLUMNS)
    sides = {code: name for name, code in SIDE_CODES.items()}
    for row in book.sequence.argsort(kind="stable").tolist():
        fields = [
            int(book.ids[row]),
            sides[int(book.side[row])],
            int(book.energy_wh[row]),
            int(book.price_micro_per_kwh[row]),
        ]
        writer.writerow([*fields, int(book.zone[row])] if with_zone else fields)
    return out.getvalue()
