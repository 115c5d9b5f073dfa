"""Hypothesis properties of the clearing mechanisms, and a cross-check against pymarket."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.market import Book, ClearingResult, GridFees, clear
from gridledger.market.book import Int64Array

BUY, SELL = 0, 1
SETTINGS = settings(max_examples=200, deadline=None)
ZONE_MATRIX = np.array([[0, 7, 30], [7, 0, 15], [30, 15, 0]], dtype=np.int64)

row = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(1, 1_000),  # energy_wh
    st.integers(0, 400) | st.integers(95, 105),  # price; the narrow band makes ties common
    st.integers(0, 2),  # zone
)


@st.composite
def books(draw: st.DrawFn, max_rows: int = 40) -> Book:
    rows = draw(st.lists(row, max_size=max_rows))
    ids = draw(st.permutations(range(1_000, 1_000 + len(rows)))) if rows else []
    columns = list(zip(*rows, strict=True)) or [[], [], [], []]
    return Book.from_arrays(ids, *columns[:3], zone=columns[3])


fee_setups = st.tuples(st.integers(0, 50), st.booleans())


def run(book: Book, mechanism: str, fee: int, zoned: bool) -> ClearingResult:
    matrix = ZONE_MATRIX if zoned else None
    return clear(book, mechanism, fee, zone_fee_micro_per_kwh=matrix)


def per_row(book: Book, rows: Int64Array, energy: Int64Array) -> Int64Array:
    return np.bincount(rows, weights=energy, minlength=len(book)).astype(np.int64)


def check_common(book: Book, result: ClearingResult, fees: GridFees) -> None:
    t = result.trades
    assert (t.energy_wh > 0).all()
    assert int(t.energy_wh.sum()) == result.cleared_energy_wh
    bought = per_row(book, t.buy_row, t.energy_wh)
    sold = per_row(book, t.sell_row, t.energy_wh)
    # matched supply == matched demand, and each order's trades add up to its fill
    assert int(bought.sum()) == int(sold.sum()) == result.cleared_energy_wh
    assert (bought + sold == result.filled_wh).all()
    assert (result.filled_wh <= book.energy_wh).all()
    assert (book.side[t.buy_row] == BUY).all() and (book.side[t.sell_row] == SELL).all()
    # no seller below its ask, no buyer above its bid (fee included), fee as the tariff says
    assert (t.price_micro_per_kwh >= book.price_micro_per_kwh[t.sell_row]).all()
    assert (
        t.price_micro_per_kwh + t.fee_micro_per_kwh <= book.price_micro_per_kwh[t.buy_row]
    ).all()
    expected_fee = fees.pair_fee(book.zone[t.buy_row], book.zone[t.sell_row])
    assert (t.fee_micro_per_kwh == expected_fee).all()


def residual_not_crossed(book: Book, result: ClearingResult, fees: GridFees) -> None:
    """What is left over cannot trade: the best leftover net bid is below the best leftover ask."""
    left = book.energy_wh - result.filled_wh
    buys = (book.side == BUY) & (left > 0)
    sells = (book.side == SELL) & (left > 0)
    if buys.any() and sells.any():
        net = book.price_micro_per_kwh - fees.worst_fee(book.zone)
        assert int(net[buys].max()) < int(book.price_micro_per_kwh[sells].min())


@SETTINGS
@given(books(), fee_setups)
def test_sealed_auctions(book: Book, fee_setup: tuple[int, bool]) -> None:
    fee, zoned = fee_setup
    fees = GridFees.build(fee, ZONE_MATRIX if zoned else None)
    uniform = run(book, "uniform", fee, zoned)
    pay_as_bid = run(book, "pay-as-bid", fee, zoned)
    for result in (uniform, pay_as_bid):
        check_common(book, result, fees)
        residual_not_crossed(book, result, fees)
    # same allocation, different prices
    assert (uniform.filled_wh == pay_as_bid.filled_wh).all()
    if uniform.cleared_energy_wh:
        price = uniform.clearing_price_micro_per_kwh
        assert price is not None
        filled = uniform.filled_wh > 0
        net = book.price_micro_per_kwh - fees.worst_fee(book.zone)
        marginal_ask = int(book.price_micro_per_kwh[filled & (book.side == SELL)].max())
        marginal_bid = int(net[filled & (book.side == BUY)].min())
        assert marginal_ask <= price <= marginal_bid
        assert price == (marginal_ask + marginal_bid) // 2
    else:
        assert uniform.clearing_price_micro_per_kwh is None


@SETTINGS
@given(books(), fee_setups)
def test_cda(book: Book, fee_setup: tuple[int, bool]) -> None:
    fee, zoned = fee_setup
    fees = GridFees.build(fee, ZONE_MATRIX if zoned else None)
    result = run(book, "cda", fee, zoned)
    check_common(book, result, fees)
    if not zoned:  # with a flat fee the book left resting is never crossed
        residual_not_crossed(book, result, fees)
    # a trade happens at the resting order's price
    t = result.trades
    buy_rests = book.sequence[t.buy_row] < book.sequence[t.sell_row]
    resting_price = np.where(
        buy_rests,
        book.price_micro_per_kwh[t.buy_row] - t.fee_micro_per_kwh,
        book.price_micro_per_kwh[t.sell_row],
    )
    assert (t.price_micro_per_kwh == resting_price).all()


def shuffled(book: Book, permutation: list[int]) -> Book:
    p = np.array(permutation, dtype=np.int64)
    return Book.from_arrays(
        book.ids[p],
        book.side[p],
        book.energy_wh[p],
        book.price_micro_per_kwh[p],
        zone=book.zone[p],
        sequence=np.arange(len(book)),
    )


@SETTINGS
@given(books(), fee_setups, st.data())
def test_output_is_byte_identical_whatever_the_arrival_order(
    book: Book, fee_setup: tuple[int, bool], data: st.DataObject
) -> None:
    fee, zoned = fee_setup
    other = shuffled(book, data.draw(st.permutations(range(len(book)))))
    for mechanism in ("uniform", "pay-as-bid"):
        a, b = run(book, mechanism, fee, zoned), run(other, mechanism, fee, zoned)
        assert a.to_dict() == b.to_dict()
        for name in (
            "buy_row",
            "sell_row",
            "energy_wh",
            "price_micro_per_kwh",
            "fee_micro_per_kwh",
        ):
            assert getattr(a.trades, name).tobytes() == getattr(b.trades, name).tobytes()
        assert a.filled_wh.tobytes() == b.filled_wh.tobytes()


def test_large_book_still_balances() -> None:
    from gridledger.market.bench import random_book

    book = random_book(20_000, seed=3)
    fees = GridFees.build(20_000)
    result = run(book, "uniform", 20_000, False)
    check_common(book, result, fees)
    residual_not_crossed(book, result, fees)
    assert result.cleared_energy_wh > 0


# --- cross-check with pymarket's stepwise curve intersection -------------------------------
# pymarket.intersect_stepwise returns the last curve breakpoint before supply overtakes demand
# (its curves end in an infinite step); with no bid equal to an ask that is exactly our cleared
# quantity. Its price is a midpoint only when both marginal orders end at that breakpoint.

even_odd_row = st.tuples(
    st.booleans(), st.integers(1, 1_000) | st.integers(1, 4), st.integers(0, 200)
)


@settings(max_examples=100, deadline=None)
@given(st.lists(even_odd_row, min_size=2, max_size=30))
def test_crosscheck_with_pymarket(rows: list[tuple[bool, int, int]]) -> None:
    pymarket = pytest.importorskip("pymarket")

    sides = [BUY if buying else SELL for buying, _, _ in rows]
    energies = [e for _, e, _ in rows]
    prices = [2 * p if buying else 2 * p + 1 for buying, _, p in rows]  # never bid == ask
    book = Book.from_arrays(range(len(rows)), sides, energies, prices)
    if BUY not in sides or SELL not in sides:
        return
    result = clear(book, "uniform")
    manager = pymarket.BidManager()
    for i, (buying, energy, _) in enumerate(rows):
        manager.add_bid(energy, prices[i], i, buying)
    bids = manager.get_df()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demand, _ = pymarket.demand_curve_from_bids(bids)
        supply, _ = pymarket.supply_curve_from_bids(bids)
        x_ast, f_ast, g_ast, value = pymarket.intersect_stepwise(demand, supply)
    q = result.cleared_energy_wh
    if q > 0:
        assert x_ast == q
        bid, ask = demand[f_ast, 1], supply[g_ast, 1]
        assert result.clearing_price_micro_per_kwh is not None
        assert ask <= result.clearing_price_micro_per_kwh <= bid
        if q in demand[:, 0] and q in supply[:, 0]:
            assert result.clearing_price_micro_per_kwh == int(value)
    else:
        assert x_ast is None
