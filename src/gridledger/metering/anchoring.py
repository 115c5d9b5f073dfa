"""Merkle commitments over stored readings, and exactly-once anchoring of each interval's root.

A leaf is ``keccak(keccak(abi.encode(meter, sequence, intervalStartS, intervalLengthS,
importedWh, exportedWh, bytes32 salt)))`` (gridledger.merkle, OpenZeppelin-compatible), so a
contract can check one reading against the anchored root with ``MerkleProof.verify``. The salt
is secret and derived from the operator's leaf key and (meter, sequence) (see
:mod:`gridledger.privacy.salts`), so a proof cannot be brute-forced into a neighbour's reading.

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
from gridledger.privacy.salts import LeafKey, check_salt

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


def reading_salt(key: LeafKey, reading: Reading) -> bytes:
    meter_word = bytes.fromhex(reading.meter[2:]).rjust(32, b"\0")
    return key.salt(b"reading", meter_word + reading.sequence.to_bytes(32, "big"))


def reading_leaf(reading: Reading, salt: bytes) -> bytes:
    return leaf_hash(encode_reading(reading) + check_salt(salt))


def _leaves(readings: Sequence[Reading], key: LeafKey) -> list[bytes]:
    return [reading_leaf(r, reading_salt(key, r)) for r in readings]


def readings_root(readings: Sequence[Reading], key: LeafKey) -> bytes:
    """The Merkle root over the readings (order does not matter; empty gives 32 zero bytes)."""
    return build_tree(_leaves(readings, key)).root


def reading_proofs(
    stored: Sequence[StoredReading], key: LeafKey, erased: Sequence[bytes] = ()
) -> dict[int, list[bytes]]:
    """A Merkle proof per reading id, against ``readings_root`` of the same readings (plus the
    leaf hashes of readings ``erased`` on request since the root was committed)."""
    leaves = _leaves([s.reading for s in stored], key)
    tree = build_tree(leaves + list(erased))
    return {s.id: tree.proof(leaf) for s, leaf in zip(stored, leaves, strict=True)}


def anchor_interval(
    store: Store, chain: AnchorChain, interval_start_s: int, key: LeafKey
) -> AnchorRow:
    """Anchor the interval's readings root on chain exactly once; safe to re-run after a crash."""
    existing = store.anchor(interval_start_s)
    if existing is None:
        stored = store.readings_in_interval(interval_start_s)
        root = readings_root([s.reading for s in stored], key)
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
