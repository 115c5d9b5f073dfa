"""Participant statements and their verification against on-chain commitments (pure).

A statement lists, per interval, the participant's orders, trades and meter readings, each with
its Merkle proof against the roots the operator committed on-chain, and the settlement lines
(trades, grid fees, imbalance with the grid supplier, flexibility paid by the grid operator
against proven awards) that sum to the participant's on-chain delta.
:func:`verify_statement` recomputes every line from the proven facts and the public tariffs, so a
participant can check its bill without trusting the operator; each problem names the failing line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from gridledger.flex.commitments import FlexAwardLine, flex_award_leaf
from gridledger.market import Order, TradeLine, order_leaf, trade_leaf
from gridledger.merkle import verify_proof
from gridledger.metering import Reading, reading_leaf
from gridledger.settlement._delivery import (
    Delivery,
    FlexDelivery,
    StatementLine,
    Tariffs,
    settle_with_delivery,
)
from gridledger.settlement._netting import SettledTrade

T = TypeVar("T")


@dataclass(frozen=True)
class Proven(Generic[T]):
    """A committed fact with its Merkle proof and its leaf's secret salt (given to its owner)."""

    item: T
    proof: tuple[bytes, ...]
    salt: bytes


@dataclass(frozen=True)
class IntervalStatement:
    interval_start_s: int
    orders: tuple[Proven[Order], ...]
    trades: tuple[Proven[TradeLine], ...]
    readings: tuple[Proven[Reading], ...]
    lines: tuple[StatementLine, ...]
    delta_micro: int  # what the operator says moved in the participant's escrow
    flex_awards: tuple[Proven[FlexAwardLine], ...] = ()  # proven under the result root

    @property
    def total_micro(self) -> int:
        return sum(line.amount_micro for line in self.lines)


@dataclass(frozen=True)
class ProvenNet:
    """The participant's cumulative netting-root net as of one root, with its Merkle proof."""

    root_seq: int
    cumulative_micro: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class ClaimProof:
    """One claim period on the netting-root path: the leaf closing it (what the day's claim
    applies), the leaf opening it (None: no root-path net before), and the intervals in it."""

    opening: ProvenNet | None
    closing: ProvenNet
    interval_starts: tuple[int, ...]

    @property
    def net_micro(self) -> int:
        opened = 0 if self.opening is None else self.opening.cumulative_micro
        return self.closing.cumulative_micro - opened


@dataclass(frozen=True)
class Statement:
    participant: str
    from_s: int
    to_s: int
    intervals: tuple[IntervalStatement, ...]
    claims: tuple[ClaimProof, ...] = ()  # the netting-root path's proof of what moved

    @property
    def total_micro(self) -> int:
        return sum(i.total_micro for i in self.intervals)


@dataclass(frozen=True)
class OnChainCommitment:
    """What the chain holds for one interval (read by the caller, trusted by nobody else)."""

    orders_root: bytes
    result_root: bytes
    readings_root: bytes
    settled: bool
    participant_delta_micro: int | None  # from the settlement entries proven by the event hash
    by_root: bool = False  # settled by netting root: the delta is proven by a ClaimProof


def _unproven(
    name: str,
    items: Sequence[Proven[Any]],
    leaf_of: Callable[[Any, bytes], bytes],
    root: bytes,
) -> list[str]:
    return [
        f"{name} {n}: its Merkle proof does not match the on-chain root"
        for n, proven in enumerate(items, 1)
        if not verify_proof(leaf_of(proven.item, proven.salt), proven.proof, root)
    ]


def _proof_problems(interval: IntervalStatement, chain: OnChainCommitment) -> list[str]:
    return (
        _unproven("order", interval.orders, order_leaf, chain.orders_root)
        + _unproven("trade", interval.trades, trade_leaf, chain.result_root)
        + _unproven("reading", interval.readings, reading_leaf, chain.readings_root)
        + _unproven("flexibility award", interval.flex_awards, flex_award_leaf, chain.result_root)
    )


def settled_trades(lines: Iterable[TradeLine]) -> list[SettledTrade]:
    """What settlement needs of published trade lines (the nonces only identify orders)."""
    return [
        SettledTrade(t.buyer, t.seller, t.energy_wh, t.price_micro_per_kwh, t.fee_micro_per_kwh)
        for t in lines
    ]


def flex_deliveries(awards: Iterable[FlexAwardLine]) -> list[FlexDelivery]:
    """What settlement needs of published flexibility award lines."""
    return [
        FlexDelivery(
            a.participant,
            a.direction,
            a.baseline_net_import_wh,
            a.energy_wh,
            a.price_micro_per_kwh,
            a.curtailed_wh,
        )
        for a in awards
    ]


def expected_lines(
    interval: IntervalStatement,
    participant: str,
    tariffs: Tariffs,
    grid_operator: str,
    supplier: str,
) -> list[StatementLine]:
    """The participant's lines recomputed from its proven trades and readings."""
    trades = settled_trades(t.item for t in interval.trades)
    delivery = Delivery(
        sum(r.item.imported_wh for r in interval.readings),
        sum(r.item.exported_wh for r in interval.readings),
    )
    awards = flex_deliveries(
        a for a in (p.item for p in interval.flex_awards) if a.participant == participant
    )
    settled = settle_with_delivery(
        trades,
        {participant: delivery},
        tariffs,
        grid_operator=grid_operator,
        supplier=supplier,
        flexibility=awards,
    )
    return settled.lines_of(participant)


def _line_problems(interval: IntervalStatement, expected: Sequence[StatementLine]) -> list[str]:
    problems = []
    given = list(interval.lines)
    if len(given) != len(expected):
        problems.append(
            f"{len(given)} settlement lines where the proven facts give {len(expected)}"
        )
    for n, (line, want) in enumerate(zip(given, expected, strict=False), 1):
        capped = line.kind.startswith("imbalance") and want.amount_micro <= line.amount_micro <= 0
        if line != want and not (capped and line.kind == want.kind):
            problems.append(
                f"line {n} ({line.kind}): {line.amount_micro} micro, the proven facts "
                f"give {want.amount_micro}"
            )
    return problems


def verify_statement(
    statement: Statement,
    chain: Mapping[int, OnChainCommitment],
    tariffs: Tariffs,
    *,
    grid_operator: str,
    supplier: str,
    netting_roots: Mapping[int, bytes] | None = None,
    netting_leaf: Callable[[int, str, int], bytes] | None = None,
) -> list[str]:
    """Every problem found, each naming the interval and the line; empty means verified.

    On the netting-root path the deltas are proven by ``statement.claims``: ``netting_roots``
    maps root numbers to the roots read from the chain, ``netting_leaf`` is the Market's leaf
    (``gridledger.ledger.netting_leaf``; passed in, as this module never imports the ledger).
    """
    netting_roots = netting_roots or {}
    problems = []
    for interval in statement.intervals:
        where = f"interval {interval.interval_start_s}"
        on_chain = chain.get(interval.interval_start_s)
        if on_chain is None or not on_chain.settled:
            problems.append(f"{where}: not settled on-chain")
            continue
        found = _proof_problems(interval, on_chain)
        want = expected_lines(interval, statement.participant, tariffs, grid_operator, supplier)
        found += _line_problems(interval, want)
        if interval.total_micro != interval.delta_micro:
            found.append(
                f"lines sum to {interval.total_micro}, the statement's delta is "
                f"{interval.delta_micro}"
            )
        if not on_chain.by_root and on_chain.participant_delta_micro != interval.delta_micro:
            found.append(
                f"on-chain delta {on_chain.participant_delta_micro} != statement "
                f"{interval.delta_micro}"
            )
        problems += [f"{where}: {p}" for p in found]
    return problems + _claim_problems(statement, chain, netting_roots, netting_leaf)


def _claim_problems(
    statement: Statement,
    chain: Mapping[int, OnChainCommitment],
    netting_roots: Mapping[int, bytes],
    netting_leaf: Callable[[int, str, int], bytes] | None,
) -> list[str]:
    """Each claim's leaves against the on-chain roots, and its net against the intervals'."""
    by_root = {
        i.interval_start_s
        for i in statement.intervals
        if (c := chain.get(i.interval_start_s)) is not None and c.by_root
    }
    if not by_root and not statement.claims:
        return []
    if netting_leaf is None:
        return ["netting-root intervals, but no leaf function to check their claims with"]
    deltas = {i.interval_start_s: i.delta_micro for i in statement.intervals}
    problems: list[str] = []
    covered: set[int] = set()
    for claim in statement.claims:
        where = f"claim of root {claim.closing.root_seq}"
        for leaf in (claim.opening, claim.closing):
            if leaf is None:
                continue
            computed = netting_leaf(leaf.root_seq, statement.participant, leaf.cumulative_micro)
            root = netting_roots.get(leaf.root_seq)
            if root is None or not verify_proof(computed, leaf.proof, root):
                problems.append(
                    f"{where}: the leaf of root {leaf.root_seq} ({leaf.cumulative_micro} micro) "
                    "does not match the on-chain root"
                )
        summed = sum(deltas.get(start, 0) for start in claim.interval_starts)
        if summed != claim.net_micro:
            problems.append(
                f"{where}: its intervals' deltas sum to {summed}, the proven leaves move "
                f"{claim.net_micro}"
            )
        covered.update(claim.interval_starts)
    problems += [
        f"interval {start}: settled by netting root but in no proven claim"
        for start in sorted(by_root - covered)
        if deltas.get(start, 0) != 0
    ]
    return problems
