"""Interval attestations: a verifier's EIP-712 signature that one interval was cleared correctly.

A verifier re-executes an interval and, when every byte matches, signs
``IntervalAttestation(uint64 intervalStartS,bytes32 ordersRoot,bytes32 resultRoot,
bytes32 readingsRoot,bytes32 settlementHash)`` under the Market's own EIP-712 domain (the one
orders use), so an attestation for another interval, contract or chain recovers to a different
signer on-chain. ``settlementHash`` binds the settlement the operator will post: the hash of the
direct batch's entries, or of the netting root and its totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils.crypto import keccak

from gridledger.eip712 import Domain, StructType, recover_address, sign_digest, typed_digest
from gridledger.errors import ValidationError

ATTESTATION_TYPE = StructType(
    "IntervalAttestation",
    (
        ("intervalStartS", "uint64"),
        ("ordersRoot", "bytes32"),
        ("resultRoot", "bytes32"),
        ("readingsRoot", "bytes32"),
        ("settlementHash", "bytes32"),
    ),
)


@dataclass(frozen=True)
class IntervalAttestation:
    """What a verifier vouches for: the interval's three roots and its settlement."""

    interval_start_s: int
    orders_root: bytes
    result_root: bytes
    readings_root: bytes
    settlement_hash: bytes

    def struct_values(self) -> tuple[int, bytes, bytes, bytes, bytes]:
        return (
            self.interval_start_s,
            self.orders_root,
            self.result_root,
            self.readings_root,
            self.settlement_hash,
        )

    def digest(self, domain: Domain) -> bytes:
        return typed_digest(domain, ATTESTATION_TYPE.hash_struct(self.struct_values()))


def settlement_hash_of_entries(entries: Sequence[bytes]) -> bytes:
    """keccak256(abi.encodePacked(bytes32[] entries)): the direct batch's settlement hash."""
    for i, entry in enumerate(entries):
        if len(entry) != 32:
            raise ValidationError(f"entries[{i}]", f"must be 32 bytes, got {len(entry)}")
    return keccak(b"".join(entries))


def settlement_hash_of_root(
    root: bytes, credits_micro: int, debits_micro: int, account_count: int
) -> bytes:
    """keccak256(abi.encode(bytes32, uint128, uint128, uint32)): the netting root's hash."""
    if len(root) != 32:
        raise ValidationError("root", f"must be 32 bytes, got {len(root)}")
    words = [root]
    for name, value, bits in (
        ("credits_micro", credits_micro, 128),
        ("debits_micro", debits_micro, 128),
        ("account_count", account_count, 32),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
            raise ValidationError(name, f"must be an integer in [0, 2**{bits}), got {value!r}")
        words.append(value.to_bytes(32, "big"))
    return keccak(b"".join(words))


def sign_attestation(private_key: bytes, domain: Domain, att: IntervalAttestation) -> bytes:
    """The verifier's 65-byte signature r || s || v over ``att`` in ``domain``."""
    return sign_digest(private_key, att.digest(domain))


def recover_attestation_signer(domain: Domain, att: IntervalAttestation, signature: bytes) -> str:
    """The checksummed address that signed ``att`` (ValidationError on a malformed signature)."""
    return recover_address(att.digest(domain), signature)
