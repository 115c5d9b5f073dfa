"""In-process verifiers sign in the order the Market needs, and only when their check passes."""

from __future__ import annotations

import pytest
from eth_utils.crypto import keccak

from gridledger.eip712 import Domain
from gridledger.errors import AttestationRefused, ValidationError
from gridledger.verifier.attestation import IntervalAttestation, recover_attestation_signer
from gridledger.verifier.panel import (
    InProcessVerifiers,
    dev_verifier_addresses,
    dev_verifier_keys,
)

DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ATT = IntervalAttestation(1_700_000_100, keccak(b"o"), keccak(b"r"), keccak(b"m"), keccak(b"s"))


def test_signatures_come_in_ascending_signer_order() -> None:
    keys = dev_verifier_keys(5)
    signatures = InProcessVerifiers(list(reversed(keys)), domain=DOMAIN).collect(ATT)
    signers = [recover_attestation_signer(DOMAIN, ATT, s) for s in signatures]
    assert signers == sorted(dev_verifier_addresses(5), key=lambda a: int(a, 16))


def test_a_refusing_check_signs_nothing() -> None:
    def refuse(att: IntervalAttestation) -> None:
        raise AttestationRefused(f"interval {att.interval_start_s}: result root differs")

    assert InProcessVerifiers(dev_verifier_keys(), refuse, domain=DOMAIN).collect(ATT) == []


def test_dev_keys_are_deterministic_and_distinct() -> None:
    assert dev_verifier_keys(3) == dev_verifier_keys(3)
    assert len(set(dev_verifier_addresses(3))) == 3
    with pytest.raises(ValidationError, match="n: must be at least 1"):
        dev_verifier_keys(0)
    with pytest.raises(ValidationError, match="keys"):
        InProcessVerifiers([], domain=DOMAIN)
