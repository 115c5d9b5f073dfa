"""Which verifiers co-sign a node's intervals, from its settings.

* ``verifier_mode = "dev"``: the deterministic dev keys (:func:`~gridledger.verifier.panel.
  dev_verifier_keys`) sign in this process, each after the real re-execution check;
* ``verifier_mode = "remote"``: ``gridledger verifier`` processes POST their attestations to the
  node's API and the operator waits, up to ``attestation_timeout_s``, for the quorum.

The set registered at deploy is ``verifier_addresses`` (comma-separated) or, when empty, the
first ``verifier_count`` dev addresses; ``verifier_quorum`` is its threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridledger.config import Settings
from gridledger.errors import ConfigError, ValidationError
from gridledger.ledger import Ledger
from gridledger.store import Store
from gridledger.verifier.attestation import IntervalAttestation
from gridledger.verifier.panel import InProcessVerifiers, dev_verifier_addresses, dev_verifier_keys
from gridledger.verifier.remote import (
    AttestationBox,
    RemoteAttestations,
    remember_verifier_set,
)

if TYPE_CHECKING:
    from gridledger.node.interval import MarketOperator


def verifier_set(settings: Settings) -> tuple[list[str], int]:
    """(addresses, threshold) to register at deploy."""
    listed = [a.strip() for a in settings.verifier_addresses.split(",") if a.strip()]
    addresses = listed or dev_verifier_addresses(settings.verifier_count)
    if not 1 <= settings.verifier_quorum <= len(addresses):
        raise ConfigError(
            f"verifier_quorum: must be in 1..{len(addresses)} (the verifiers), "
            f"got {settings.verifier_quorum}"
        )
    return addresses, settings.verifier_quorum


class NodeVerifiers:
    """The node's AttestationSource; :meth:`bind` it to the operator it checks."""

    def __init__(self, settings: Settings, store: Store, ledger: Ledger) -> None:
        self.mode = settings.verifier_mode
        self.ledger, self.store = ledger, store
        self.operator: MarketOperator | None = None
        remember_verifier_set(store, ledger.verifiers())
        if self.mode == "remote":
            box = AttestationBox(store, ledger.domain, self._verifiers)
            self.remote = RemoteAttestations(
                box, ledger.verifier_threshold, float(settings.attestation_timeout_s)
            )
        elif self.mode != "dev":
            raise ConfigError(f"verifier_mode: 'dev' or 'remote', got {self.mode!r}")
        self.keys = dev_verifier_keys(settings.verifier_count)

    def _verifiers(self) -> list[str]:
        addresses = self.ledger.verifiers()
        remember_verifier_set(self.store, addresses)
        return addresses

    def bind(self, operator: MarketOperator) -> None:
        self.operator = operator

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        if self.mode == "remote":
            return self.remote.collect(att)
        if self.operator is None:
            raise ValidationError("verifiers", "bind() them to the operator first")
        from gridledger.verifier.local import ReexecutionCheck

        check = ReexecutionCheck(self.operator, self.operator.leaf_key)
        return InProcessVerifiers(self.keys, check, domain=self.ledger.domain).collect(att)
