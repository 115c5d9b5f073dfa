"""Merkle roots and proofs over stored readings; exactly-once anchoring across crashes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridledger.errors import ConflictError
from gridledger.merkle import EMPTY_ROOT, verify_proof
from gridledger.metering import (
    anchor_interval,
    reading_leaf,
    reading_proofs,
    reading_salt,
    readings_root,
)
from gridledger.privacy import LeafKey
from gridledger.store import Store
from tests.metering.factory import T0, fleet, register, signed

KEY = LeafKey(b"\x07" * 32)


class CrashError(Exception):
    pass


class ChainDouble:
    """Stands in for the ledger's contract: it keeps roots per interval and counts sends."""

    def __init__(self) -> None:
        self.roots: dict[int, bytes] = {}
        self.sends = 0
        self.crash_after_send = False

    def commit(self, interval_start_s: int, readings_root: bytes) -> str:
        if interval_start_s in self.roots:
            raise AssertionError("root sent twice: the contract would revert")
        self.sends += 1
        self.roots[interval_start_s] = readings_root
        if self.crash_after_send:
            self.crash_after_send = False
            raise CrashError("process died after the transaction was mined")
        return "0x" + f"{self.sends:064x}"

    def committed_root(self, interval_start_s: int) -> bytes | None:
        return self.roots.get(interval_start_s)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    meters = fleet(5)
    register(opened, meters)
    opened.insert_readings([signed(m, 1, imported_wh=10 * i) for i, m in enumerate(meters)])
    yield opened
    opened.close()


def test_every_stored_reading_has_a_proof_to_the_root(store: Store) -> None:
    stored = store.readings_in_interval(T0)
    root = readings_root([s.reading for s in stored], KEY)
    assert root == readings_root([s.reading for s in reversed(stored)], KEY)
    proofs = reading_proofs(stored, KEY)
    assert sorted(proofs) == sorted(s.id for s in stored)
    for s in stored:
        assert verify_proof(
            reading_leaf(s.reading, reading_salt(KEY, s.reading)), proofs[s.id], root
        )
    tampered = stored[0].reading.__class__(*stored[0].reading.values()[:-1], 1)
    assert not verify_proof(
        reading_leaf(tampered, reading_salt(KEY, tampered)), proofs[stored[0].id], root
    )
    assert readings_root([], KEY) == EMPTY_ROOT


def test_anchoring_sends_once_and_is_idempotent(store: Store) -> None:
    chain = ChainDouble()
    first = anchor_interval(store, chain, T0, KEY)
    again = anchor_interval(store, chain, T0, KEY)
    assert chain.sends == 1 and first == again and first.status == "mined"
    assert chain.roots[T0].hex() == first.readings_root[2:]


def test_crash_before_sending_resends_the_recorded_root(store: Store) -> None:
    chain = ChainDouble()
    root = readings_root([s.reading for s in store.readings_in_interval(T0)], KEY)
    store.record_anchor_pending(T0, "0x" + root.hex())  # died right after writing intent
    row = anchor_interval(store, chain, T0, KEY)
    assert chain.sends == 1 and row.status == "mined" and row.tx_hash is not None


def test_crash_after_mining_does_not_send_again(store: Store) -> None:
    chain = ChainDouble()
    chain.crash_after_send = True
    with pytest.raises(CrashError):
        anchor_interval(store, chain, T0, KEY)
    assert store.anchor(T0) is not None and store.anchor(T0).status == "pending"  # type: ignore[union-attr]
    row = anchor_interval(store, chain, T0, KEY)
    assert chain.sends == 1 and row.status == "mined"


def test_a_different_root_on_chain_is_a_conflict(store: Store) -> None:
    chain = ChainDouble()
    chain.roots[T0] = b"\x01" * 32
    with pytest.raises(ConflictError, match="chain holds root"):
        anchor_interval(store, chain, T0, KEY)
