"""Netting of one interval's trades into one movement per participant.

Rounding rule: the money of a trade is ``floor(energy_wh * price_micro_per_kwh / 1000)``
micro-units, computed once per trade and used for both sides, and likewise for the grid fee.
Because each amount is debited and credited exactly once, the deltas of an interval always sum
to zero: no unit is created or lost, whatever the rounding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

WH_PER_KWH = 1000


@dataclass(frozen=True)
class SettledTrade:
    """One matched quantity: the buyer pays the seller, and the grid fee to the grid operator."""

    buyer: str
    seller: str
    energy_wh: int
    price_micro_per_kwh: int
    fee_micro_per_kwh: int = 0

    @property
    def amount_micro(self) -> int:
        return trade_amount_micro(self.energy_wh, self.price_micro_per_kwh)

    @property
    def fee_micro(self) -> int:
        return trade_amount_micro(self.energy_wh, self.fee_micro_per_kwh)


@dataclass(frozen=True)
class IntervalSettlement:
    """Net movement per participant (micro-units; negative = pays) and the totals behind it."""

    deltas_micro: Mapping[str, int]
    traded_energy_wh: int
    paid_to_sellers_micro: int
    fees_micro: int

    @property
    def moved_micro(self) -> int:
        return sum(d for d in self.deltas_micro.values() if d > 0)


def trade_amount_micro(energy_wh: int, price_micro_per_kwh: int) -> int:
    """Money for ``energy_wh`` at ``price_micro_per_kwh``, floored to a whole micro-unit."""
    if energy_wh < 0 or price_micro_per_kwh < 0:
        raise ValueError("energy_wh and price_micro_per_kwh must not be negative")
    return energy_wh * price_micro_per_kwh // WH_PER_KWH


def net_interval(trades: Iterable[SettledTrade], grid_operator: str) -> IntervalSettlement:
    """Net all trades of one interval; participants whose net is zero are left out."""
    deltas: defaultdict[str, int] = defaultdict(int)
    energy_wh = paid_micro = fees_micro = 0
    for trade in trades:
        amount, fee = trade.amount_micro, trade.fee_micro
        deltas[trade.buyer] -= amount + fee
        deltas[trade.seller] += amount
        deltas[grid_operator] += fee
        energy_wh += trade.energy_wh
        paid_micro += amount
        fees_micro += fee
    netted = {account: delta for account, delta in sorted(deltas.items()) if delta != 0}
    if sum(netted.values()) != 0:  # pragma: no cover - impossible by construction
        raise AssertionError("settlement deltas do not sum to zero")
    return IntervalSettlement(netted, energy_wh, paid_micro, fees_micro)
