"""CSV order books: ``id,side,energy_wh,price`` (plus an optional ``zone`` column).

``id`` is an integer or a name (``o1``, ``alice``); ``side`` is ``buy`` or ``sell``; the price
is the limit per kWh (a buy's includes the grid fee), in the unit its header names:
``price_micro_per_kwh`` (integer micro-units) or ``price_per_kwh`` / ``price_eur_per_kwh``
(currency per kWh, ``0.25``); a bare ``price`` column is in micro-units unless the caller says
``price_unit="per_kwh"``. Files as Excel saves them are read too: "CSV UTF-8" (a byte-order
mark, CRLF line ends) and semicolon-separated files, whose prices may use a decimal comma.
Rows keep their file order as the arrival sequence. Errors name the file line (the header is
line 1) and the field, e.g. ``row 7, energy_wh: must be a positive integer, got '-5'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from gridledger.errors import DataSourceError, ValidationError
from gridledger.market.book import MAX_ENERGY_WH, MAX_PRICE_MICRO_PER_KWH, Book
from gridledger.market.orders import SIDE_CODES

REQUIRED_COLUMNS = ("id", "side", "energy_wh", "price")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
PriceUnit = Literal["micro", "per_kwh"]
_PER_KWH_HEADER = re.compile(r"price(_[a-z]{3})?_per_kwh")
_MICRO_PER_UNIT = 1_000_000


def read_book_csv(path: str | Path, price_unit: PriceUnit | None = None) -> Book:
    """Read a CSV order book from ``path`` (UTF-8, with or without a byte-order mark)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return parse_book_csv(handle, price_unit)
    except OSError as exc:
        raise DataSourceError(f"cannot read order book {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataSourceError(
            f'order book {path} is not UTF-8 ({exc.reason}); save it as "CSV UTF-8"'
        ) from None


def _price_column(header: list[str], price_unit: PriceUnit | None) -> tuple[str, PriceUnit]:
    """The price column and its unit, from the header (or ``price_unit`` for a bare price)."""
    named = [h for h in header if h == "price_micro_per_kwh" or _PER_KWH_HEADER.fullmatch(h)]
    if ("price" in header and named) or len(named) > 1:
        raise ValidationError("header", f"more than one price column: {header}")
    if named:
        unit: PriceUnit = "micro" if named[0] == "price_micro_per_kwh" else "per_kwh"
        if price_unit is not None and price_unit != unit:
            raise ValidationError(
                "price_unit", f"{price_unit!r} contradicts the header's {named[0]!r}"
            )
        return named[0], unit
    return "price", price_unit or "micro"


def parse_book_csv(lines: Iterable[str], price_unit: PriceUnit | None = None) -> Book:
    """Parse CSV text lines (a file handle or ``text.splitlines()``) into a Book."""
    text_lines = [line.removeprefix("\ufeff") if n == 0 else line for n, line in enumerate(lines)]
    first = text_lines[0] if text_lines else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(text_lines, delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    price_name, unit = _price_column(header, price_unit)
    header = ["price" if name == price_name else name for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValidationError("header", f"missing column(s) {', '.join(missing)}, got {header}")
    where = {name: header.index(name) for name in (*REQUIRED_COLUMNS, "zone") if name in header}
    columns: dict[str, list[int | str]] = {name: [] for name in where}
    first_line_of_id: dict[int | str, int] = {}
    decimal_comma = delimiter == ";"
    raw_ids: list[int | str] = []
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValidationError(
                f"row {line_no}", f"has {len(row)} fields, header has {len(header)}"
            )
        values = _parse_row(row, where, line_no, unit, decimal_comma)
        raw_ids.append(row[where["id"]].strip())
        if values["id"] in first_line_of_id:
            raise ValidationError(
                f"row {line_no}, id", f"duplicate of row {first_line_of_id[values['id']]}"
            )
        first_line_of_id[values["id"]] = line_no
        for name, value in values.items():
            columns[name].append(value)
    if any(isinstance(i, str) for i in columns["id"]):  # names: keep every id as written
        columns["id"] = raw_ids
    return Book.from_arrays(
        ids=columns["id"],
        side=columns["side"],
        energy_wh=columns["energy_wh"],
        price_micro_per_kwh=columns["price"],
        zone=columns.get("zone"),
    )


def _parse_row(
    row: list[str], where: dict[str, int], line_no: int, unit: PriceUnit, decimal_comma: bool
) -> dict[str, int | str]:
    cell = {name: row[index].strip() for name, index in where.items()}
    side = cell["side"].lower()
    if side not in SIDE_CODES:
        raise ValidationError(
            f"row {line_no}, side", f"must be 'buy' or 'sell', got {cell['side']!r}"
        )
    if not cell["id"]:
        raise ValidationError(f"row {line_no}, id", "is empty")
    values: dict[str, int | str] = {
        "id": _id(cell["id"]),
        "side": SIDE_CODES[side],
        "energy_wh": _integer(
            cell["energy_wh"], line_no, "energy_wh", 1, MAX_ENERGY_WH, "a positive integer"
        ),
        "price": _integer(
            cell["price"], line_no, "price", 0, MAX_PRICE_MICRO_PER_KWH, "a non-negative integer"
        )
        if unit == "micro"
        else _per_kwh(cell["price"], line_no, decimal_comma),
    }
    if "zone" in cell:
        values["zone"] = _integer(cell["zone"], line_no, "zone", 0, 1 << 31, "a zone number >= 0")
    return values


def _id(text: str) -> int | str:
    try:
        value = int(text)
    except ValueError:
        return text
    return value if _INT64_MIN <= value <= _INT64_MAX else text


def _per_kwh(text: str, line_no: int, decimal_comma: bool) -> int:
    """``0.25`` (currency per kWh) as 250000 micro-units per kWh, exactly."""
    field = f"row {line_no}, price"
    try:
        value = Decimal(text.replace(",", ".") if decimal_comma else text)
    except InvalidOperation:
        raise ValidationError(field, f"must be a price per kWh like 0.25, got {text!r}") from None
    micro = value * _MICRO_PER_UNIT
    if not value.is_finite() or value < 0 or micro != micro.to_integral_value():
        raise ValidationError(
            field, f"must be a non-negative price per kWh with at most 6 decimals, got {text!r}"
        )
    if micro > MAX_PRICE_MICRO_PER_KWH:
        raise ValidationError(field, f"must be at most {MAX_PRICE_MICRO_PER_KWH // 10**6} per kWh")
    return int(micro)


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
        fields: list[int | str] = [
            book.labels[row] if book.labels is not None else int(book.ids[row]),
            sides[int(book.side[row])],
            int(book.energy_wh[row]),
            int(book.price_micro_per_kwh[row]),
        ]
        writer.writerow([*fields, int(book.zone[row])] if with_zone else fields)
    return out.getvalue()
