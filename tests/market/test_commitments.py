"""Merkle commitments of orders and results, proofs, and the independent interval check."""

from __future__ import annotations

import dataclasses
import random

import eth_abi
import pytest

from gridledger.errors import NotFoundError, ValidationError
from gridledger.market import (
    Book,
    Order,
    TradeLine,
    clear,
    order_leaf,
    order_proof,
    order_salt,
    orders_root,
    participant_proofs,
    result_lines,
    result_root,
    trade_leaf,
    trade_salt,
)
from gridledger.market.commitments import TRADE_FIELDS, encode_order, encode_trade
from gridledger.market.orders import ORDER_TYPE
from gridledger.market.verify import verify_interval
from gridledger.merkle import EMPTY_ROOT, verify_proof
from gridledger.privacy import LeafKey
from tests.market.conftest import addr, order

FEE = 20_000
KEY = LeafKey(bytes(range(32)))


def interval_orders() -> list[Order]:
    return [
        order("alice", "buy", 1_500, 300_000, nonce=1),
        order("bob", "buy", 2_000, 260_000, nonce=1),
        order("carol", "sell", 1_000, 120_000, nonce=4),
        order("dave", "sell", 3_000, 200_000, nonce=2),
        order("alice", "buy", 500, 240_000, nonce=2),
        order("erin", "sell", 800, 290_000, nonce=9),
    ]


def test_abi_encodings_match_eth_abi() -> None:
    o = order("alice", "sell", 1_500, 300_000, nonce=3)
    assert encode_order(o) == eth_abi.encode(
        [t for _, t in ORDER_TYPE.fields], list(o.struct_values())
    )
    line = TradeLine(900, addr("alice"), 1, addr("bob"), 2, 3_000, 200_000, FEE)
    assert encode_trade(line) == eth_abi.encode(
        [t for _, t in TRADE_FIELDS], list(line.abi_values())
    )


def test_orders_root_ignores_arrival_order_and_commits_to_every_field() -> None:
    orders = interval_orders()
    root = orders_root(orders, KEY)
    assert orders_root(list(reversed(orders)), KEY) == root
    changed = [dataclasses.replace(orders[0], energy_wh=1_501), *orders[1:]]
    assert orders_root(changed, KEY) != root
    assert orders_root([], KEY) == EMPTY_ROOT
    for o in orders:
        assert verify_proof(order_leaf(o, order_salt(KEY, o)), order_proof(orders, o, KEY), root)
    with pytest.raises(NotFoundError):
        order_proof(orders, order("zed", "buy", 1, 1), KEY)


@pytest.mark.parametrize("mechanism", ["uniform", "pay-as-bid", "cda"])
def test_result_root_and_participant_proofs(mechanism: str) -> None:
    orders = interval_orders()
    result = clear(Book.from_orders(orders), mechanism, FEE)
    lines = result_lines(result)
    assert lines, "the fixture book crosses"
    root = result_root(result, KEY)
    for name in ("alice", "bob", "carol", "dave"):
        proofs = participant_proofs(lines, addr(name), KEY)
        assert proofs
        for line, proof in proofs:
            assert verify_proof(trade_leaf(line, trade_salt(KEY, line)), proof, root)
    assert participant_proofs(lines, addr("erin"), KEY) == []  # 290_000 ask never clears


def test_uniform_result_is_independent_of_arrival_order() -> None:
    orders = interval_orders()
    roots = set()
    for seed in range(5):
        shuffled = orders[:]
        random.Random(seed).shuffle(shuffled)
        roots.add(result_root(clear(Book.from_orders(shuffled), "uniform", FEE), KEY))
    assert len(roots) == 1


def test_result_lines_need_orders() -> None:
    book = Book.from_arrays([1, 2], [0, 1], [1, 1], [5, 1])
    with pytest.raises(ValidationError, match="book"):
        result_lines(clear(book, "uniform"))


def test_duplicate_orders_are_refused() -> None:
    o = order("alice", "buy", 1, 1)
    with pytest.raises(ValidationError, match="twice"):
        Book.from_orders([o, o])


@pytest.mark.parametrize("mechanism", ["uniform", "pay-as-bid", "cda"])
def test_verify_interval_accepts_an_honest_publication(mechanism: str) -> None:
    orders = interval_orders()
    result = clear(Book.from_orders(orders), mechanism, FEE)
    report = verify_interval(
        orders,
        result_lines(result),
        orders_root(orders, KEY),
        result_root(result, KEY),
        mechanism,
        leaf_key=KEY,
        grid_fee_micro_per_kwh=FEE,
    )
    assert report.ok, report.problems
    assert report.problems == ()


def test_verify_interval_catches_each_kind_of_tampering() -> None:
    orders = interval_orders()
    result = clear(Book.from_orders(orders), "uniform", FEE)
    lines = result_lines(result)
    o_root, r_root = orders_root(orders, KEY), result_root(result, KEY)

    skimmed = [dataclasses.replace(lines[0], price_micro_per_kwh=lines[0].price_micro_per_kwh - 1)]
    report = verify_interval(
        orders,
        [*skimmed, *lines[1:]],
        o_root,
        r_root,
        "uniform",
        leaf_key=KEY,
        grid_fee_micro_per_kwh=FEE,
    )
    assert (report.published_result_ok, report.result_root_ok, report.orders_root_ok) == (
        False,
        True,
        True,
    )

    dropped = orders[:-1]  # an order was accepted but left out of the published set
    report = verify_interval(
        dropped, lines, o_root, r_root, "uniform", leaf_key=KEY, grid_fee_micro_per_kwh=FEE
    )
    assert not report.orders_root_ok and not report.ok

    other = result_root(clear(Book.from_orders(orders), "pay-as-bid", FEE), KEY)
    report = verify_interval(
        orders, lines, o_root, other, "uniform", leaf_key=KEY, grid_fee_micro_per_kwh=FEE
    )
    assert not report.result_root_ok and report.published_result_ok

    report = verify_interval(
        orders, lines, o_root, r_root, "uniform", leaf_key=KEY, grid_fee_micro_per_kwh=0
    )
    assert not report.ok  # a different fee gives a different result
