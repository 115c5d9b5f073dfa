"""Independent verifiers: re-execute each interval and co-sign it (EIP-712 attestations)."""

from gridledger.verifier.attestation import (
    IntervalAttestation,
    recover_attestation_signer,
    settlement_hash_of_entries,
    settlement_hash_of_root,
    sign_attestation,
)

__all__ = [
    "IntervalAttestation",
    "recover_attestation_signer",
    "settlement_hash_of_entries",
    "settlement_hash_of_root",
    "sign_attestation",
]
