"""Scenario runs on a chain: record each simulated interval on an EVM (``chain = "memory"``).

An edge module (it imports :mod:`gridledger.ledger`); the scenario runner stays pure and calls
:meth:`LedgerRecorder.record` through its ``IntervalRecorder`` hook. Households get deterministic
keys, a registry entry and escrow the first time they appear; each interval is committed with its
clearing price and volume and settled with the runner's netted deltas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gridledger.eip712 import address_of, key_from_seed
from gridledger.ledger import Ledger, Role
from gridledger.market import ClearingResult, result_root
from gridledger.merkle import EMPTY_ROOT
from gridledger.privacy import LeafKey
from gridledger.settlement import IntervalSettlement
from gridledger.sim.runner import GRID_OPERATOR
from gridledger.verifier.panel import AttestationSource, InProcessVerifiers, dev_verifier_keys

ESCROW_PER_HOUSEHOLD_MICRO = 1_000_000_000  # 1,000 gEUR: a year of local purchases


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
        # Nobody asks a scenario run for statements, so its salts need not outlive the run.
        self.leaf_key = LeafKey.random()

    def enrol(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.address_of:
                continue
            address = address_of(key_from_seed(f"sim-{name}"))
            self.ledger.add_participant(address, Role.PROSUMER, 0)
            self.ledger.deposit_for(address, ESCROW_PER_HOUSEHOLD_MICRO)
            self.address_of[name] = address

    def deltas(self, deltas_by_name: Mapping[str, int]) -> dict[str, int]:
        return {self.address_of[name]: delta for name, delta in deltas_by_name.items()}

    def record(
        self,
        interval: int,
        result: ClearingResult,
        settlement: IntervalSettlement,
        participants: Sequence[str],
    ) -> int:
        self.enrol(participants)
        start_s = self.first_interval_start_s + interval * self.interval_length_s
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
