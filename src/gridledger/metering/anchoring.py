"""Merkle commitments over stored readings, and exactly-once anchoring of each interval's root.

A leaf is ``keccak(keccak(abi.encode(meter, sequence, intervalStartS, intervalLengthS,
importedWh, exportedWh)))`` (gridledger.merkle, OpenZeppelin-compatible), so a contract can check
one reading against the anchored root with ``MerkleProof.verify``.

Anchoring writes its intent ('pending') before sending and, after a crash, asks the chain what
it already holds before sending again; the chain side is the small :class:`AnchorChain` protocol
that ``gridledger.ledger`` implements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from gridledger.errors import ConflictError
from gridledger.merkle import build_tree, leaf_hash
from gridledger.metering.reading import Reading, encode_reading

if TYPE_CHECKING:
    from gridledger.store import AnchorRow, Store, StoredReading


class AnchorChain(Protocol):
    """The chain side of anchoring."""

    def commit(self, interval_start_s: int, readings_root: bytes) -> str:
        """Send the root; return the transaction hash once it is mined."""
        ...

    def committed_root(self, interval_start_s: int) -> bytes | None:
        """The root the chain holds for the interval, or None."""
        ...


def reading_leaf(reading: Reading) -> bytes:
    return leaf_hash(encode_reading(reading))


def readings_root(readings: Sequence[Reading]) -> bytes:
    """The Merkle root over the readings (order does not matter; empty gives 32 zero bytes)."""
    return build_tree([reading_leaf(r) for r in readings]).root


def reading_proofs(stored: Sequence[StoredReading]) -> dict[int, list[bytes]]:
    """A Merkle proof per reading id, against ``readings_root`` of the same readings."""
    tree = build_tree([reading_leaf(s.reading) for s in stored])
    return {s.id: tree.proof(reading_leaf(s.reading)) for s in stored}


def anchor_interval(store: Store, chain: AnchorChain, interval_start_s: int) -> AnchorRow:
    """Anchor the interval's readings root on chain exactly once; safe to re-run after a crash."""
    existing = store.anchor(interval_start_s)
    if existing is None:
        root = readings_root([s.reading for s in store.readings_in_interval(interval_start_s)])
        existing = store.record_anchor_pending(interval_start_s, "0x" + root.hex())
    if existing.status == "mined":
        return existing
    root = bytes.fromhex(existing.readings_root[2:])
    on_chain = chain.committed_root(interval_start_s)
    if on_chain is None:
        return store.mark_anchor_mined(interval_start_s, chain.commit(interval_start_s, root))
    if on_chain != root:
        raise ConflictError(
            f"interval {interval_start_s}: chain holds root 0x{on_chain.hex()}, "
            f"store recorded {existing.readings_root}"
        )
    # Sent before a crash, mined, never recorded: the transaction hash is not known here.
    return store.mark_anchor_mined(interval_start_s, existing.tx_hash)
