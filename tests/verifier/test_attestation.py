"""Interval attestations agree with eth_account's EIP-712 encoder and Solidity's abi encoding."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import ValidationError
from gridledger.verifier.attestation import (
    ATTESTATION_TYPE,
    IntervalAttestation,
    recover_attestation_signer,
    settlement_hash_of_entries,
    settlement_hash_of_root,
    sign_attestation,
)
from tests.support.eip712 import eth_account_message

DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ATT = IntervalAttestation(
    1_700_000_100,
    keccak(b"orders"),
    keccak(b"result"),
    keccak(b"readings"),
    settlement_hash_of_entries([keccak(b"a"), keccak(b"b")]),
)


def test_struct_is_the_one_market_sol_hashes() -> None:
    assert ATTESTATION_TYPE.encoded_type == (
        "IntervalAttestation(uint64 intervalStartS,bytes32 ordersRoot,bytes32 resultRoot,"
        "bytes32 readingsRoot,bytes32 settlementHash)"
    )


def _reference_message(domain: Domain, att: IntervalAttestation) -> object:
    return eth_account_message(domain, ATTESTATION_TYPE, att.struct_values())


def test_signature_matches_eth_account_and_recovers_the_verifier() -> None:
    key = key_from_seed("verifier-0")
    signature = sign_attestation(key, DOMAIN, ATT)
    reference = Account.sign_message(_reference_message(DOMAIN, ATT), key)  # type: ignore[arg-type]
    assert signature == bytes(reference.signature)
    assert recover_attestation_signer(DOMAIN, ATT, signature) == address_of(key)


@pytest.mark.parametrize(
    "other",
    [
        Domain("gridledger", "1", 1, DOMAIN.verifying_contract),
        Domain("gridledger", "1", 31337, "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
    ],
    ids=["other chain", "other contract"],
)
def test_attestation_for_another_domain_recovers_someone_else(other: Domain) -> None:
    key = key_from_seed("verifier-0")
    signature = sign_attestation(key, other, ATT)
    assert recover_attestation_signer(DOMAIN, ATT, signature) != address_of(key)


def test_attestation_for_another_interval_recovers_someone_else() -> None:
    key = key_from_seed("verifier-0")
    moved = IntervalAttestation(
        ATT.interval_start_s + 900,
        ATT.orders_root,
        ATT.result_root,
        ATT.readings_root,
        ATT.settlement_hash,
    )
    signature = sign_attestation(key, DOMAIN, moved)
    assert recover_attestation_signer(DOMAIN, ATT, signature) != address_of(key)


def test_settlement_hashes_match_solidity_encoding() -> None:
    entries = [keccak(b"a"), keccak(b"b"), keccak(b"c")]
    assert settlement_hash_of_entries(entries) == keccak(b"".join(entries))
    root = keccak(b"root")
    expected = keccak(encode(["bytes32", "uint128", "uint128", "uint32"], [root, 5, 7, 3]))
    assert settlement_hash_of_root(root, 5, 7, 3) == expected


def test_bad_settlement_inputs_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"entries\[1\]"):
        settlement_hash_of_entries([keccak(b"a"), b"short"])
    with pytest.raises(ValidationError, match="account_count"):
        settlement_hash_of_root(keccak(b"r"), 0, 0, 1 << 32)
