"""Sealed-bid double auctions over one interval's book: uniform price and pay-as-bid.

Both share one allocation, computed entirely in int64:

* Merit order. Buys are ranked by bid net of the highest grid fee they could face (highest
  first), sells by ask (lowest first); ties go to the lower book id (for books built from
  orders, the lower EIP-712 order hash) and never to arrival order.
* Quantity. The cleared energy Q is the largest q at which the buy covering q still bids at
  least the ask of the sell covering q on the two stepwise curves; the marginal buy and sell
  may be partially filled.
* Pairing. Walking both ranked sides from the top cuts [0, Q] at every cumulative-energy
  breakpoint; each segment is one trade between the buy and the sell covering it.

Prices. Uniform (pay-as-clear): every trade settles at p = floor((b* + a*) / 2), where b* is
the marginal accepted buy's net bid and a* the marginal accepted ask; a* <= p <= b*. Pay-as-bid:
each buyer pays its own bid and its seller receives that bid minus the pair's grid fee. In both,
no seller receives less than its ask and no buyer pays more than its bid, fee included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.market.book import Book
from gridledger.market.fees import GridFees
from gridledger.market.orders import BUY, SELL
from gridledger.market.result import ClearingResult, Int64Array, Trades

UNIFORM: Final = "uniform"
PAY_AS_BID: Final = "pay-as-bid"
CDA: Final = "cda"


def _rank(rows: Int64Array, key: Int64Array) -> Int64Array:
    """``rows`` (ascending) reordered by ``key`` ascending, ties kept in row order.

    Fast path: pack (key, position) into one int64 and sort the values, which is cheaper than
    a stable argsort; falls back to the stable argsort when the packed key would overflow.
    """
    n = int(rows.shape[0])
    if n == 0:
        return rows
    shift = max(n - 1, 1).bit_length()
    low = int(key.min())
    if int(key.max()) - low < 1 << (62 - shift):
        packed = (key - low) << shift
        packed |= np.arange(n, dtype=np.int64)
        packed.sort()
        packed &= (1 << shift) - 1
        ranked: Int64Array = rows[packed]
        return ranked
    stable: Int64Array = rows[np.argsort(key, kind="stable")]
    return stable


def _first_false(n: int, feasible: Callable[[int], bool]) -> int:
    """Length of the True prefix of a monotone predicate over 0..n-1 (binary search)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if feasible(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo


class _Allocation:
    """Ranked sides, their cumulative curves and the cleared quantity."""

    def __init__(self, book: Book, fees: GridFees) -> None:
        fees.check_zones(book.zone)
        buys = np.flatnonzero(book.side == BUY).astype(np.int64)
        sells = np.flatnonzero(book.side == SELL).astype(np.int64)
        net = book.price_micro_per_kwh[buys] - fees.worst_fee(book.zone[buys])
        self.buy_rows = _rank(buys, -net)
        self.sell_rows = _rank(sells, book.price_micro_per_kwh[sells])
        self.buy_net = book.price_micro_per_kwh[self.buy_rows] - fees.worst_fee(
            book.zone[self.buy_rows]
        )
        self.sell_ask = book.price_micro_per_kwh[self.sell_rows]
        self.buy_cum = np.cumsum(book.energy_wh[self.buy_rows])
        self.sell_cum = np.cumsum(book.energy_wh[self.sell_rows])
        self.n_buys = _first_false(len(self.buy_rows), self._buy_trades)
        self.n_sells = _first_false(len(self.sell_rows), self._sell_trades)
        self.cleared_wh = (
            min(int(self.buy_cum[self.n_buys - 1]), int(self.sell_cum[self.n_sells - 1]))
            if self.n_buys and self.n_sells
            else 0
        )

    def _buy_trades(self, i: int) -> bool:
        """Does ranked buy i trade: does it outbid the sell covering its first Wh?"""
        start = int(self.buy_cum[i - 1]) if i else 0
        j = int(np.searchsorted(self.sell_cum, start, side="right"))
        return j < len(self.sell_cum) and int(self.buy_net[i]) >= int(self.sell_ask[j])

    def _sell_trades(self, j: int) -> bool:
        start = int(self.sell_cum[j - 1]) if j else 0
        i = int(np.searchsorted(self.buy_cum, start, side="right"))
        return i < len(self.buy_cum) and int(self.buy_net[i]) >= int(self.sell_ask[j])

    def filled_wh(self, n_rows: int) -> Int64Array:
        filled = np.zeros(n_rows, dtype=np.int64)
        for rows, cum, k in (
            (self.buy_rows, self.buy_cum, self.n_buys),
            (self.sell_rows, self.sell_cum, self.n_sells),
        ):
            if k:
                filled[rows[:k]] = np.diff(cum[:k], prepend=0)
                filled[rows[k - 1]] = self.cleared_wh - (int(cum[k - 2]) if k > 1 else 0)
        return filled

    def pairs(self) -> tuple[Int64Array, Int64Array, Int64Array]:
        """(buy rows, sell rows, energy) of each segment of [0, Q] between breakpoints."""
        if self.cleared_wh == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        cuts = np.concatenate((self.buy_cum[: self.n_buys - 1], self.sell_cum[: self.n_sells - 1]))
        cuts.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        if cuts.size > 1:
            cuts = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]
        starts = np.concatenate(([0], cuts)).astype(np.int64)
        ends = np.concatenate((cuts, [self.cleared_wh])).astype(np.int64)
        buy_pos = np.searchsorted(self.buy_cum[: self.n_buys], starts, side="right")
        sell_pos = np.searchsorted(self.sell_cum[: self.n_sells], starts, side="right")
        return self.buy_rows[buy_pos], self.sell_rows[sell_pos], ends - starts


def _clear_sealed(book: Book, fees: GridFees, mechanism: str) -> ClearingResult:
    alloc = _Allocation(book, fees)
    buy_row, sell_row, energy_wh = alloc.pairs()
    fee = fees.pair_fee(book.zone[buy_row], book.zone[sell_row])
    price: int | None = None
    trade_price: Int64Array
    if alloc.cleared_wh:
        if mechanism == UNIFORM:
            marginal_bid = int(alloc.buy_net[alloc.n_buys - 1])
            marginal_ask = int(alloc.sell_ask[alloc.n_sells - 1])
            price = (marginal_bid + marginal_ask) // 2
            trade_price = np.full(buy_row.shape, price, dtype=np.int64)
        else:
            trade_price = book.price_micro_per_kwh[buy_row] - fee
    else:
        trade_price = np.zeros(0, dtype=np.int64)
    return ClearingResult(
        mechanism=mechanism,
        clearing_price_micro_per_kwh=price,
        cleared_energy_wh=alloc.cleared_wh,
        trades=Trades(buy_row, sell_row, energy_wh, trade_price, fee),
        filled_wh=alloc.filled_wh(len(book)),
        book=book,
    )


def clear_uniform_price(
    book: Book,
    grid_fee_micro_per_kwh: int = 0,
    *,
    zone_fee_micro_per_kwh: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Pay-as-clear double auction: every trade at one price (see the module docstring)."""
    fees = GridFees.build(grid_fee_micro_per_kwh, zone_fee_micro_per_kwh)
    return _clear_sealed(book, fees, UNIFORM)


def clear_pay_as_bid(
    book: Book,
    grid_fee_micro_per_kwh: int = 0,
    *,
    zone_fee_micro_per_kwh: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Discriminatory double auction: each buyer pays its bid (fee included)."""
    fees = GridFees.build(grid_fee_micro_per_kwh, zone_fee_micro_per_kwh)
    return _clear_sealed(book, fees, PAY_AS_BID)


def clear(
    book: Book,
    mechanism: str,
    grid_fee_micro_per_kwh: int = 0,
    *,
    zone_fee_micro_per_kwh: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Dispatch on ``mechanism``: "uniform", "pay-as-bid" or "cda"."""
    from gridledger.market.cda import clear_cda

    mechanisms = {UNIFORM: clear_uniform_price, PAY_AS_BID: clear_pay_as_bid, CDA: clear_cda}
    if mechanism not in mechanisms:
        raise ValidationError(
            "mechanism", f"must be one of {sorted(mechanisms)}, got {mechanism!r}"
        )
    return mechanisms[mechanism](
        book, grid_fee_micro_per_kwh, zone_fee_micro_per_kwh=zone_fee_micro_per_kwh
    )
