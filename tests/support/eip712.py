"""eth_account's own EIP-712 encoding: the independent reference for our fast digests."""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.messages import SignableMessage, encode_typed_data

from gridledger.eip712 import Domain, StructType

_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def eth_account_message(
    domain: Domain, struct: StructType, values: Sequence[int | str | bytes | bool]
) -> SignableMessage:
    """The struct ``values`` as eth_account encodes them under ``domain``."""
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": _DOMAIN_FIELDS,
                struct.name: [{"name": n, "type": t} for n, t in struct.fields],
            },
            "primaryType": struct.name,
            "domain": {
                "name": domain.name,
                "version": domain.version,
                "chainId": domain.chain_id,
                "verifyingContract": domain.verifying_contract,
            },
            "message": dict(zip((n for n, _ in struct.fields), values, strict=True)),
        }
    )
