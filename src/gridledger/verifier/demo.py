"""The demo's verifier panel: N in-process verifiers, quorum K, and an optional fault.

Every honest verifier runs the real re-execution (:class:`~gridledger.verifier.local.
ReexecutionCheck`) against the operator's store and the chain; a dispute is written to a file and
its hash committed through a dispute ``Evidence`` contract by each honest verifier's own key.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from gridledger.eip712 import address_of
from gridledger.errors import ContractRevert, ValidationError
from gridledger.ledger import Ledger
from gridledger.node.interval import MarketOperator
from gridledger.verifier.attestation import IntervalAttestation
from gridledger.verifier.faults import (
    FAULTS,
    OPERATOR_TAMPER,
    VERIFIER_DOWN,
    VERIFIER_LYING,
    PanelWithFaults,
    TamperingOperator,
)
from gridledger.verifier.local import ReexecutionCheck, package_of
from gridledger.verifier.panel import dev_verifier_keys
from gridledger.verifier.reexecute import Dispute

log = logging.getLogger(__name__)


class DemoVerifiers:
    """AttestationSource for the demo; :meth:`bind` it to the operator once that exists."""

    def __init__(self, count: int, quorum: int, fault: str | None, dispute_dir: Path) -> None:
        if not 1 <= quorum <= count:
            raise ValidationError("quorum", f"must be in 1..{count} (the verifiers), got {quorum}")
        if fault is not None and fault not in FAULTS:
            raise ValidationError("fault", f"must be one of {', '.join(FAULTS)}, got {fault!r}")
        self.count, self.quorum, self.fault = count, quorum, fault
        self.keys = dev_verifier_keys(count)
        self.dispute_dir = dispute_dir
        self.down = self.keys[:1] if fault == VERIFIER_DOWN else []
        self.lying = self.keys[:1] if fault == VERIFIER_LYING else []
        self.check: ReexecutionCheck | None = None
        self.panel: PanelWithFaults | None = None
        self.evidence: Any = None  # security.onchain.EvidenceContract once deployed
        self.recorded: list[Path] = []

    @property
    def addresses(self) -> list[str]:
        return [address_of(k) for k in self.keys]

    @property
    def honest_keys(self) -> list[bytes]:
        return [k for k in self.keys if k not in {*self.down, *self.lying}]

    def operator_class(self) -> type[MarketOperator]:
        return TamperingOperator if self.fault == OPERATOR_TAMPER else MarketOperator

    def tamper_from(self, operator: MarketOperator, start_s: int) -> None:
        """Tamper the first interval from ``start_s`` on that has a trade (operator-tamper)."""
        if isinstance(operator, TamperingOperator):
            operator.tamper_from_s = start_s

    def bind(self, operator: MarketOperator, ledger: Ledger) -> None:
        from gridledger.security.onchain import EvidenceContract

        self.check = ReexecutionCheck(operator, operator.leaf_key, on_dispute=self.record)
        self.panel = PanelWithFaults(
            self.keys, self.check, ledger.domain, down=self.down, lying=self.lying
        )
        self.evidence = EvidenceContract.deploy(ledger, self.quorum, self.addresses)
        self.operator, self.ledger = operator, ledger

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        if self.panel is None:
            raise ValidationError("verifiers", "bind() the panel to the operator first")
        return self.panel.collect(att)

    def record(self, dispute: Dispute) -> None:
        """Each honest verifier writes the dispute file and commits its hash on-chain."""
        from gridledger.verifier.process import record_dispute_on_chain, write_dispute_file

        package = package_of(self.operator, dispute.interval_start_s)
        for key in self.honest_keys:
            path, digest = write_dispute_file(
                self.dispute_dir, dispute, address_of(key), self.ledger, package
            )
            self.recorded.append(path)
            try:
                record_dispute_on_chain(
                    self.ledger, self.evidence.address, key, self.ledger.operator, dispute, digest
                )
            except ContractRevert as exc:
                log.warning("dispute stays off-chain: %s", exc)

    def disputes_on_chain(self) -> int:
        """EvidenceSubmitted events against the operator in the dispute contract."""
        if self.evidence is None:
            return 0
        return sum(e.name == "EvidenceSubmitted" for e in self.evidence.events())

    def summary(self) -> dict[str, Any]:
        """The demo summary's verifier fields."""
        check = self.check
        disputed = sorted(check.disputes) if check is not None else []
        return {
            "verifiers": self.count,
            "quorum": self.quorum,
            "fault": self.fault,
            "attested_intervals": len(check.attested) if check is not None else 0,
            "disputed_intervals": len(disputed),
            "disputed_interval_starts_s": disputed,
            "disputes_on_chain": self.disputes_on_chain(),
            "dispute_files": [str(p) for p in self.recorded],
        }
