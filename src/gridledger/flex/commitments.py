"""Flexibility offers as signed orders of a new kind, and their Merkle leaves.

A flexibility offer is the EIP-712 struct ``FlexOffer(address participant,bytes32 zone,
uint8 direction,uint64 powerW,uint64 priceMicroPerKwh,uint64 intervalStartS,uint64 nonce)``
(direction 0 = up, 1 = down; ``zone`` is keccak256 of the zone's name), signed with the
participant's key under the same domain as energy orders.

Offers go into the interval's **orders tree** and awards into its **result tree**, next to the
energy orders and trades, so the same two on-chain roots commit to both markets. Their leaves
follow market/commitments.py (ABI words, a secret salt word last, ``leaf_hash``) but start with
the struct's type hash, so a flexibility leaf (9 or 10 words) can never be read as an energy
order (7 words) or trade (9 words, first word an interval start far below any keccak hash):

* offer leaf: ``abi.encode(FLEX_OFFER_TYPEHASH, participant, zone, direction, powerW,
  priceMicroPerKwh, intervalStartS, nonce, salt)``;
* award leaf: ``abi.encode(FLEX_AWARD_TYPEHASH, intervalStartS, participant, offerNonce,
  direction, energyWh, priceMicroPerKwh, int64 baselineNetImportWh, curtailedWh, salt)``: the
  award carries the household's committed baseline and the DSO's own curtailment of it, the
  facts :func:`gridledger.flex.baseline.delivered_flexibility_wh` needs besides the readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils.crypto import keccak

from gridledger.eip712 import (
    Domain,
    StructType,
    address_of,
    encode_word,
    recover_address,
    sign_digest,
    typed_digest,
)
from gridledger.errors import OrderRejected, ValidationError
from gridledger.flex._types import Direction, FlexOffer
from gridledger.merkle import build_tree, leaf_hash
from gridledger.privacy.salts import LeafKey, check_salt

DIRECTION_CODES = {"up": 0, "down": 1}
FLEX_OFFER_TYPE = StructType(
    "FlexOffer",
    (
        ("participant", "address"),
        ("zone", "bytes32"),
        ("direction", "uint8"),
        ("powerW", "uint64"),
        ("priceMicroPerKwh", "uint64"),
        ("intervalStartS", "uint64"),
        ("nonce", "uint64"),
    ),
)
FLEX_AWARD_TYPE = StructType(
    "FlexAward",
    (
        ("intervalStartS", "uint64"),
        ("participant", "address"),
        ("offerNonce", "uint64"),
        ("direction", "uint8"),
        ("energyWh", "uint64"),
        ("priceMicroPerKwh", "uint64"),
        ("baselineNetImportWh", "int64"),
        ("curtailedWh", "uint64"),
    ),
)


def zone_id(zone: str) -> bytes:
    return keccak(zone.encode())


@dataclass(frozen=True)
class FlexOrder:
    """A flexibility offer with its nonce (the participant's, shared with its energy orders)."""

    offer: FlexOffer
    nonce: int

    def struct_values(self) -> tuple[str | bytes | int, ...]:
        o = self.offer
        return (
            o.participant,
            zone_id(o.zone),
            DIRECTION_CODES[o.direction],
            o.power_w,
            o.price_micro_per_kwh,
            o.interval_start,
            self.nonce,
        )

    def digest(self, domain: Domain) -> bytes:
        return typed_digest(domain, FLEX_OFFER_TYPE.hash_struct(self.struct_values()))


@dataclass(frozen=True)
class SignedFlexOrder:
    order: FlexOrder
    signature: bytes


def sign_flex_order(order: FlexOrder, private_key: bytes, domain: Domain) -> SignedFlexOrder:
    if address_of(private_key) != order.offer.participant:
        raise ValidationError("private_key", "does not belong to the offer's participant")
    return SignedFlexOrder(order, sign_digest(private_key, order.digest(domain)))


def verify_flex_order(signed: SignedFlexOrder, domain: Domain) -> FlexOrder:
    """The order when its signature is the participant's; else OrderRejected("bad_signature")."""
    try:
        signer = recover_address(signed.order.digest(domain), signed.signature)
    except ValidationError as exc:
        raise OrderRejected("bad_signature", "signature", exc.reason) from None
    if signer != signed.order.offer.participant:
        raise OrderRejected(
            "bad_signature", "signature", f"signed by {signer}, not the participant"
        )
    return signed.order


@dataclass(frozen=True)
class FlexAwardLine:
    """One published flexibility award (what the statement's "flexibility" line is paid on)."""

    interval_start_s: int
    participant: str
    offer_nonce: int
    direction: Direction
    energy_wh: int
    price_micro_per_kwh: int
    baseline_net_import_wh: int
    curtailed_wh: int = 0

    def abi_values(self) -> tuple[int | str, ...]:
        return (
            self.interval_start_s,
            self.participant,
            self.offer_nonce,
            DIRECTION_CODES[self.direction],
            self.energy_wh,
            self.price_micro_per_kwh,
            self.baseline_net_import_wh,
            self.curtailed_wh,
        )


def _words(values: Sequence[int | str | bytes], fields: Sequence[tuple[str, str]]) -> bytes:
    return b"".join(map(encode_word, values, fields))


def flex_order_salt(key: LeafKey, order: FlexOrder) -> bytes:
    identity = (order.offer.interval_start, order.offer.participant, order.nonce)
    fields = (("intervalStartS", "uint64"), ("participant", "address"), ("nonce", "uint64"))
    return key.salt(b"flex-offer", _words(identity, fields))


def flex_award_salt(key: LeafKey, line: FlexAwardLine) -> bytes:
    return key.salt(b"flex-award", _words(line.abi_values()[:3], FLEX_AWARD_TYPE.fields[:3]))


def flex_order_leaf(order: FlexOrder, salt: bytes) -> bytes:
    words = FLEX_OFFER_TYPE.type_hash + _words(order.struct_values(), FLEX_OFFER_TYPE.fields)
    return leaf_hash(words + check_salt(salt))


def flex_award_leaf(line: FlexAwardLine, salt: bytes) -> bytes:
    words = FLEX_AWARD_TYPE.type_hash + _words(line.abi_values(), FLEX_AWARD_TYPE.fields)
    return leaf_hash(words + check_salt(salt))


def combined_root(energy_leaves: Sequence[bytes], flex_leaves: Sequence[bytes]) -> bytes:
    """One interval root over energy and flexibility leaves (the trees sort their leaves)."""
    return build_tree([*energy_leaves, *flex_leaves]).root


def combined_proof(
    energy_leaves: Sequence[bytes], flex_leaves: Sequence[bytes], leaf: bytes
) -> list[bytes]:
    return build_tree([*energy_leaves, *flex_leaves]).proof(leaf)
