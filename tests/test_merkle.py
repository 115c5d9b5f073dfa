from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.merkle import EMPTY_ROOT, build_tree, leaf_hash, verify_proof


@settings(max_examples=100)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=40, unique=True))
def test_every_leaf_proves_against_the_root_in_any_order(records: list[bytes]) -> None:
    leaves = [leaf_hash(r) for r in records]
    tree = build_tree(leaves)
    assert build_tree(list(reversed(leaves))).root == tree.root
    for leaf in leaves:
        assert verify_proof(leaf, tree.proof(leaf), tree.root)


def test_a_changed_record_does_not_verify() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(7)]
    tree = build_tree(leaves)
    assert not verify_proof(leaf_hash(b"\x63"), tree.proof(leaves[3]), tree.root)


def test_empty_tree_has_the_zero_root() -> None:
    assert build_tree([]).root == EMPTY_ROOT
