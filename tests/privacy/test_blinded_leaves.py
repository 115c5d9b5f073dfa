"""A statement's reading proof cannot be brute-forced into a neighbour's reading.

The attacker is a household holding its own statement: its readings, their proofs and salts, and
everything public (every meter address in the registry, the interval, the sequence). The first
sibling in its proof is a neighbour's reading leaf; it tries every plausible reading of every
meter. Against the old unsalted leaf format (kept below) this finds the neighbour's reading;
against the salted leaves it finds nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gridledger.merkle import build_tree, leaf_hash, verify_proof
from gridledger.metering import Reading, encode_reading, readings_root
from gridledger.node.statements import interval_statement
from gridledger.privacy.keys import leaf_key_of
from gridledger.store import Store
from tests.metering.factory import INTERVAL_S, RATED_POWER_W, T0, fleet, register, signed

MAX_WH = RATED_POWER_W * INTERVAL_S // 3600  # the most a meter can record in one interval
NEIGHBOUR_WH = [1_234, 0, 871, 2_013]  # imported Wh of the four households


def old_unsalted_leaf(reading: Reading) -> bytes:
    """The leaf format before salts: the hash of the six public-shaped fields alone."""
    return leaf_hash(encode_reading(reading))


def candidates(meters: Sequence[str]) -> Iterator[tuple[Reading, bytes]]:
    """Every reading a 10 kW meter can record with one direction zero (the common case), with
    its ABI words built directly (encode_reading's range checks would dominate the search)."""
    for meter in meters:
        head = bytes.fromhex(meter[2:]).rjust(32, b"\0") + b"".join(
            v.to_bytes(32, "big") for v in (1, T0, INTERVAL_S)
        )
        for wh in range(MAX_WH + 1):
            word = wh.to_bytes(32, "big")
            yield Reading(meter, 1, T0, INTERVAL_S, wh, 0), head + word + bytes(32)
            if wh:
                yield Reading(meter, 1, T0, INTERVAL_S, 0, wh), head + bytes(32) + word


def brute_force(
    targets: Sequence[bytes], meters: Sequence[str], salts: Sequence[bytes]
) -> list[Reading]:
    """Readings whose leaf, unsalted or with any salt the attacker holds, is one of ``targets``."""
    wanted = set(targets)
    return [
        reading
        for reading, words in candidates(meters)
        if any(leaf_hash(words + salt) in wanted for salt in salts)
    ]


def test_the_search_builds_the_real_encoding() -> None:
    reading, words = next(candidates([fleet(1)[0].address]))
    assert words == encode_reading(reading)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'leaves.sqlite'}")  # the leak is backend-free
    meters = fleet(4)
    register(opened, meters)
    opened.insert_readings(
        [signed(m, 1, imported_wh=wh) for m, wh in zip(meters, NEIGHBOUR_WH, strict=True)]
    )
    yield opened
    opened.close()


def test_salted_statement_proof_does_not_reveal_the_neighbour(store: Store) -> None:
    me = fleet(4)[0]
    meters = [m.address for m in store.meters()]
    statement = interval_statement(store, me.owner, T0, [])
    (mine,) = statement.readings
    assert mine.item.imported_wh == NEIGHBOUR_WH[0]
    root = bytes.fromhex(store_root(store))
    assert verify_proof(leaf_hash(encode_reading(mine.item) + mine.salt), mine.proof, root)
    attacker_salts = [b"", mine.salt]  # no salt, or reuse its own
    assert brute_force(mine.proof, meters, attacker_salts) == []


def store_root(store: Store) -> str:
    """The root the operator commits: rebuilt the way MarketOperator.roots_of does."""
    readings = [s.reading for s in store.readings_in_interval(T0)]
    return readings_root(readings, leaf_key_of(store)).hex()


def test_the_old_unsalted_format_leaked_the_neighbour(store: Store) -> None:
    me = fleet(4)[0]
    meters = [m.address for m in store.meters()]
    readings = [s.reading for s in store.readings_in_interval(T0)]
    tree = build_tree([old_unsalted_leaf(r) for r in readings])
    mine = next(r for r in readings if r.meter == me.address)
    proof = tree.proof(old_unsalted_leaf(mine))
    recovered = brute_force(proof[:1], meters, [b""])
    assert len(recovered) == 1
    assert recovered[0] in readings and recovered[0] != mine
    assert recovered[0].imported_wh in NEIGHBOUR_WH[1:]
