"""Our fast EIP-712 path must agree with eth_account's reference implementation."""

from __future__ import annotations

import pytest
from eth_account import Account

from gridledger.eip712 import (
    Domain,
    StructType,
    address_of,
    key_from_seed,
    recover_address,
    sign_digest,
    typed_digest,
)
from gridledger.errors import ValidationError
from tests.support.eip712 import eth_account_message

DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
PING = StructType("Ping", (("who", "address"), ("amount", "uint64"), ("delta", "int96")))


def test_digest_matches_eth_account_and_signature_recovers() -> None:
    key = key_from_seed("alice")
    who = address_of(key)
    values = (who, 12345, -77)
    digest = typed_digest(DOMAIN, PING.hash_struct(values))
    message = eth_account_message(DOMAIN, PING, values)
    reference = Account.sign_message(message, key)
    signature = sign_digest(key, digest)
    assert signature == bytes(reference.signature)
    assert recover_address(digest, signature) == who == Account.from_key(key).address


def test_out_of_range_value_names_the_field() -> None:
    with pytest.raises(ValidationError, match="amount: out of range for uint64"):
        PING.hash_struct((address_of(key_from_seed("a")), 1 << 64, 0))


def test_high_s_signature_is_rejected() -> None:
    key = key_from_seed("bob")
    digest = typed_digest(DOMAIN, PING.hash_struct((address_of(key), 1, 1)))
    sig = sign_digest(key, digest)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    high_s = (n - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big")
    flipped = sig[:32] + high_s + bytes([55 - sig[64]])
    with pytest.raises(ValidationError, match="upper half"):
        recover_address(digest, flipped)


def test_keccak_is_ethereums_keccak_at_every_block_boundary() -> None:
    from eth_utils.crypto import keccak as eth_keccak

    from gridledger.eip712 import keccak

    for n in (0, 1, 31, 32, 64, 135, 136, 137, 272, 1000):
        data = bytes(range(256)) * 4
        assert keccak(data[:n]) == eth_keccak(data[:n]), n
    assert keccak(b"").hex().startswith("c5d24601")  # not NIST SHA3-256 (a7ffc6f8...)
