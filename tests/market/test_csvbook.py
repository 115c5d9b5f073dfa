"""CSV order books: parsing, round trip, and errors that name the row and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.errors import DataSourceError, ValidationError
from gridledger.iotools.csvbook import book_to_csv, parse_book_csv, read_book_csv
from gridledger.market import clear

GOOD = """id,side,energy_wh,price
10,buy,100,300
4,sell,150,50
7,buy,200,250
2,sell,150,200
"""


def test_read_book_csv(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_text(GOOD)
    book = read_book_csv(path)
    assert book.ids.tolist() == [2, 4, 7, 10]
    assert book.side.tolist() == [1, 1, 0, 0]
    assert book.sequence.tolist() == [3, 1, 2, 0]  # file order is the arrival order
    result = clear(book, "uniform")
    assert (result.cleared_energy_wh, result.clearing_price_micro_per_kwh) == (300, 225)


def test_round_trip_with_zones() -> None:
    text = "id,side,energy_wh,price,zone\n3,sell,5,1,2\n1,buy,9,8,0\n"
    book = parse_book_csv(text.splitlines())
    assert book.zone.tolist() == [0, 2]
    assert book_to_csv(book) == text
    assert book_to_csv(parse_book_csv(GOOD.splitlines())) == GOOD


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "1,buy,100,3\n2,sell,1,1\n3,buy,1,1\n4,buy,1,1\n5,buy,1,1\n6,sell,-5,1\n",
            "row 7, energy_wh: must be a positive integer, got '-5'",
        ),
        ("1,hold,1,1\n", "row 2, side: must be 'buy' or 'sell', got 'hold'"),
        ("1,buy,1,1.5\n", "row 2, price: must be a non-negative integer, got '1.5'"),
        ("1,buy,1,-1\n", "row 2, price: must be a non-negative integer, got '-1'"),
        (" ,buy,1,1\n", "row 2, id: is empty"),
        ("1,buy,1,1\n1,sell,1,1\n", "row 3, id: duplicate of row 2"),
        ("1,buy,1\n", "row 2: has 3 fields, header has 4"),
        ("1,buy,0,1\n", "row 2, energy_wh: must be a positive integer, got '0'"),
    ],
)
def test_bad_rows_name_row_and_field(body: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_book_csv(("id,side,energy_wh,price\n" + body).splitlines())
    assert str(info.value) == message


def test_missing_column_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="missing column"):
        parse_book_csv(["id,side,energy_wh"])
    with pytest.raises(DataSourceError):
        read_book_csv(tmp_path / "nope.csv")


def test_blank_lines_are_skipped() -> None:
    book = parse_book_csv(["id,side,energy_wh,price", "", "1,buy,1,1", " , , , "])
    assert len(book) == 1


def test_string_ids_are_kept_and_trades_name_them() -> None:
    book = parse_book_csv(["id,side,energy_wh,price", "o2,sell,150,50", "o1,buy,100,300"])
    assert book.labels == ("o1", "o2") and book.sequence.tolist() == [1, 0]
    trade = clear(book, "uniform").to_dict()["trades"][0]
    assert (trade["buy_id"], trade["sell_id"]) == ("o1", "o2")
    assert book_to_csv(book) == "id,side,energy_wh,price\no2,sell,150,50\no1,buy,100,300\n"
    with pytest.raises(ValidationError, match="duplicate of row 2"):
        parse_book_csv(["id,side,energy_wh,price", "o1,buy,1,1", "o1,sell,1,1"])


def test_excel_csv_utf8_with_semicolons_and_prices_per_kwh(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    # what Excel writes as "CSV UTF-8" in a German locale: BOM, CRLF, ';' and a decimal comma
    path.write_bytes(
        "\ufeffID;Side;energy_wh;price_eur_per_kwh\r\nalice;buy;100;0,30\r\nbob;sell;100;0,2\r\n".encode()
    )
    book = read_book_csv(path)
    assert book.labels == ("alice", "bob")
    assert book.price_micro_per_kwh.tolist() == [300_000, 200_000]
    assert clear(book, "uniform").clearing_price_micro_per_kwh == 250_000


@pytest.mark.parametrize(
    ("lines", "unit", "prices"),
    [
        (["id,side,energy_wh,price_per_kwh", "1,buy,5,0.25"], None, [250_000]),
        (["id,side,energy_wh,price_micro_per_kwh", "1,buy,5,250000"], None, [250_000]),
        (["id,side,energy_wh,price", "1,buy,5,0.123456"], "per_kwh", [123_456]),
        (["id,side,energy_wh,price", "1,buy,5,250000"], None, [250_000]),
    ],
)
def test_the_price_unit_comes_from_the_header_or_the_option(
    lines: list[str], unit: str | None, prices: list[int]
) -> None:
    assert parse_book_csv(lines, unit).price_micro_per_kwh.tolist() == prices  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lines", "unit", "message"),
    [
        (["id,side,energy_wh,price_per_kwh", "1,buy,5,0.1234567"], None, "at most 6 decimals"),
        (["id,side,energy_wh,price_per_kwh", "1,buy,5,-0.1"], None, "non-negative"),
        (["id,side,energy_wh,price_per_kwh", "1,buy,5,cheap"], None, "like 0.25, got 'cheap'"),
        (["id,side,energy_wh,price_per_kwh", "1,buy,5,1"], "micro", "contradicts"),
        (["id,side,energy_wh,price,price_per_kwh", "1,buy,5,1,1"], None, "more than one price"),
    ],
)
def test_bad_prices_per_kwh_are_named(lines: list[str], unit: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_book_csv(lines, unit)  # type: ignore[arg-type]
