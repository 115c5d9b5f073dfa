"""Settlement against metered delivery: trades at market prices, the rest with the grid supplier.

For each participant the *contracted* net import is ``bought_wh - sold_wh`` (from the interval's
trades) and the *metered* net import is ``imported_wh - exported_wh`` (from its meters). The
difference is settled with the grid supplier, the buyer and seller of last resort:

- metered above contracted (took more, or delivered less): the participant pays the supplier
  ``diff_wh`` at the import price;
- metered below contracted (took less, or delivered more): the supplier pays the participant
  ``-diff_wh`` at the feed-in price.

Every amount is ``floor(energy_wh * price / 1000)`` and is debited and credited once, so the
deltas sum to zero exactly. A charge larger than the escrow a participant has left after its trades
is cut to that escrow on-chain and the rest is reported as ``unsettled_micro`` (owed off-chain):
the on-chain settlement therefore never fails for lack of funds, and nothing is lost silently.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gridledger.flex._types import Direction
from gridledger.flex.baseline import delivered_flexibility_wh
from gridledger.settlement._netting import SettledTrade, trade_amount_micro


@dataclass(frozen=True)
class Tariffs:
    """The grid supplier's prices, micro-units per kWh."""

    import_price_micro_per_kwh: int
    feed_in_price_micro_per_kwh: int


@dataclass(frozen=True)
class Delivery:
    """What a participant's meters measured over the interval."""

    imported_wh: int
    exported_wh: int

    @property
    def net_import_wh(self) -> int:
        return self.imported_wh - self.exported_wh


@dataclass(frozen=True)
class StatementLine:
    """One line of a participant's interval statement; ``amount_micro`` > 0 is money received."""

    participant: str
    kind: str  # "trade-buy", "trade-sell", "grid-fee", "imbalance-import", "imbalance-export",
    # "flexibility" (paid by the grid operator for delivered flexibility, docs/flexibility.md)
    energy_wh: int
    price_micro_per_kwh: int
    amount_micro: int
    counterparty: str


@dataclass(frozen=True)
class DeliverySettlement:
    """The interval's on-chain deltas, the lines behind them, and what could not be paid."""

    deltas_micro: dict[str, int]
    lines: tuple[StatementLine, ...]
    unsettled_micro: dict[str, int]
    traded_energy_wh: int
    fees_micro: int

    def lines_of(self, participant: str) -> list[StatementLine]:
        return [line for line in self.lines if line.participant == participant]


@dataclass(frozen=True)
class FlexDelivery:
    """An award to settle: delivered = the baseline rule of gridledger.flex.baseline."""

    participant: str
    direction: Direction
    baseline_net_import_wh: int
    awarded_wh: int
    price_micro_per_kwh: int
    curtailed_wh: int = 0


def _flexibility_lines(
    awards: Iterable[FlexDelivery], deliveries: Mapping[str, Delivery], grid_operator: str
) -> list[StatementLine]:
    """The grid operator pays each delivered award at its price (nothing when nothing came)."""
    lines = []
    for a in awards:
        metered = deliveries.get(a.participant, Delivery(0, 0)).net_import_wh
        energy = delivered_flexibility_wh(
            a.direction, a.baseline_net_import_wh, metered, a.awarded_wh, a.curtailed_wh
        )
        if energy:
            amount = trade_amount_micro(energy, a.price_micro_per_kwh)
            lines.append(
                StatementLine(
                    a.participant,
                    "flexibility",
                    energy,
                    a.price_micro_per_kwh,
                    amount,
                    grid_operator,
                )
            )
    return lines


def contracted_net_wh(trades: Iterable[SettledTrade]) -> dict[str, int]:
    net: defaultdict[str, int] = defaultdict(int)
    for t in trades:
        net[t.buyer] += t.energy_wh
        net[t.seller] -= t.energy_wh
    return dict(net)


def _trade_lines(trades: Iterable[SettledTrade], grid_operator: str) -> list[StatementLine]:
    lines = []
    for t in trades:
        amount, fee = t.amount_micro, t.fee_micro
        lines.append(
            StatementLine(
                t.buyer, "trade-buy", t.energy_wh, t.price_micro_per_kwh, -amount, t.seller
            )
        )
        lines.append(
            StatementLine(
                t.seller, "trade-sell", t.energy_wh, t.price_micro_per_kwh, amount, t.buyer
            )
        )
        if fee:
            lines.append(
                StatementLine(
                    t.buyer, "grid-fee", t.energy_wh, t.fee_micro_per_kwh, -fee, grid_operator
                )
            )
    return lines


def _imbalance_line(
    participant: str, diff_wh: int, tariffs: Tariffs, supplier: str
) -> StatementLine | None:
    if diff_wh > 0:
        price = tariffs.import_price_micro_per_kwh
        return StatementLine(
            participant,
            "imbalance-import",
            diff_wh,
            price,
            -trade_amount_micro(diff_wh, price),
            supplier,
        )
    if diff_wh < 0:
        price = tariffs.feed_in_price_micro_per_kwh
        return StatementLine(
            participant,
            "imbalance-export",
            -diff_wh,
            price,
            trade_amount_micro(-diff_wh, price),
            supplier,
        )
    return None


def _cap_charge(line: StatementLine, left_micro: int) -> tuple[StatementLine, int]:
    """Cut a charge to the escrow left; returns the line and the part that was cut."""
    if line.amount_micro >= 0 or -line.amount_micro <= left_micro:
        return line, 0
    capped = dataclasses.replace(line, amount_micro=-left_micro)
    return capped, -line.amount_micro - left_micro


def settle_with_delivery(
    trades: Iterable[SettledTrade],
    deliveries: Mapping[str, Delivery],
    tariffs: Tariffs,
    *,
    grid_operator: str,
    supplier: str,
    escrow_micro: Mapping[str, int] | None = None,
    flexibility: Iterable[FlexDelivery] = (),
) -> DeliverySettlement:
    """Settle one interval: trades, grid fees, and each participant's imbalance with the supplier.

    ``escrow_micro`` (optional) is each participant's escrow before the interval; imbalance charges
    beyond what is left after the trades are cut and reported in ``unsettled_micro``.
    ``flexibility``: the interval's awards; the grid operator pays what was delivered.
    """
    trades = list(trades)
    flex_lines = _flexibility_lines(flexibility, deliveries, grid_operator)
    lines = _trade_lines(trades, grid_operator) + flex_lines
    contracted = contracted_net_wh(trades)
    deltas: defaultdict[str, int] = defaultdict(int)
    for line in lines:
        deltas[line.participant] += line.amount_micro
    deltas[grid_operator] += sum(t.fee_micro for t in trades)
    deltas[grid_operator] -= sum(line.amount_micro for line in flex_lines)
    unsettled: dict[str, int] = {}
    for participant in sorted(set(deliveries) | set(contracted)):
        delivery = deliveries.get(participant, Delivery(0, 0))
        diff_wh = delivery.net_import_wh - contracted.get(participant, 0)
        imbalance = _imbalance_line(participant, diff_wh, tariffs, supplier)
        if imbalance is None:
            continue
        line = imbalance
        if escrow_micro is not None:
            left_micro = max(escrow_micro.get(participant, 0) + deltas[participant], 0)
            line, cut_micro = _cap_charge(line, left_micro)
            if cut_micro:
                unsettled[participant] = cut_micro
        lines.append(line)
        deltas[participant] += line.amount_micro
        deltas[supplier] -= line.amount_micro
    netted = {a: d for a, d in sorted(deltas.items()) if d != 0}
    if sum(netted.values()) != 0:  # pragma: no cover - impossible by construction
        raise AssertionError("settlement deltas do not sum to zero")
    return DeliverySettlement(
        netted,
        tuple(lines),
        unsettled,
        sum(t.energy_wh for t in trades),
        sum(t.fee_micro for t in trades),
    )
