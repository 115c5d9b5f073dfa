"""The run's settlement: every interval through settle_with_delivery, in a worker or in-process."""

from __future__ import annotations

import numpy as np

from gridledger.settlement import Delivery, SettledTrade, Tariffs, settle_with_delivery
from gridledger.sim.settling import (
    PARALLEL_FROM_INTERVALS,
    IntervalBooking,
    SettlementRules,
    Settler,
)

RULES = SettlementRules(
    tuple(f"household-{i:02d}" for i in range(12)), Tariffs(300_000, 80_000), "operator", "supplier"
)


def _bookings(n: int, seed: int = 0) -> list[IntervalBooking]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        rows = np.sort(rng.permutation(12)[: rng.integers(2, 12)]).astype(np.int64)
        is_buy = rng.random(rows.size) < 0.5
        is_buy[0], is_buy[-1] = True, False
        energy = rng.integers(1, 900, rows.size).astype(np.int64)
        k = int(rng.integers(0, 3))
        out.append(
            IntervalBooking(
                rows=rows,
                is_buy=is_buy,
                delivered_wh=energy,
                buy_rows=np.full(k, rows[0], dtype=np.int64),
                sell_rows=np.full(k, rows[-1], dtype=np.int64),
                energy_wh=np.full(k, 1, dtype=np.int64),
                price_micro_per_kwh=rng.integers(80_000, 300_001, k).astype(np.int64),
                fee_micro_per_kwh=np.full(k, 20_000, dtype=np.int64),
            )
        )
    return out


def _one_by_one(bookings: list[IntervalBooking]) -> tuple[list[int], int]:
    names, bills, fees = RULES.names, [0] * 12, 0
    for b in bookings:
        trades = [
            SettledTrade(names[s], names[t], int(e), int(p), int(f))
            for s, t, e, p, f in zip(
                b.buy_rows,
                b.sell_rows,
                b.energy_wh,
                b.price_micro_per_kwh,
                b.fee_micro_per_kwh,
                strict=True,
            )
        ]
        deliveries = {
            names[r]: Delivery(int(e), 0) if buy else Delivery(0, int(e))
            for r, buy, e in zip(b.rows, b.is_buy, b.delivered_wh, strict=True)
        }
        settled = settle_with_delivery(
            trades, deliveries, RULES.tariffs, grid_operator="operator", supplier="supplier"
        )
        for row, name in enumerate(names):
            bills[row] -= settled.deltas_micro.get(name, 0)
        fees += settled.fees_micro
    return bills, fees


def test_a_worker_and_in_process_settle_to_the_same_bills_as_one_call_per_interval() -> None:
    bookings = _bookings(300)
    expected = _one_by_one(bookings)
    for n_intervals in (len(bookings), PARALLEL_FROM_INTERVALS):  # in-process, then a worker
        settler = Settler(RULES, n_intervals)
        for booking in bookings:
            settler.add(booking)
        bills, fees = settler.totals()
        assert (bills.tolist(), fees) == expected
    assert expected[1] > 0 and any(expected[0])
