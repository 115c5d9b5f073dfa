"""Which verifiers co-sign a node's intervals, from its settings.

* ``verifier_mode = "dev"``: the deterministic dev keys (:func:`~gridledger.verifier.panel.
  dev_verifier_keys`) sign in this process, each after the real re-execution check;
* ``verifier_mode = "remote"``: ``gridledger verifier`` processes POST their attestations to the
  node's API. Collecting never waits (:meth:`RemoteAttestations.poll`): below the quorum it
  raises AttestationPending, the scheduler lets go of the chain lock and tries again on a later
  tick; a quorum still missing after ``attestation_timeout_s`` is logged.

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
    known_verifier_set,
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
        self._remembered = ledger.verifiers()
        remember_verifier_set(store, self._remembered)
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
        if addresses != self._remembered:  # the API's copy: written when the set changed
            remember_verifier_set(self.store, addresses)
            self._remembered = addresses
        return addresses

    def bind(self, operator: MarketOperator) -> None:
        self.operator = operator

    def ready(self, att: IntervalAttestation) -> bool:
        """Whether collecting ``att`` may now do more than say pending (store reads only; the
        node's scheduler asks before it takes its locks, LiveMarket.settle_due)."""
        if self.mode != "remote":
            return True
        return self.remote.ready(att, known_verifier_set(self.store))

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        if self.mode == "remote":
            return self.remote.poll(att)
        if self.operator is None:
            raise ValidationError("verifiers", "bind() them to the operator first")
        from gridledger.verifier.local import ReexecutionCheck

        check = ReexecutionCheck(self.operator, self.operator.leaf_key)
        return InProcessVerifiers(self.keys, check, domain=self.ledger.domain).collect(att)
