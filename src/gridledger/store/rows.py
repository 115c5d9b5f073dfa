"""Typed, frozen rows the store returns and accepts: one dataclass per table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridledger.metering.reading import Reading, SignedReading

IntervalStatus = Literal["open", "cleared", "committed", "settled"]
InsertStatus = Literal["accepted", "duplicate", "replay", "late"]


@dataclass(frozen=True, slots=True)
class Participant:
    address: str
    role: str  # "prosumer", "consumer", "producer", "operator", ...
    grid_node: int
    label: str = ""
    active: bool = True


@dataclass(frozen=True, slots=True)
class Meter:
    address: str
    owner: str
    rated_power_w: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A reading as stored, with its row id, signature (0x-hex) and arrival time."""

    id: int
    reading: Reading
    signature: str
    received_at_s: int

    @property
    def signed(self) -> SignedReading:
        return SignedReading(self.reading, bytes.fromhex(self.signature[2:]))


@dataclass(frozen=True, slots=True)
class InsertOutcome:
    """What the store did with one reading of a batch; ``reading_id`` is the stored row."""

    status: InsertStatus
    reading_id: int | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderRow:
    """A verified order; ``id`` is None until stored."""

    interval_start_s: int
    participant: str
    side: str  # "buy" | "sell"
    energy_wh: int
    price_micro_per_kwh: int
    nonce: int
    signature: str
    status: str = "accepted"
    id: int | None = None


@dataclass(frozen=True, slots=True)
class IntervalRow:
    interval_start_s: int
    status: IntervalStatus = "open"
    clearing_price_micro_per_kwh: int | None = None
    cleared_energy_wh: int = 0
    orders_root: str | None = None
    result_root: str | None = None
    readings_root: str | None = None
    commit_tx: str | None = None
    settle_tx: str | None = None
    gas_used: int | None = None


@dataclass(frozen=True, slots=True)
class TradeRow:
    interval_start_s: int
    buyer: str
    seller: str
    energy_wh: int
    price_micro_per_kwh: int
    fee_micro: int
    id: int | None = None
    buy_nonce: int = 0
    sell_nonce: int = 0
    fee_micro_per_kwh: int = 0


@dataclass(frozen=True, slots=True)
class SettlementRow:
    interval_start_s: int
    participant: str
    delta_micro: int


@dataclass(frozen=True, slots=True)
class AnchorRow:
    interval_start_s: int
    readings_root: str
    tx_hash: str | None
    status: Literal["pending", "mined"]


@dataclass(frozen=True, slots=True)
class StatementLineRow:
    """One settled line of a participant's statement; ``amount_micro`` > 0 is money received."""

    interval_start_s: int
    participant: str
    kind: str
    energy_wh: int
    price_micro_per_kwh: int
    amount_micro: int
    counterparty: str
    id: int | None = None


@dataclass(frozen=True, slots=True)
class SettlementPlanRow:
    """An interval's settlement as planned before it was sent (``body`` is JSON)."""

    interval_start_s: int
    root_seq: int | None  # the netting root it becomes; None on the direct batch path
    body: str


@dataclass(frozen=True, slots=True)
class NettingRootRow:
    """A netting root the Market holds (``root`` 0x-hex; credits == debits)."""

    root_seq: int
    interval_start_s: int
    root: str
    credits_micro: int
    account_count: int
    settle_tx: str | None = None
