"""The order book of one interval as int64 numpy columns, the input of every clearing mechanism.

Rows are kept sorted by ``ids`` (unique): the id is the canonical tie-breaker, so two books
holding the same orders are identical whatever order the orders arrived in. ``sequence`` keeps
the arrival order for the continuous double auction, the only mechanism that uses it.

Offline, ids may be words (``Book.from_arrays(["alice", "bob"], ["buy", "sell"], ...)``): rows
are then sorted by those names, ``labels`` keeps them and trades are reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.market.orders import BUY, SELL, SIDE_CODES, Order

Int64Array = npt.NDArray[np.int64]

# Caps keep every product energy × price and every cumulative sum inside int64.
MAX_ENERGY_WH = 10**12  # 1 TWh
MAX_PRICE_MICRO_PER_KWH = 10**12  # a million units per kWh


@dataclass(frozen=True, eq=False)
class Book:
    """Columns of equal length, sorted by ``ids``; ``orders`` is set when built from orders."""

    ids: Int64Array
    side: Int64Array  # 0 = buy, 1 = sell
    energy_wh: Int64Array
    price_micro_per_kwh: Int64Array
    zone: Int64Array
    sequence: Int64Array
    orders: tuple[Order, ...] | None = None
    labels: tuple[str, ...] | None = None  # the name of each row, when ids were given as words

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def names(self, rows: npt.ArrayLike) -> list[str]:
        """What people call the given rows: their label, else their participant, else the id."""
        picked = np.asarray(rows, dtype=np.int64).tolist()
        if self.labels is not None:
            return [self.labels[r] for r in picked]
        if self.orders is not None:
            return [self.orders[r].participant for r in picked]
        return [str(int(self.ids[r])) for r in picked]

    @property
    def n_buys(self) -> int:
        return int(np.count_nonzero(self.side == BUY))

    @classmethod
    def from_arrays(
        cls,
        ids: npt.ArrayLike,
        side: npt.ArrayLike,
        energy_wh: npt.ArrayLike,
        price_micro_per_kwh: npt.ArrayLike,
        zone: npt.ArrayLike | None = None,
        sequence: npt.ArrayLike | None = None,
    ) -> Book:
        """Validate the columns and sort rows by id; ``sequence`` defaults to the given order.

        ``ids`` may be words (unique names, kept as ``labels``) and ``side`` may be ``"buy"`` /
        ``"sell"`` as well as 0 / 1.
        """
        labels = _labels(ids)
        if labels is not None:
            ids = _ranks(labels)
        cols = {
            "ids": _int64("ids", ids),
            "side": _int64("side", _side_codes(side)),
            "energy_wh": _int64("energy_wh", energy_wh),
            "price_micro_per_kwh": _int64("price_micro_per_kwh", price_micro_per_kwh),
        }
        n = cols["ids"].shape[0]
        cols["zone"] = np.zeros(n, np.int64) if zone is None else _int64("zone", zone)
        cols["sequence"] = (
            np.arange(n, dtype=np.int64) if sequence is None else _int64("sequence", sequence)
        )
        _check_columns(cols, n)
        if n > 1 and not bool(np.all(cols["ids"][1:] > cols["ids"][:-1])):
            order = np.argsort(cols["ids"], kind="stable")
            cols = {name: col[order] for name, col in cols.items()}
            if bool(np.any(cols["ids"][1:] == cols["ids"][:-1])):
                dup = int(cols["ids"][1:][cols["ids"][1:] == cols["ids"][:-1]][0])
                raise ValidationError("ids", f"must be unique, {dup} appears twice")
        return cls(
            cols["ids"],
            cols["side"],
            cols["energy_wh"],
            cols["price_micro_per_kwh"],
            cols["zone"],
            cols["sequence"],
            labels=None if labels is None else tuple(sorted(labels)),
        )

    @classmethod
    def from_orders(cls, orders: Sequence[Order], zone_of: Mapping[str, int] | None = None) -> Book:
        """A book over verified orders, given in arrival order.

        Rows are sorted by the orders' EIP-712 struct hash and ids are their rank in that order,
        so the id tie-break is the order hash and never the arrival order.
        """
        offline = any(o.is_offline for o in orders)  # plain ids cannot be hashed: sort by value
        hashes: list[Any] = [
            (o.participant, o.side, o.energy_wh, o.price_micro_per_kwh, o.nonce)
            if offline
            else o.struct_hash()
            for o in orders
        ]
        if len(set(hashes)) != len(hashes):
            raise ValidationError("orders", "the same order appears twice")
        by_hash = sorted(range(len(orders)), key=hashes.__getitem__)
        ranked = tuple(orders[i] for i in by_hash)
        zones = zone_of or {}
        book = cls.from_arrays(
            ids=np.arange(len(ranked), dtype=np.int64),
            side=[o.side_code for o in ranked],
            energy_wh=[o.energy_wh for o in ranked],
            price_micro_per_kwh=[o.price_micro_per_kwh for o in ranked],
            zone=[zones.get(o.participant, 0) for o in ranked],
            sequence=by_hash,
        )
        return cls(
            book.ids,
            book.side,
            book.energy_wh,
            book.price_micro_per_kwh,
            book.zone,
            book.sequence,
            ranked,
        )


def _labels(ids: npt.ArrayLike) -> list[str] | None:
    """The ids as names when they are words (strings), else None."""
    array = np.asarray(ids)
    if array.dtype.kind not in "OUS" or array.ndim != 1 or not array.size:
        return None
    raw = array.tolist()
    if not all(isinstance(v, str) for v in raw):
        return None
    values: list[str] = raw
    seen: set[str] = set()
    for row, name in enumerate(values):
        if not name.strip():
            raise ValidationError("ids", f"an empty name at row {row}")
        if name in seen:
            raise ValidationError("ids", f"must be unique, {name!r} appears twice")
        seen.add(name)
    return values


def _ranks(labels: Sequence[str]) -> list[int]:
    order = {name: rank for rank, name in enumerate(sorted(labels))}
    return [order[name] for name in labels]


def _side_codes(side: npt.ArrayLike) -> npt.ArrayLike:
    """``"buy"`` / ``"sell"`` (any case) as 0 / 1; numbers pass through to be checked."""
    values = np.asarray(side)
    if values.dtype.kind not in "OUS":
        return side
    codes = []
    for row, word in enumerate(values.tolist()):
        code = SIDE_CODES.get(str(word).strip().lower())
        if code is None:
            raise ValidationError("side", f"must be 'buy' or 'sell', got {word!r} at row {row}")
        codes.append(code)
    return codes


def _int64(name: str, values: npt.ArrayLike) -> Int64Array:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValidationError(name, f"must be one-dimensional, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValidationError(name, f"must hold integers, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _check_columns(cols: Mapping[str, Int64Array], n: int) -> None:
    for name, col in cols.items():
        if col.shape[0] != n:
            raise ValidationError(name, f"has {col.shape[0]} rows, ids has {n}")
    if n == 0:
        return
    checks = (
        ("side", (cols["side"] != BUY) & (cols["side"] != SELL), "must be 0 (buy) or 1 (sell)"),
        (
            "energy_wh",
            (cols["energy_wh"] <= 0) | (cols["energy_wh"] > MAX_ENERGY_WH),
            f"must be in 1..{MAX_ENERGY_WH}",
        ),
        (
            "price_micro_per_kwh",
            (cols["price_micro_per_kwh"] < 0)
            | (cols["price_micro_per_kwh"] > MAX_PRICE_MICRO_PER_KWH),
            f"must be in 0..{MAX_PRICE_MICRO_PER_KWH}",
        ),
        ("zone", cols["zone"] < 0, "must not be negative"),
    )
    for name, bad, reason in checks:
        if bool(bad.any()):
            row = int(np.argmax(bad))
            raise ValidationError(name, f"{reason}, got {int(cols[name][row])} at row {row}")
