"""The edges of re-execution: the operator's package from its store, the facts from the chain.

:func:`package_of` is what the operator publishes for an interval (the node's verifier data
endpoint serves it, the in-process verifiers read it directly); :func:`chain_facts` is what a
verifier reads from the chain itself; :class:`ReexecutionCheck` joins them into the ``check``
of :class:`~gridledger.verifier.panel.InProcessVerifiers`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gridledger.errors import AttestationRefused, NotFoundError
from gridledger.ledger import Ledger
from gridledger.market import result_lines
from gridledger.privacy.salts import LeafKey
from gridledger.verifier.attestation import IntervalAttestation
from gridledger.verifier.reexecute import (
    ChainFacts,
    Dispute,
    IntervalPackage,
    MarketRules,
    NettingBase,
    reexecute,
    void_attestation,
)

if TYPE_CHECKING:
    from gridledger.node.interval import MarketOperator

log = logging.getLogger(__name__)


def rules_of(operator: MarketOperator) -> MarketRules:
    """The public market rules the operator runs with (verifiers configure the same)."""
    return MarketRules(
        operator.ledger.domain,
        operator.mechanism,
        operator.settings.grid_fee_micro_per_kwh,
        operator.tariffs,
        operator.ledger.deployment.grid_operator,
        operator.supplier,
    )


def package_of(operator: MarketOperator, start_s: int) -> IntervalPackage:
    """What the operator claims for a committed interval: its book, readings, trades, plan."""
    from gridledger.node.interval import SettlementPlan, signed_order

    stored = operator.store.settlement_plan(start_s)
    if stored is None:
        raise NotFoundError(f"interval {start_s} has no settlement plan yet: not committed")
    plan = SettlementPlan.from_json(stored.body)
    result = operator.clear_interval(start_s)
    in_book = {(o.participant, o.nonce) for o in result.book.orders or ()}
    orders = tuple(
        s
        for s in (signed_order(r) for r in operator.store.orders_in_interval(start_s))
        if (s.order.participant, s.order.nonce) in in_book
    )
    readings = tuple(r.signed for r in operator.store.readings_in_interval(start_s))
    meters = operator.store.meters_by_address({r.reading.meter for r in readings})
    netting = None
    if plan.root_seq is not None:
        previous = plan.root_seq - 1
        cumulative = operator.store.netting_cumulative(previous) if previous else {}
        netting = NettingBase(previous, cumulative)
    return IntervalPackage(
        start_s,
        orders,
        readings,
        {address: meter.owner for address, meter in meters.items()},
        tuple(result_lines(result)) if result.book.orders is not None else (),
        dict(plan.settlement.deltas_micro),
        plan.attestation(start_s),
        netting,
    )


def chain_facts(ledger: Ledger, package: IntervalPackage) -> ChainFacts:
    """The committed roots, meter owners, spendable escrow and previous root, from the chain."""
    start_s = package.interval_start_s
    on_chain = ledger.interval(start_s)
    if not on_chain.committed:
        raise NotFoundError(f"interval {start_s} is not committed on chain")
    meters = sorted({s.reading.meter for s in package.readings})
    owners = {meter: ledger.meter_owner(meter) for meter in meters}
    accounts = sorted(
        {o for o in owners.values() if o is not None}
        | {s.order.participant for s in package.orders}
    )
    views = ledger.accounts_view(accounts)
    escrow = {a: v.escrow_micro for a, v in views.items()}
    netting_root = None
    base = package.netting
    if base is not None:
        for account in accounts:  # spendable = escrow + root-path net not yet claimed
            applied = ledger.account_state(account).applied_micro
            escrow[account] += base.cumulative_micro.get(account, 0) - applied
        if base.root_seq:
            netting_root = ledger.settlement_root(base.root_seq)
    return ChainFacts(
        on_chain.orders_root,
        on_chain.result_root,
        on_chain.readings_root,
        owners,
        escrow,
        netting_root,
    )


@dataclasses.dataclass
class ReexecutionCheck:
    """``check`` for InProcessVerifiers: re-execute from the store and chain, refuse on mismatch.

    Passes the interval's recomputed attestation, and the *void* attestation of an interval its
    re-execution disputed; refuses everything else. ``on_dispute`` is called once per disputed
    interval (the demo records it on-chain); ``disputes`` keeps them.
    """

    operator: MarketOperator
    leaf_key: LeafKey
    on_dispute: Callable[[Dispute], None] | None = None
    disputes: dict[int, Dispute] = dataclasses.field(default_factory=dict)
    attested: set[int] = dataclasses.field(default_factory=set)  # re-executed byte for byte
    _verdicts: dict[tuple[int, IntervalAttestation], IntervalAttestation] = dataclasses.field(
        default_factory=dict
    )

    def verdict(self, start_s: int) -> IntervalAttestation:
        """The attestation this verifier signs for ``start_s``: the honest one or the void."""
        package = package_of(self.operator, start_s)
        key = (start_s, package.attestation)
        if key not in self._verdicts:
            facts = chain_facts(self.operator.ledger, package)
            verdict = reexecute(package, facts, rules_of(self.operator), self.leaf_key)
            if isinstance(verdict, Dispute):
                self._dispute(verdict)
                verdict = void_attestation(
                    package, facts, self.operator.ledger.deployment.grid_operator
                )
            else:
                self.attested.add(start_s)
            self._verdicts[key] = verdict
        return self._verdicts[key]

    def _dispute(self, dispute: Dispute) -> None:
        if dispute.interval_start_s in self.disputes:
            return
        self.disputes[dispute.interval_start_s] = dispute
        log.warning("verifier dispute: %s", dispute.reason)
        if self.on_dispute is not None:
            self.on_dispute(dispute)

    def __call__(self, att: IntervalAttestation) -> None:
        start_s = att.interval_start_s
        if self.verdict(start_s) != att:
            disputed = self.disputes.get(start_s)
            reason = disputed.reason if disputed else "another attestation than re-execution gives"
            raise AttestationRefused(f"interval {start_s}: refused: {reason}")
