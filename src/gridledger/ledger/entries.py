"""Packing of settlement entries exactly as ``Market.settleInterval`` reads them.

Each entry is one 32-byte word: ``address << 96 | uint96(int96 deltaMicro)``. Entries are sorted
by address (the contract rejects any other order), which makes the list, and its hash in the
IntervalSettled event, canonical for a given set of deltas.
"""

from __future__ import annotations

from collections.abc import Mapping

from eth_utils.address import to_checksum_address

from gridledger.errors import ValidationError

_INT96_MIN = -(1 << 95)
_INT96_MAX = (1 << 95) - 1
_UINT96_MASK = (1 << 96) - 1


def pack_entry(account: str, delta_micro: int) -> bytes:
    if not _INT96_MIN <= delta_micro <= _INT96_MAX:
        raise ValidationError("delta_micro", f"out of int96 range for {account}: {delta_micro}")
    word = (int(account, 16) << 96) | (delta_micro & _UINT96_MASK)
    return word.to_bytes(32, "big")


def unpack_entry(entry: bytes) -> tuple[str, int]:
    word = int.from_bytes(entry, "big")
    raw_delta = word & _UINT96_MASK
    delta_micro = raw_delta - (1 << 96) if raw_delta >> 95 else raw_delta
    return to_checksum_address((word >> 96).to_bytes(20, "big")), delta_micro


def pack_entries(deltas_micro: Mapping[str, int]) -> list[bytes]:
    """Entries sorted by address; two spellings of one address are an error, not a merge."""
    by_address: dict[int, tuple[str, int]] = {}
    for account, delta_micro in deltas_micro.items():
        key = int(to_checksum_address(account), 16)
        if key in by_address:
            raise ValidationError("deltas_micro", f"address listed twice: {account}")
        by_address[key] = (account, delta_micro)
    return [pack_entry(*by_address[key]) for key in sorted(by_address)]
