"""What a clearing mechanism returns: bilateral trades plus per-order fills."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.market.book import Book

Int64Array = npt.NDArray[np.int64]
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Trades:
    """Parallel columns, one row per (buy order, sell order) pairing.

    The seller receives ``price_micro_per_kwh``; the buyer pays that plus ``fee_micro_per_kwh``,
    which goes to the grid operator. Rows index into the book (``Book.ids[buy_row]`` is the id).
    """

    buy_row: Int64Array
    sell_row: Int64Array
    energy_wh: Int64Array
    price_micro_per_kwh: Int64Array
    fee_micro_per_kwh: Int64Array

    def __len__(self) -> int:
        return int(self.buy_row.shape[0])

    @classmethod
    def empty(cls) -> Trades:
        return cls(_EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY)


@dataclass(frozen=True, eq=False)
class ClearingResult:
    mechanism: str
    clearing_price_micro_per_kwh: int | None  # None when nothing cleared or prices differ per trade
    cleared_energy_wh: int
    trades: Trades
    filled_wh: Int64Array  # per book row
    book: Book

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (ids, not rows; names when the book's ids were words)."""
        labels = self.book.labels
        ids: Any = self.book.ids if labels is None else np.asarray(labels, dtype=object)
        t = self.trades
        return {
            "mechanism": self.mechanism,
            "clearing_price_micro_per_kwh": self.clearing_price_micro_per_kwh,
            "cleared_energy_wh": self.cleared_energy_wh,
            "n_orders": len(self.book),
            "n_trades": len(t),
            "trades": [
                {
                    "buy_id": _json_id(b),
                    "sell_id": _json_id(s),
                    "energy_wh": int(e),
                    "price_micro_per_kwh": int(p),
                    "fee_micro_per_kwh": int(f),
                }
                for b, s, e, p, f in zip(
                    ids[t.buy_row],
                    ids[t.sell_row],
                    t.energy_wh,
                    t.price_micro_per_kwh,
                    t.fee_micro_per_kwh,
                    strict=True,
                )
            ],
            "filled_wh": {
                _json_id(i): int(f) for i, f in zip(ids, self.filled_wh, strict=True) if f
            },
        }


def _json_id(value: Any) -> int | str:
    return value if isinstance(value, str) else int(value)
