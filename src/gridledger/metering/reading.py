"""The signed meter reading: one meter, one interval, imported and exported energy in Wh.

A smart meter signs the EIP-712 struct

    Reading(address meter,uint64 sequence,uint64 intervalStartS,uint32 intervalLengthS,
            uint64 importedWh,uint64 exportedWh)

under the gridledger domain (name "gridledger", version "1", chain id, Market contract).
``docs/reading-format.md`` documents the wire format (JSON) and the Merkle leaf encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gridledger.eip712 import (
    Domain,
    StructType,
    is_checksummed,
    keccak,
    sign_digest,
    typed_digest,
)
from gridledger.errors import ValidationError

READING_TYPE = StructType(
    "Reading",
    (
        ("meter", "address"),
        ("sequence", "uint64"),
        ("intervalStartS", "uint64"),
        ("intervalLengthS", "uint32"),
        ("importedWh", "uint64"),
        ("exportedWh", "uint64"),
    ),
)
# Databases store signed 64-bit integers: readings stay below 2**63 though uint64 allows more.
MAX_STORED_INT = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class Reading:
    """What a meter measured over one interval (energy in Wh, times in Unix seconds)."""

    meter: str
    sequence: int
    interval_start_s: int
    interval_length_s: int
    imported_wh: int
    exported_wh: int

    def values(self) -> tuple[str | int, ...]:
        """The struct fields in EIP-712 order."""
        return (
            self.meter,
            self.sequence,
            self.interval_start_s,
            self.interval_length_s,
            self.imported_wh,
            self.exported_wh,
        )

    @property
    def interval_end_s(self) -> int:
        return self.interval_start_s + self.interval_length_s


@dataclass(frozen=True, slots=True)
class SignedReading:
    """A reading with the meter's 65-byte r || s || v signature."""

    reading: Reading
    signature: bytes

    @property
    def signature_hex(self) -> str:
        return "0x" + self.signature.hex()


def encode_reading(reading: Reading) -> bytes:
    """ABI-encode the six fields as 32-byte words (checks ranges): the canonical encoding."""
    check_reading(reading, checksum=False)
    # Ranges are checked above, so plain to_bytes matches eip712.encode_word at a third the cost.
    return bytes.fromhex(reading.meter[2:]).rjust(32, b"\0") + b"".join(
        value.to_bytes(32, "big") for value in _int_values(reading)
    )


def _int_values(reading: Reading) -> tuple[int, ...]:
    return (
        reading.sequence,
        reading.interval_start_s,
        reading.interval_length_s,
        reading.imported_wh,
        reading.exported_wh,
    )


def reading_struct_hash(reading: Reading) -> bytes:
    return keccak(READING_TYPE.type_hash + encode_reading(reading))


def reading_digest(reading: Reading, domain: Domain) -> bytes:
    """The EIP-712 digest a meter signs for ``reading``."""
    return typed_digest(domain, reading_struct_hash(reading))


def sign_reading(reading: Reading, key: bytes, domain: Domain) -> SignedReading:
    """Sign ``reading`` with the meter's private key."""
    check_reading(reading)
    return SignedReading(reading, sign_digest(key, reading_digest(reading, domain)))


_INT_FIELDS = ("sequence", "interval_start_s", "interval_length_s", "imported_wh", "exported_wh")


def check_reading(reading: Reading, checksum: bool = True) -> None:
    """Reject readings that are malformed whatever their signature says.

    ``checksum=False`` skips the EIP-55 check (a keccak): verification compares the meter with
    the recovered, checksummed signer anyway.
    """
    meter = reading.meter
    if not isinstance(meter, str) or len(meter) != 42 or not meter.startswith("0x"):
        raise ValidationError("meter", f"not a 0x-prefixed 20-byte address: {meter!r}")
    try:
        bytes.fromhex(meter[2:])
    except ValueError:
        raise ValidationError("meter", f"not hex: {meter!r}") from None
    if checksum and not is_checksummed(meter):
        raise ValidationError("meter", f"not a checksummed address: {meter!r}")
    for field, value in zip(_INT_FIELDS, _int_values(reading), strict=True):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(field, f"must be an integer, got {type(value).__name__}")
        if not 0 <= value <= MAX_STORED_INT:
            raise ValidationError(field, f"must be between 0 and 2**63-1, got {value}")
    if reading.interval_length_s <= 0 or reading.interval_length_s >= 1 << 32:
        raise ValidationError(
            "interval_length_s", f"must be in 1..2**32-1, got {reading.interval_length_s}"
        )


_JSON_FIELDS = (
    ("meter", "meter"),
    ("sequence", "sequence"),
    ("interval_start_s", "intervalStartS"),
    ("interval_length_s", "intervalLengthS"),
    ("imported_wh", "importedWh"),
    ("exported_wh", "exportedWh"),
)


def signed_reading_to_json(signed: SignedReading) -> dict[str, Any]:
    """The JSON object a meter sends: camelCase struct fields plus a 0x-hex signature."""
    out: dict[str, Any] = {key: getattr(signed.reading, attr) for attr, key in _JSON_FIELDS}
    out["signature"] = signed.signature_hex
    return out


def signed_reading_from_json(data: Mapping[str, Any]) -> SignedReading:
    """Parse the JSON object; raises ValidationError naming the bad field."""
    if not isinstance(data, Mapping):
        raise ValidationError("reading", f"must be a JSON object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for attr, key in _JSON_FIELDS:
        if key not in data:
            raise ValidationError(key, "missing")
        values[attr] = data[key]
    reading = Reading(**values)
    check_reading(reading)
    return SignedReading(reading, _parse_signature(data.get("signature")))


def _parse_signature(raw: Any) -> bytes:
    if not isinstance(raw, str) or not raw.startswith("0x"):
        raise ValidationError("signature", "must be a 0x-prefixed hex string")
    try:
        signature = bytes.fromhex(raw[2:])
    except ValueError:
        raise ValidationError("signature", "not valid hex") from None
    if len(signature) != 65:
        raise ValidationError("signature", f"must be 65 bytes, got {len(signature)}")
    return signature
