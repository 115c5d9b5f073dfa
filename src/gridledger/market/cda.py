"""Continuous double auction: orders match on arrival, price-time priority.

Orders are replayed in arrival order (``Book.sequence``, ties by id). An incoming order trades
against the best resting opposite order while they cross, at the resting order's price: a
resting sell is paid its ask (the buyer adds the grid fee); a resting buy pays its bid, fee
included, so its seller receives the bid minus the fee. "Best" means the best price after the
pair's grid fee, then the earliest arrival, then the lowest id. Whatever is left rests.

This is inherently sequential, so it runs in Python with one heap per zone and side; the
sealed-bid auctions in :mod:`gridledger.market.clearing` are the fast path.
"""

from __future__ import annotations

import heapq

import numpy as np
import numpy.typing as npt

from gridledger.market.book import Book
from gridledger.market.fees import GridFees
from gridledger.market.orders import BUY
from gridledger.market.result import ClearingResult, Trades

# A resting entry: (priority price, sequence, id, row); buys store the negated bid.
_Entry = tuple[int, int, int, int]


class _Replay:
    def __init__(self, book: Book, fees: GridFees) -> None:
        self.book = book
        self.fees = fees
        n_zones = fees.n_zones or (int(book.zone.max()) + 1 if len(book) else 1)
        self.resting: dict[int, list[list[_Entry]]] = {
            0: [[] for _ in range(n_zones)],
            1: [[] for _ in range(n_zones)],
        }
        self.remaining = book.energy_wh.astype(np.int64).tolist()
        self.prices = book.price_micro_per_kwh.tolist()
        self.zones = book.zone.tolist()
        self.trades: list[tuple[int, int, int, int, int]] = []

    def fee(self, buyer_zone: int, seller_zone: int) -> int:
        m = self.fees.zone_matrix_micro_per_kwh
        extra = 0 if m is None else int(m[buyer_zone, seller_zone])
        return self.fees.flat_micro_per_kwh + extra

    def best_resting(self, row: int, incoming_side: int) -> tuple[_Entry, int, int] | None:
        """The best crossing resting entry for ``row``: (entry, zone, fee), or None."""
        zone = self.zones[row]
        best: tuple[tuple[int, int, int], _Entry, int, int] | None = None
        for other_zone, heap in enumerate(self.resting[1 - incoming_side]):
            if not heap:
                continue
            top = heap[0]
            if incoming_side == BUY:
                fee = self.fee(zone, other_zone)
                cost = top[0] + fee  # ask plus fee: what this buyer would pay
                crosses = self.prices[row] >= cost
            else:
                fee = self.fee(other_zone, zone)
                cost = top[0] + fee  # -(bid - fee): minus what this seller would receive
                crosses = -cost >= self.prices[row]
            rank = (cost, top[1], top[2])
            if crosses and (best is None or rank < best[0]):
                best = (rank, top, other_zone, fee)
        return None if best is None else (best[1], best[2], best[3])

    def arrive(self, row: int) -> None:
        side = int(self.book.side[row])
        while self.remaining[row] > 0:
            found = self.best_resting(row, side)
            if found is None:
                break
            entry, other_zone, fee = found
            other = entry[3]
            energy = min(self.remaining[row], self.remaining[other])
            self.remaining[row] -= energy
            self.remaining[other] -= energy
            if side == BUY:
                self.trades.append((row, other, energy, self.prices[other], fee))
            else:
                self.trades.append((other, row, energy, self.prices[other] - fee, fee))
            if self.remaining[other] == 0:
                heapq.heappop(self.resting[1 - side][other_zone])
        if self.remaining[row] > 0:
            key = -self.prices[row] if side == BUY else self.prices[row]
            entry = (key, int(self.book.sequence[row]), int(self.book.ids[row]), row)
            heapq.heappush(self.resting[side][self.zones[row]], entry)


def clear_cda(
    book: Book,
    grid_fee_micro_per_kwh: int = 0,
    *,
    zone_fee_micro_per_kwh: npt.ArrayLike | None = None,
) -> ClearingResult:
    """Replay the book as a continuous double auction (see the module docstring)."""
    fees = GridFees.build(grid_fee_micro_per_kwh, zone_fee_micro_per_kwh)
    fees.check_zones(book.zone)
    replay = _Replay(book, fees)
    for row in np.lexsort((book.ids, book.sequence)).tolist():
        replay.arrive(int(row))
    columns = np.array(replay.trades, dtype=np.int64).reshape(-1, 5).T
    trades = Trades(*(np.ascontiguousarray(c) for c in columns))
    filled = book.energy_wh - np.array(replay.remaining, dtype=np.int64)
    return ClearingResult(
        mechanism="cda",
        clearing_price_micro_per_kwh=None,
        cleared_energy_wh=int(trades.energy_wh.sum()),
        trades=trades,
        filled_wh=filled,
        book=book,
    )
