"""Independent check of a published interval: recompute the clearing and both roots.

Anyone holding the published orders and result lines can run this; it needs no store and no
chain, only the roots read from the Market contract.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy.typing as npt

from gridledger.market.book import Book
from gridledger.market.clearing import clear
from gridledger.market.commitments import TradeLine, lines_root, result_lines
from gridledger.market.orders import Order
from gridledger.privacy.salts import LeafKey


@dataclass(frozen=True)
class VerificationReport:
    orders_root_ok: bool
    result_root_ok: bool  # the recomputed result hashes to the committed root
    published_result_ok: bool  # the published lines are exactly the recomputed ones
    recomputed_orders_root: bytes
    recomputed_result_root: bytes
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.orders_root_ok and self.result_root_ok and self.published_result_ok


def verify_interval(
    published_orders: Sequence[Order],
    published_result: Sequence[TradeLine],
    orders_root: bytes,
    result_root: bytes,
    mechanism: str,
    *,
    leaf_key: LeafKey,
    grid_fee_micro_per_kwh: int = 0,
    zone_of: Mapping[str, int] | None = None,
    zone_fee_micro_per_kwh: npt.ArrayLike | None = None,
) -> VerificationReport:
    """Recompute the clearing from ``published_orders`` (in arrival order, which only the
    continuous double auction uses) and compare with the published lines and both roots.
    Rebuilding the roots needs the operator's ``leaf_key`` (verifiers hold it)."""
    from gridledger.market import commitments

    book = Book.from_orders(published_orders, zone_of)
    result = clear(
        book, mechanism, grid_fee_micro_per_kwh, zone_fee_micro_per_kwh=zone_fee_micro_per_kwh
    )
    recomputed = result_lines(result)
    new_orders_root = commitments.orders_root(published_orders, leaf_key)
    new_result_root = lines_root(recomputed, leaf_key)
    problems = []
    if new_orders_root != orders_root:
        problems.append("orders root differs from the published orders")
    if new_result_root != result_root:
        problems.append("result root differs from the recomputed clearing")
    missing = Counter(recomputed) - Counter(published_result)
    extra = Counter(published_result) - Counter(recomputed)
    if missing or extra:
        problems.append(
            f"published lines differ: {sum(missing.values())} missing, {sum(extra.values())} extra"
        )
    return VerificationReport(
        orders_root_ok=new_orders_root == orders_root,
        result_root_ok=new_result_root == result_root,
        published_result_ok=not (missing or extra),
        recomputed_orders_root=new_orders_root,
        recomputed_result_root=new_result_root,
        problems=tuple(problems),
    )
