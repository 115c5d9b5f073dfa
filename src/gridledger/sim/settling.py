"""Settling a run's intervals with :func:`gridledger.settlement.settle_with_delivery`, off the loop.

Nothing the market does depends on the bills, so a long run hands each interval's trades and
deliveries (as compact arrays) to :class:`Settler`, which settles them in chunks, in a worker
process when there are enough of them (one core markets, the other settles) and in-process
otherwise. Either way every interval goes through the same ``settle_with_delivery`` call; only
the per-household bill totals and the grid fees come back.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.settlement import (
    Delivery,
    FlexDelivery,
    SettledTrade,
    Tariffs,
    settle_with_delivery,
)

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
CHUNK_INTERVALS = 2_000
PARALLEL_FROM_INTERVALS = 8_000  # shorter runs settle in-process (a worker takes ~1 s to start)


@dataclass(frozen=True, eq=False)
class IntervalBooking:
    """One interval's orders (household rows) and trades, as arrays."""

    rows: Int64Array
    is_buy: BoolArray
    delivered_wh: Int64Array
    buy_rows: Int64Array
    sell_rows: Int64Array
    energy_wh: Int64Array
    price_micro_per_kwh: Int64Array
    fee_micro_per_kwh: Int64Array
    flexibility: tuple[FlexDelivery, ...] = ()  # the interval's flexibility awards


@dataclass(frozen=True)
class SettlementRules:
    names: tuple[str, ...]
    tariffs: Tariffs
    grid_operator: str
    supplier: str


def settle_chunk(
    rules: SettlementRules, bookings: Sequence[IntervalBooking]
) -> tuple[Int64Array, int, int, int]:
    """Each interval settled against delivery: bill changes, grid fees, flexibility paid and
    delivered (Wh)."""
    names = rules.names
    index_of = {name: row for row, name in enumerate(names)}
    bills = np.zeros(len(names), dtype=np.int64)
    fees = flex_paid = flex_wh = 0
    for b in bookings:
        trades = [
            SettledTrade(names[buyer], names[seller], e, p, f)
            for buyer, seller, e, p, f in zip(
                b.buy_rows.tolist(),
                b.sell_rows.tolist(),
                b.energy_wh.tolist(),
                b.price_micro_per_kwh.tolist(),
                b.fee_micro_per_kwh.tolist(),
                strict=True,
            )
        ]
        deliveries = {
            names[row]: Delivery(energy, 0) if buy else Delivery(0, energy)
            for row, buy, energy in zip(
                b.rows.tolist(), b.is_buy.tolist(), b.delivered_wh.tolist(), strict=True
            )
        }
        settled = settle_with_delivery(
            trades,
            deliveries,
            rules.tariffs,
            grid_operator=rules.grid_operator,
            supplier=rules.supplier,
            flexibility=b.flexibility,
        )
        flex = [x for x in settled.lines if x.kind == "flexibility"]
        flex_paid += sum(x.amount_micro for x in flex)
        flex_wh += sum(x.energy_wh for x in flex)
        for account, delta in settled.deltas_micro.items():
            row = index_of.get(account)
            if row is not None:
                bills[row] -= delta  # a bill is what the household pays
        fees += settled.fees_micro
    return bills, fees, flex_paid, flex_wh


class Settler:
    """Collects bookings and settles them in chunks; :meth:`totals` waits for all of them."""

    def __init__(self, rules: SettlementRules, n_intervals: int) -> None:
        self._rules = rules
        self._pending: list[IntervalBooking] = []
        self._bills = np.zeros(len(rules.names), dtype=np.int64)
        self._fees = 0
        self.flexibility_paid_micro = 0  # by the grid operator, over every interval settled
        self.flexibility_delivered_wh = 0
        self._futures: list[Future[tuple[Int64Array, int, int, int]]] = []
        self._pool = (
            # fork: the worker starts with everything imported (spawn re-imports for seconds)
            ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
            if n_intervals >= PARALLEL_FROM_INTERVALS
            else None
        )

    def add(self, booking: IntervalBooking) -> None:
        self._pending.append(booking)
        if len(self._pending) >= CHUNK_INTERVALS:
            self._flush()

    def _flush(self) -> None:
        chunk, self._pending = self._pending, []
        if not chunk:
            return
        if self._pool is None:
            self._book(settle_chunk(self._rules, chunk))
        else:
            self._futures.append(self._pool.submit(settle_chunk, self._rules, chunk))

    def _book(self, result: tuple[Int64Array, int, int, int]) -> None:
        self._bills += result[0]
        self._fees += result[1]
        self.flexibility_paid_micro += result[2]
        self.flexibility_delivered_wh += result[3]

    def totals(self) -> tuple[Int64Array, int]:
        """Bill change per household and grid fees over every interval added."""
        self._flush()
        try:
            for future in self._futures:
                self._book(future.result())
        finally:
            self.close()
        self._futures = []
        return self._bills.copy(), self._fees

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
