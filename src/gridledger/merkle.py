"""Merkle commitments compatible with OpenZeppelin's ``MerkleProof.verify``.

Leaves are double-hashed ``keccak(keccak(abi.encode(fields)))`` like OpenZeppelin's
StandardMerkleTree (so a leaf can never be mistaken for an inner node), sorted so the root does
not depend on arrival order, and paired with a commutative hash (``keccak(min || max)``).
An odd node at the end of a layer is promoted unchanged, so its proof simply skips that layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gridledger.eip712 import keccak

EMPTY_ROOT = b"\0" * 32


def leaf_hash(words: bytes) -> bytes:
    """Hash the ABI encoding of one record (its 32-byte words concatenated) into a leaf."""
    return keccak(keccak(words))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """A tree over leaf hashes; build it with :func:`build_tree`."""

    layers: tuple[tuple[bytes, ...], ...]
    _index: dict[bytes, int] = field(repr=False, compare=False)

    @property
    def root(self) -> bytes:
        return self.layers[-1][0] if self.layers[0] else EMPTY_ROOT

    def __len__(self) -> int:
        return len(self.layers[0])

    def proof(self, leaf: bytes) -> list[bytes]:
        """Sibling hashes from the leaf up to the root; raises KeyError for an unknown leaf."""
        position = self._index[leaf]
        siblings: list[bytes] = []
        for layer in self.layers[:-1]:
            sibling = position ^ 1
            if sibling < len(layer):
                siblings.append(layer[sibling])
            position //= 2
        return siblings


def build_tree(leaves: Sequence[bytes]) -> MerkleTree:
    """Build the tree over leaf hashes (duplicates are kept once: a leaf commits to its record)."""
    ordered = tuple(sorted(set(leaves)))
    layers = [ordered]
    while len(layers[-1]) > 1:
        below = layers[-1]
        above = [hash_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        layers.append(tuple(above))
    return MerkleTree(tuple(layers), {leaf: i for i, leaf in enumerate(ordered)})


def verify_proof(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` links ``leaf`` to ``root`` (what ``MerkleProof.verify`` computes)."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
