"""Textbook cases worked by hand for the three mechanisms, fees and zones."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.market import Book, clear, clear_cda, clear_pay_as_bid, clear_uniform_price

BUY, SELL = 0, 1


def trades_of(result: object) -> list[tuple[int, int, int, int, int]]:
    d = result.to_dict()  # type: ignore[attr-defined]
    return [
        (
            t["buy_id"],
            t["sell_id"],
            t["energy_wh"],
            t["price_micro_per_kwh"],
            t["fee_micro_per_kwh"],
        )
        for t in d["trades"]
    ]


# Buys (net of a fee of 10): id1 100 Wh @ 290, id2 200 Wh @ 240, id3 300 Wh @ 90.
# Sells: id4 150 Wh @ 50, id5 150 Wh @ 200, id6 400 Wh @ 260.
# Demand covers 0..100 at 290, 100..300 at 240; supply 0..150 at 50, 150..300 at 200, then 260
# > 90, so Q = 300 Wh with marginal bid 240 and marginal ask 200: price (240 + 200) // 2 = 220.
TEXTBOOK = Book.from_arrays(
    ids=[1, 2, 3, 4, 5, 6],
    side=[BUY, BUY, BUY, SELL, SELL, SELL],
    energy_wh=[100, 200, 300, 150, 150, 400],
    price_micro_per_kwh=[300, 250, 100, 50, 200, 260],
)


def test_uniform_textbook() -> None:
    result = clear_uniform_price(TEXTBOOK, 10)
    assert result.clearing_price_micro_per_kwh == 220
    assert result.cleared_energy_wh == 300
    assert trades_of(result) == [(1, 4, 100, 220, 10), (2, 4, 50, 220, 10), (2, 5, 150, 220, 10)]
    assert result.filled_wh.tolist() == [100, 200, 0, 150, 150, 0]


def test_pay_as_bid_textbook() -> None:
    result = clear_pay_as_bid(TEXTBOOK, 10)
    assert result.clearing_price_micro_per_kwh is None
    # each buyer pays its own bid: the seller gets the bid minus the fee
    assert trades_of(result) == [(1, 4, 100, 290, 10), (2, 4, 50, 240, 10), (2, 5, 150, 240, 10)]


def test_cda_textbook_trades_at_resting_price() -> None:
    # Arrival order is the given order: three buys rest, then each sell hits the best bid.
    result = clear_cda(TEXTBOOK, 10)
    assert trades_of(result) == [(1, 4, 100, 290, 10), (2, 4, 50, 240, 10), (2, 5, 150, 240, 10)]
    # Sells first: they rest, and each buy lifts the cheapest ask at the ask.
    sells_first = Book.from_arrays(
        TEXTBOOK.ids,
        TEXTBOOK.side,
        TEXTBOOK.energy_wh,
        TEXTBOOK.price_micro_per_kwh,
        sequence=[3, 4, 5, 0, 1, 2],
    )
    result = clear_cda(sells_first, 10)
    assert trades_of(result) == [(1, 4, 100, 50, 10), (2, 4, 50, 50, 10), (2, 5, 150, 200, 10)]


def test_partial_fill_of_the_marginal_sell() -> None:
    book = Book.from_arrays([1, 2, 3], [BUY, SELL, SELL], [100, 50, 100], [300, 100, 200])
    result = clear_uniform_price(book)
    assert result.cleared_energy_wh == 100
    assert result.clearing_price_micro_per_kwh == 250
    assert result.filled_wh.tolist() == [100, 50, 50]


def test_price_is_floored_midpoint() -> None:
    book = Book.from_arrays([1, 2], [BUY, SELL], [10, 10], [101, 100])
    assert clear_uniform_price(book).clearing_price_micro_per_kwh == 100


def test_equal_prices_trade_and_ties_go_to_the_lower_id() -> None:
    book = Book.from_arrays([7, 3, 9], [SELL, SELL, BUY], [100, 100, 150], [100, 100, 100])
    result = clear_uniform_price(book)
    assert result.clearing_price_micro_per_kwh == 100
    assert dict(zip(book.ids.tolist(), result.filled_wh.tolist(), strict=True)) == {
        3: 100,
        7: 50,
        9: 150,
    }


def test_no_crossing_and_one_sided_books() -> None:
    crossed_out = Book.from_arrays([1, 2], [BUY, SELL], [10, 10], [99, 100])
    one_sided = Book.from_arrays([1, 2], [SELL, SELL], [10, 10], [1, 2])
    empty = Book.from_arrays([], [], [], [])
    for book in (crossed_out, one_sided, empty):
        for mechanism in ("uniform", "pay-as-bid", "cda"):
            result = clear(book, mechanism)
            assert result.cleared_energy_wh == 0
            assert result.clearing_price_micro_per_kwh is None
            assert len(result.trades) == 0
            assert not result.filled_wh.any()


def test_grid_fee_can_prevent_a_trade() -> None:
    book = Book.from_arrays([1, 2], [BUY, SELL], [10, 10], [110, 100])
    assert clear_uniform_price(book, 10).cleared_energy_wh == 10
    assert clear_uniform_price(book, 11).cleared_energy_wh == 0
    assert clear_cda(book, 11).cleared_energy_wh == 0


def test_zone_fee_matrix() -> None:
    # Flat 10 everywhere plus 30 across feeders. The buyer in zone 0 is ranked net of its worst
    # fee (40): 200 - 40 = 160 >= 150, so it buys from the cheapest seller even across feeders.
    matrix = [[0, 30], [30, 0]]
    book = Book.from_arrays(
        [1, 2, 3], [BUY, SELL, SELL], [100, 60, 60], [200, 150, 155], zone=[0, 1, 0]
    )
    result = clear_uniform_price(book, 10, zone_fee_micro_per_kwh=matrix)
    # marginal net bid 160, marginal ask 155: price 157
    assert trades_of(result) == [(1, 2, 60, 157, 40), (1, 3, 40, 157, 10)]
    for t in trades_of(result):
        assert t[3] + t[4] <= 200
    cda = clear_cda(book, 10, zone_fee_micro_per_kwh=matrix)
    # the buyer arrived first and rests; each sell hits it at its bid minus the pair's fee
    assert trades_of(cda) == [(1, 2, 60, 160, 40), (1, 3, 40, 190, 10)]


def test_cda_prefers_the_cheaper_seller_after_zone_fees() -> None:
    matrix = [[0, 50], [50, 0]]
    book = Book.from_arrays(
        [1, 2, 3], [SELL, SELL, BUY], [10, 10, 10], [100, 120, 300], zone=[1, 0, 0]
    )
    result = clear_cda(book, 0, zone_fee_micro_per_kwh=matrix)
    assert trades_of(result) == [(3, 2, 10, 120, 0)]  # 120 local beats 100 + 50 across


def test_cda_time_priority_among_equal_prices() -> None:
    book = Book.from_arrays(
        [1, 2, 3], [SELL, SELL, BUY], [10, 10, 10], [100, 100, 100], sequence=[5, 2, 9]
    )
    assert trades_of(clear_cda(book)) == [(3, 2, 10, 100, 0)]


def test_zone_outside_the_matrix_is_refused() -> None:
    book = Book.from_arrays([1, 2], [BUY, SELL], [1, 1], [1, 1], zone=[0, 2])
    with pytest.raises(ValidationError, match="zone"):
        clear_uniform_price(book, zone_fee_micro_per_kwh=[[0, 1], [1, 0]])


def test_unknown_mechanism_and_negative_fee() -> None:
    with pytest.raises(ValidationError, match="mechanism"):
        clear(TEXTBOOK, "vickrey")
    with pytest.raises(ValidationError, match="grid_fee"):
        clear_uniform_price(TEXTBOOK, -1)


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"ids": [1, 1]}, "ids"),
        ({"side": [0, 2]}, "side"),
        ({"energy_wh": [0, 1]}, "energy_wh"),
        ({"price_micro_per_kwh": [-1, 1]}, "price_micro_per_kwh"),
        ({"price_micro_per_kwh": [1]}, "price_micro_per_kwh"),
        ({"energy_wh": [1.0, 2.0]}, "energy_wh"),
    ],
)
def test_book_validation(columns: dict[str, list[float]], field: str) -> None:
    base: dict[str, list[float]] = {
        "ids": [1, 2],
        "side": [0, 1],
        "energy_wh": [1, 1],
        "price_micro_per_kwh": [1, 1],
    }
    with pytest.raises(ValidationError) as info:
        Book.from_arrays(**(base | columns))  # type: ignore[arg-type]
    assert info.value.field == field


def test_book_rows_are_sorted_by_id() -> None:
    book = Book.from_arrays([5, 1, 3], [0, 1, 0], [1, 2, 3], [4, 5, 6])
    assert book.ids.tolist() == [1, 3, 5]
    assert book.energy_wh.tolist() == [2, 3, 1]
    assert book.sequence.tolist() == [1, 2, 0]
    assert book.ids.dtype == np.int64
