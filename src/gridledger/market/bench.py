"""Benchmark of the uniform-price clearing against numpy's bare argsort of the same prices.

Sorting is the floor for any merit-order auction, so the ratio to ``np.argsort`` says how much
the clearing adds on top. Optionally times pymarket's Huang double auction (the independent
baseline: its supply/demand crossing is the same curve intersection) on a smaller book.
"""

from __future__ import annotations

import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from gridledger.market.book import Book
from gridledger.market.clearing import clear_uniform_price

GRID_FEE_MICRO_PER_KWH = 20_000


def random_book(n_orders: int, seed: int) -> Book:
    """Half buys, half sells, 1 Wh..10 kWh, prices around a 0.15-0.30 per kWh market."""
    rng = np.random.default_rng(seed)
    side = rng.integers(0, 2, n_orders, dtype=np.int64)
    energy_wh = rng.integers(1, 10_001, n_orders, dtype=np.int64)
    buy_price = rng.integers(100_000, 400_001, n_orders, dtype=np.int64)
    sell_price = rng.integers(50_000, 300_001, n_orders, dtype=np.int64)
    price = np.where(side == 0, buy_price, sell_price)
    return Book.from_arrays(np.arange(n_orders, dtype=np.int64), side, energy_wh, price)


def _best_time_s(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_traced_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_pymarket(n_orders: int, seed: int) -> dict[str, Any]:
    """Time pymarket's Huang auction and ours on the same n orders (pymarket must be installed)."""
    import warnings

    import pymarket

    book = random_book(n_orders, seed)
    manager = pymarket.BidManager()
    for row in range(n_orders):
        manager.add_bid(
            int(book.energy_wh[row]),
            int(book.price_micro_per_kwh[row]),
            row,
            bool(book.side[row] == 0),
        )
    bids = manager.get_df()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pymarket_s = _best_time_s(lambda: pymarket.huang_auction(bids), 1)
    ours_s = _best_time_s(lambda: clear_uniform_price(book), 5)
    return {
        "orders": n_orders,
        "mechanism": "pymarket huang_auction vs clear_uniform_price",
        "pymarket_version": getattr(pymarket, "__version__", "unknown"),
        "pymarket_s": pymarket_s,
        "ours_s": ours_s,
        "speedup": pymarket_s / ours_s,
    }


def bench_market(
    n_orders: int, seed: int = 0, *, repeats: int = 3, pymarket_orders: int | None = None
) -> dict[str, Any]:
    """Time ``clear_uniform_price`` on ``n_orders`` random orders against ``np.argsort``.

    Returns seconds (best of ``repeats``), their ratio, the clearing's peak traced allocation
    (tracemalloc, in a separate untimed run) and the process's peak RSS. With
    ``pymarket_orders`` set, adds a ``pymarket`` entry (see :func:`bench_pymarket`).
    """
    book = random_book(n_orders, seed)
    prices = book.price_micro_per_kwh

    def clear_once() -> object:
        return clear_uniform_price(book, GRID_FEE_MICRO_PER_KWH)

    result = clear_uniform_price(book, GRID_FEE_MICRO_PER_KWH)
    clear_s = _best_time_s(clear_once, repeats)
    argsort_s = _best_time_s(lambda: np.argsort(prices), repeats)
    report: dict[str, Any] = {
        "orders": n_orders,
        "seed": seed,
        "clear_uniform_s": clear_s,
        "argsort_s": argsort_s,
        "ratio_to_argsort": clear_s / argsort_s if argsort_s else None,
        "trades": len(result.trades),
        "cleared_energy_wh": result.cleared_energy_wh,
        "clearing_price_micro_per_kwh": result.clearing_price_micro_per_kwh,
        "clear_peak_traced_bytes": _peak_traced_bytes(clear_once),
        "book_bytes": sum(
            col.nbytes
            for col in (book.ids, book.side, book.energy_wh, prices, book.zone, book.sequence)
        ),
        "process_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    if pymarket_orders:
        report["pymarket"] = bench_pymarket(pymarket_orders, seed)
    return report
