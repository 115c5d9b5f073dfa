"""Build a participant's statement from the store, and read what the chain says about it.

The statement's facts come from the operator's store; :func:`chain_commitments` reads the roots
and the settlement entries' hash from the chain, and :func:`gridledger.settlement.statements.
verify_statement` (pure) checks one against the other.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any, TypeVar

from gridledger.errors import ValidationError
from gridledger.ledger import Ledger, netting_leaf
from gridledger.market import Order, TradeLine, order_leaf, order_salt, trade_leaf, trade_salt
from gridledger.merkle import build_tree
from gridledger.metering import Reading, reading_leaf, reading_salt
from gridledger.node.interval import signed_order
from gridledger.privacy.erasure import erased_leaves_of
from gridledger.privacy.keys import leaf_key_of
from gridledger.settlement import StatementLine, Tariffs
from gridledger.settlement.statements import (
    ClaimProof,
    IntervalStatement,
    OnChainCommitment,
    Proven,
    ProvenNet,
    Statement,
    verify_statement,
)
from gridledger.store import Store, TradeRow

T = TypeVar("T")


def month_range_s(month: str) -> tuple[int, int]:
    """``"2016-06"`` -> (first second of the month, first second of the next), UTC."""
    try:
        year, number = (int(part) for part in month.split("-"))
        first = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    except ValueError:
        raise ValidationError("month", f"expected YYYY-MM, got {month!r}") from None
    days = calendar.monthrange(year, number)[1]
    return int(first.timestamp()), int((first + dt.timedelta(days=days)).timestamp())


def _proven(
    items: Sequence[T], leaf_of: Any, salt_of: Any, mine: Iterable[T], erased: Sequence[bytes] = ()
) -> tuple[Proven[T], ...]:
    """Proofs of ``mine`` with their salts; the other leaves' salts never leave this function.
    ``erased``: leaf hashes of records erased on request, still under the committed root."""
    tree = build_tree([leaf_of(item, salt_of(item)) for item in items] + list(erased))
    return tuple(
        Proven(item, tuple(tree.proof(leaf_of(item, salt))), salt)
        for item, salt in ((item, salt_of(item)) for item in mine)
    )


def trade_line(row: TradeRow) -> TradeLine:
    return TradeLine(
        row.interval_start_s,
        row.buyer,
        row.buy_nonce,
        row.seller,
        row.sell_nonce,
        row.energy_wh,
        row.price_micro_per_kwh,
        row.fee_micro_per_kwh,
    )


def interval_statement(
    store: Store, participant: str, start_s: int, lines: Sequence[StatementLine]
) -> IntervalStatement:
    orders: list[Order] = [signed_order(r).order for r in store.orders_in_interval(start_s)]
    trades = [trade_line(r) for r in store.trades_in_interval(start_s)]
    readings: list[Reading] = [s.reading for s in store.readings_in_interval(start_s)]
    meters = {m.address for m in store.meters() if m.owner == participant}
    delta = sum(
        s.delta_micro
        for s in store.settlements_in_interval(start_s)
        if s.participant == participant
    )
    key = leaf_key_of(store)
    return IntervalStatement(
        start_s,
        _proven(
            orders,
            order_leaf,
            partial(order_salt, key),
            [o for o in orders if o.participant == participant],
            erased_leaves_of(store, start_s, "order"),
        ),
        _proven(
            trades,
            trade_leaf,
            partial(trade_salt, key),
            [t for t in trades if participant in (t.buyer, t.seller)],
        ),
        _proven(
            readings,
            reading_leaf,
            partial(reading_salt, key),
            [r for r in readings if r.meter in meters],
            erased_leaves_of(store, start_s, "reading"),
        ),
        tuple(lines),
        delta,
    )


def build_statement(
    store: Store,
    participant: str,
    from_s: int = 0,
    to_s: int = 2**62,
    claim_period_intervals: int = 96,
) -> Statement:
    """The participant's statement over ``[from_s, to_s)``: every interval it has lines in,
    and on the netting-root path a proven claim per claim period (see :func:`claim_proofs`)."""
    by_interval: dict[int, list[StatementLine]] = {}
    for row in store.statement_lines_of(participant, from_s, to_s):
        by_interval.setdefault(row.interval_start_s, []).append(
            StatementLine(
                row.participant,
                row.kind,
                row.energy_wh,
                row.price_micro_per_kwh,
                row.amount_micro,
                row.counterparty,
            )
        )
    intervals = tuple(
        interval_statement(store, participant, start, lines)
        for start, lines in sorted(by_interval.items())
    )
    claims = claim_proofs(store, participant, intervals, claim_period_intervals)
    return Statement(participant, from_s, to_s, intervals, claims)


def proven_net(store: Store, participant: str, root_seq: int) -> ProvenNet | None:
    """The participant's leaf of netting root ``root_seq`` with its proof (None: no leaf)."""
    cumulative = store.netting_cumulative(root_seq)
    if participant not in cumulative:
        return None
    tree = build_tree([netting_leaf(root_seq, a, c) for a, c in cumulative.items()])
    mine = cumulative[participant]
    return ProvenNet(root_seq, mine, tuple(tree.proof(netting_leaf(root_seq, participant, mine))))


def claim_proofs(
    store: Store,
    participant: str,
    intervals: Sequence[IntervalStatement],
    claim_period_intervals: int,
) -> tuple[ClaimProof, ...]:
    """Per claim period (roots 1..P, P+1..2P, ...) holding the statement's root-path intervals:
    the participant's leaves at the period's last root (the claim) and at the root before it."""
    starts = {i.interval_start_s for i in intervals}
    periods: set[int] = set()
    for root in store.netting_roots():
        if root.interval_start_s in starts:
            periods.add((root.root_seq - 1) // claim_period_intervals)
    latest = store.latest_netting_root()
    claims = []
    for period in sorted(periods):
        first_seq = period * claim_period_intervals + 1
        last_seq = first_seq + claim_period_intervals - 1
        if latest is not None:  # a period still running closes at the newest root
            last_seq = min(last_seq, latest.root_seq)
        closing = proven_net(store, participant, last_seq)
        if closing is None:
            continue
        in_period = store.netting_roots(first_seq, last_seq)
        claims.append(
            ClaimProof(
                proven_net(store, participant, first_seq - 1) if first_seq > 1 else None,
                closing,
                tuple(r.interval_start_s for r in in_period if r.interval_start_s in starts),
            )
        )
    return tuple(claims)


def chain_commitments(
    ledger: Ledger, store: Store, statement: Statement
) -> dict[int, OnChainCommitment]:
    """Roots from the chain, and the participant's delta from the calldata of the settlement
    transaction the chain executed (the store only says which transaction to look at)."""
    out = {}
    for interval in statement.intervals:
        start = interval.interval_start_s
        on_chain = ledger.interval(start)
        row = store.interval(start)
        by_root = store.netting_root_of_interval(start) is not None
        delta = None
        if on_chain.settled and row.settle_tx and not by_root:
            delta = ledger.settled_deltas(start, row.settle_tx).get(statement.participant, 0)
        out[start] = OnChainCommitment(
            on_chain.orders_root,
            on_chain.result_root,
            on_chain.readings_root,
            on_chain.settled,
            delta,
            by_root,
        )
    return out


def chain_netting_roots(ledger: Ledger, statement: Statement) -> dict[int, bytes]:
    """The on-chain root of every netting root the statement's claims prove a leaf against."""
    wanted = {
        leaf.root_seq
        for claim in statement.claims
        for leaf in (claim.opening, claim.closing)
        if leaf is not None
    }
    return {seq: ledger.settlement_root(seq) for seq in sorted(wanted)}


def verify_on_chain(
    ledger: Ledger, store: Store, statement: Statement, tariffs: Tariffs, supplier: str
) -> list[str]:
    """Check a statement against what the chain holds (both settlement paths)."""
    return verify_statement(
        statement,
        chain_commitments(ledger, store, statement),
        tariffs,
        grid_operator=ledger.deployment.grid_operator,
        supplier=supplier,
        netting_roots=chain_netting_roots(ledger, statement),
        netting_leaf=netting_leaf,
    )
