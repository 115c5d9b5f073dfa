"""Who co-signs intervals: the AttestationSource the operator asks, and in-process verifiers.

The operator builds an :class:`IntervalAttestation` after committing an interval and asks its
source for signatures; the Market settles only with a quorum of them. ``InProcessVerifiers``
holds the keys in this process (tests, the demo); remote verifier processes plug in behind the
same protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import AttestationRefused, ValidationError
from gridledger.verifier.attestation import IntervalAttestation, sign_attestation

DEV_VERIFIER_COUNT = 3
DEV_QUORUM = 2


class AttestationSource(Protocol):
    def collect(self, att: IntervalAttestation) -> list[bytes]:
        """At least a quorum of signatures over ``att``, ordered by ascending signer address."""
        ...


class InProcessVerifiers:
    """Signs with every key whose ``check`` passes (a check refuses by raising AttestationRefused).

    ``domain`` is the Market's EIP-712 domain (``Ledger.domain``): an attestation is bound to one
    Market on one chain.
    """

    def __init__(
        self,
        keys: Sequence[bytes],
        check: Callable[[IntervalAttestation], None] | None = None,
        *,
        domain: Domain,
    ) -> None:
        if not keys:
            raise ValidationError("keys", "at least one verifier key is needed")
        # Ascending signer address: the order the Market requires.
        self._keys = sorted(keys, key=lambda k: int(address_of(k), 16))
        self._check = check
        self.domain = domain

    @property
    def addresses(self) -> list[str]:
        return [address_of(k) for k in self._keys]

    def collect(self, att: IntervalAttestation) -> list[bytes]:
        """Every key's signature when the check passes; none when it refuses."""
        if self._check is not None:
            try:
                self._check(att)
            except AttestationRefused:
                return []
        return [sign_attestation(key, self.domain, att) for key in self._keys]


def dev_verifier_keys(n: int = DEV_VERIFIER_COUNT) -> list[bytes]:
    """Deterministic verifier keys for tests and demos ONLY: anyone can derive them."""
    if n < 1:
        raise ValidationError("n", f"must be at least 1, got {n}")
    return [key_from_seed(f"dev-verifier:{i}") for i in range(n)]


def dev_verifier_addresses(n: int = DEV_VERIFIER_COUNT) -> list[str]:
    """The addresses of :func:`dev_verifier_keys` (what a dev deployment registers)."""
    return [address_of(k) for k in dev_verifier_keys(n)]
