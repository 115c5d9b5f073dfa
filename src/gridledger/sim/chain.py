"""Scenario runs on a chain: record each simulated interval on an EVM (``chain = "memory"``).

An edge module (it imports :mod:`gridledger.ledger`); the scenario runner stays pure and calls
:meth:`LedgerRecorder.record` through its ``IntervalRecorder`` hook. Households get deterministic
keys, a registry entry and escrow the first time they appear; each interval is committed with its
clearing price and volume and settled with the runner's netted deltas.

An interval with flexibility awards is committed in full instead, so its awards can be paid and
proven (docs/flexibility.md): the result root is the combined root of its trade leaves and award
leaves (:func:`gridledger.flex.commitments.combined_root`), the readings root covers each
household's metered delivery, and the chain settles what ``settle_with_delivery`` gives (trades,
grid fees, imbalance with the supplier, flexibility paid by the grid operator).
:func:`flex_statement` then builds a household's statement of those intervals and
:func:`verify_flex_statement` checks it against the roots and deltas read back from the ledger.
A simulated household places at most one energy order and is awarded at most one flexibility
offer per interval, so their nonces are ``2 * interval`` and ``2 * interval + 1``; its meter is
its own account. Intervals without awards keep their old commitment (same roots, same gas).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.eip712 import address_of, key_from_seed
from gridledger.flex.commitments import (
    FlexAwardLine,
    combined_proof,
    combined_root,
    flex_award_leaf,
    flex_award_salt,
)
from gridledger.ledger import Ledger, Role
from gridledger.market import ClearingResult, TradeLine, result_root, trade_leaf, trade_salt
from gridledger.merkle import EMPTY_ROOT, build_tree
from gridledger.metering import Reading, reading_leaf
from gridledger.metering.anchoring import reading_salt, readings_root
from gridledger.privacy import LeafKey
from gridledger.settlement import (
    Delivery,
    IntervalSettlement,
    StatementLine,
    settle_with_delivery,
)
from gridledger.settlement.statements import (
    IntervalStatement,
    OnChainCommitment,
    Proven,
    Statement,
    flex_deliveries,
    settled_trades,
    verify_statement,
)
from gridledger.sim.runner import GRID_OPERATOR, GRID_SUPPLIER
from gridledger.sim.settling import IntervalBooking, SettlementRules
from gridledger.verifier.panel import AttestationSource, InProcessVerifiers, dev_verifier_keys

ESCROW_PER_HOUSEHOLD_MICRO = 1_000_000_000  # 1,000 gEUR: a year of local purchases
# what the grid operator (flexibility) and the supplier (feed-in) pay from: a year of payments
ESCROW_PER_COUNTERPARTY_MICRO = 100 * ESCROW_PER_HOUSEHOLD_MICRO


@dataclass(frozen=True)
class RecordedInterval:
    """What a statement of an interval with awards needs: its committed facts and their lines."""

    interval_start_s: int
    trades: tuple[TradeLine, ...]
    awards: tuple[FlexAwardLine, ...]
    readings: tuple[Reading, ...]
    lines: tuple[StatementLine, ...]
    settle_tx: str  # the settlement transaction, read back by hash for the on-chain deltas


class LedgerRecorder:
    """Commits and settles every simulated interval on ``ledger``; returns the gas used."""

    def __init__(
        self,
        ledger: Ledger,
        first_interval_start_s: int,
        interval_length_s: int = 900,
        attestations: AttestationSource | None = None,
    ):
        self.ledger = ledger
        # A scenario run has no independent verifiers: the dev set co-signs what it records.
        self.attestations = attestations or InProcessVerifiers(
            dev_verifier_keys(), domain=ledger.domain
        )
        self.first_interval_start_s = first_interval_start_s
        self.interval_length_s = interval_length_s
        self.address_of: dict[str, str] = {GRID_OPERATOR: ledger.deployment.grid_operator}
        # The salts live as long as the recorder: statements of its intervals need them.
        self.leaf_key = LeafKey.random()
        self.recorded: dict[int, RecordedInterval] = {}  # intervals with awards, by start
        self.rules: SettlementRules | None = None

    def enrol(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.address_of:
                continue
            address = address_of(key_from_seed(f"sim-{name}"))
            self.ledger.add_participant(address, Role.PROSUMER, 0)
            self.ledger.deposit_for(address, ESCROW_PER_HOUSEHOLD_MICRO)
            self.address_of[name] = address

    def enrol_counterparties(self) -> None:
        """The supplier and the grid operator's escrow, the first time an interval pays them."""
        if GRID_SUPPLIER in self.address_of:
            return
        supplier = address_of(key_from_seed(f"sim-{GRID_SUPPLIER}"))
        self.ledger.add_participant(supplier, Role.OPERATOR, 0)
        self.ledger.deposit_for(supplier, ESCROW_PER_COUNTERPARTY_MICRO)
        self.ledger.deposit_for(self.address_of[GRID_OPERATOR], ESCROW_PER_COUNTERPARTY_MICRO)
        self.address_of[GRID_SUPPLIER] = supplier

    def deltas(self, deltas_by_name: Mapping[str, int]) -> dict[str, int]:
        return {self.address_of[name]: delta for name, delta in deltas_by_name.items()}

    def record(
        self,
        interval: int,
        result: ClearingResult,
        settlement: IntervalSettlement,
        participants: Sequence[str],
        *,
        booking: IntervalBooking | None = None,
        rules: SettlementRules | None = None,
    ) -> int:
        self.enrol(participants)
        start_s = self.first_interval_start_s + interval * self.interval_length_s
        if booking is not None and booking.flexibility and rules is not None:
            return self.record_with_flexibility(interval, start_s, booking, rules)
        root = result_root(result, self.leaf_key) if result.book.orders is not None else EMPTY_ROOT
        commit = self.ledger.commit_interval(
            start_s,
            EMPTY_ROOT,
            root,
            EMPTY_ROOT,
            result.clearing_price_micro_per_kwh or 0,
            result.cleared_energy_wh,
        )
        deltas = self.deltas(settlement.deltas_micro)
        settle = self.ledger.settle_direct(start_s, deltas, self.attestations)
        return commit.gas_used + settle.gas_used

    def record_with_flexibility(
        self, interval: int, start_s: int, booking: IntervalBooking, rules: SettlementRules
    ) -> int:
        """Commit trades, awards and readings; settle against delivery (the module docstring)."""
        self.enrol_counterparties()
        self.rules = rules
        trades, awards, readings = self.facts(interval, start_s, booking, rules.names)
        key = self.leaf_key
        trade_leaves = [trade_leaf(t, trade_salt(key, t)) for t in trades]
        award_leaves = [flex_award_leaf(a, flex_award_salt(key, a)) for a in awards]
        settled = settle_with_delivery(
            settled_trades(trades),
            {r.meter: Delivery(r.imported_wh, r.exported_wh) for r in readings},
            rules.tariffs,
            grid_operator=self.address_of[GRID_OPERATOR],
            supplier=self.address_of[GRID_SUPPLIER],
            flexibility=flex_deliveries(awards),
        )
        volume_wh = sum(t.energy_wh for t in trades)
        commit = self.ledger.commit_interval(
            start_s,
            EMPTY_ROOT,
            combined_root(trade_leaves, award_leaves),
            readings_root(readings, key),
            max((t.price_micro_per_kwh for t in trades), default=0),
            volume_wh,
        )
        deltas = {a: d for a, d in settled.deltas_micro.items() if d}
        settle = self.ledger.settle_direct(start_s, deltas, self.attestations)
        self.recorded[start_s] = RecordedInterval(
            start_s, tuple(trades), tuple(awards), tuple(readings), settled.lines, settle.tx_hash
        )
        return commit.gas_used + settle.gas_used

    def facts(
        self, interval: int, start_s: int, booking: IntervalBooking, names: Sequence[str]
    ) -> tuple[list[TradeLine], list[FlexAwardLine], list[Reading]]:
        """The interval's trade lines, award lines and readings, on the households' accounts."""
        account = [self.address_of[n] for n in names]
        nonce = 2 * interval
        trades = [
            TradeLine(start_s, account[b], nonce, account[s], nonce, e, p, f)
            for b, s, e, p, f in zip(
                booking.buy_rows.tolist(),
                booking.sell_rows.tolist(),
                booking.energy_wh.tolist(),
                booking.price_micro_per_kwh.tolist(),
                booking.fee_micro_per_kwh.tolist(),
                strict=True,
            )
        ]
        awards = [
            FlexAwardLine(
                start_s,
                self.address_of[a.participant],
                nonce + 1,
                a.direction,
                a.awarded_wh,
                a.price_micro_per_kwh,
                a.baseline_net_import_wh,
                a.curtailed_wh,
            )
            for a in booking.flexibility
        ]
        readings = [
            Reading(
                account[row],
                interval,
                start_s,
                self.interval_length_s,
                energy if buy else 0,
                0 if buy else energy,
            )
            for row, buy, energy in zip(
                booking.rows.tolist(),
                booking.is_buy.tolist(),
                booking.delivered_wh.tolist(),
                strict=True,
            )
        ]
        return trades, awards, readings


def _interval_statement(
    recorded: RecordedInterval, participant: str, key: LeafKey
) -> IntervalStatement:
    trade_leaves = [trade_leaf(t, trade_salt(key, t)) for t in recorded.trades]
    award_leaves = [flex_award_leaf(a, flex_award_salt(key, a)) for a in recorded.awards]
    trades = [
        Proven(t, tuple(combined_proof(trade_leaves, award_leaves, leaf)), trade_salt(key, t))
        for t, leaf in zip(recorded.trades, trade_leaves, strict=True)
        if participant in (t.buyer, t.seller)
    ]
    awards = [
        Proven(a, tuple(combined_proof(trade_leaves, award_leaves, leaf)), flex_award_salt(key, a))
        for a, leaf in zip(recorded.awards, award_leaves, strict=True)
        if a.participant == participant
    ]
    readings_tree = build_tree([reading_leaf(r, reading_salt(key, r)) for r in recorded.readings])
    readings = [
        Proven(r, tuple(readings_tree.proof(reading_leaf(r, salt))), salt)
        for r, salt in ((r, reading_salt(key, r)) for r in recorded.readings)
        if r.meter == participant
    ]
    lines = tuple(line for line in recorded.lines if line.participant == participant)
    return IntervalStatement(
        recorded.interval_start_s,
        (),
        tuple(trades),
        tuple(readings),
        lines,
        sum(line.amount_micro for line in lines),
        tuple(awards),
    )


def flex_statement(recorder: LedgerRecorder, name: str) -> Statement:
    """Household ``name``'s statement of every recorded interval it has a flexibility award in:
    its trades, readings and awards with their proofs, and its settlement lines."""
    participant = recorder.address_of[name]
    intervals = tuple(
        _interval_statement(recorded, participant, recorder.leaf_key)
        for start, recorded in sorted(recorder.recorded.items())
        if any(a.participant == participant for a in recorded.awards)
    )
    first = intervals[0].interval_start_s if intervals else 0
    last = intervals[-1].interval_start_s + recorder.interval_length_s if intervals else 0
    return Statement(participant, first, last, intervals)


def chain_commitments(
    recorder: LedgerRecorder, statement: Statement
) -> dict[int, OnChainCommitment]:
    """The roots from the ledger, and the participant's delta from the settlement's calldata."""
    out = {}
    for interval in statement.intervals:
        start = interval.interval_start_s
        on_chain = recorder.ledger.interval(start)
        recorded = recorder.recorded.get(start)
        delta = None
        if on_chain.settled and recorded is not None:
            deltas = recorder.ledger.settled_deltas(start, recorded.settle_tx)
            delta = deltas.get(statement.participant, 0)
        out[start] = OnChainCommitment(
            on_chain.orders_root,
            on_chain.result_root,
            on_chain.readings_root,
            on_chain.settled,
            delta,
        )
    return out


def verify_flex_statement(recorder: LedgerRecorder, statement: Statement) -> list[str]:
    """:func:`gridledger.settlement.statements.verify_statement` against the ledger's roots."""
    if recorder.rules is None:
        return ["no interval with flexibility awards was recorded"]
    return verify_statement(
        statement,
        chain_commitments(recorder, statement),
        recorder.rules.tariffs,
        grid_operator=recorder.address_of[GRID_OPERATOR],
        supplier=recorder.address_of[GRID_SUPPLIER],
    )
