"""Flexibility offers as signed orders, their leaves in the interval roots, and the payment line
through settlement and statement verification."""

from __future__ import annotations

import dataclasses

import pytest

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import OrderRejected
from gridledger.flex import FlexOffer
from gridledger.flex.commitments import (
    FlexAwardLine,
    FlexOrder,
    combined_proof,
    combined_root,
    flex_award_leaf,
    flex_award_salt,
    flex_order_leaf,
    flex_order_salt,
    sign_flex_order,
    verify_flex_order,
)
from gridledger.market import Order, order_leaf
from gridledger.market.commitments import order_salt
from gridledger.merkle import build_tree, verify_proof
from gridledger.metering import Reading, reading_leaf
from gridledger.metering.anchoring import reading_salt
from gridledger.privacy.salts import LeafKey
from gridledger.settlement import Delivery, FlexDelivery, Tariffs, settle_with_delivery
from gridledger.settlement.statements import (
    IntervalStatement,
    OnChainCommitment,
    Proven,
    Statement,
    verify_statement,
)

DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
KEY = key_from_seed("flex-household")
HOUSE = address_of(KEY)
OPERATOR, SUPPLIER = address_of(key_from_seed("dso")), address_of(key_from_seed("supplier"))
TARIFFS = Tariffs(300_000, 80_000)
LEAF_KEY = LeafKey(b"\x07" * 32)
START = 1_465_552_800


def _offer(power_w: int = 4_000) -> FlexOrder:
    return FlexOrder(FlexOffer(HOUSE, "feeder-1", "up", power_w, START, 40_000), nonce=7)


def test_a_signed_flex_offer_verifies_and_a_changed_one_does_not() -> None:
    signed = sign_flex_order(_offer(), KEY, DOMAIN)
    assert verify_flex_order(signed, DOMAIN) == _offer()
    forged = dataclasses.replace(signed, order=_offer(power_w=40_000))
    with pytest.raises(OrderRejected) as caught:
        verify_flex_order(forged, DOMAIN)
    assert caught.value.code == "bad_signature"


def test_flex_leaves_share_the_orders_root_with_energy_orders() -> None:
    order = Order(HOUSE, "sell", 1_800, 90_000, START, 6)
    energy = [order_leaf(order, order_salt(LEAF_KEY, order))]
    flex = flex_order_leaf(_offer(), flex_order_salt(LEAF_KEY, _offer()))
    assert flex not in energy
    root = combined_root(energy, [flex])
    assert verify_proof(flex, combined_proof(energy, [flex], flex), root)
    assert verify_proof(energy[0], combined_proof(energy, [flex], energy[0]), root)
    other = flex_order_leaf(_offer(power_w=4_001), flex_order_salt(LEAF_KEY, _offer()))
    assert not verify_proof(other, combined_proof(energy, [flex], flex), root)


def test_the_grid_operator_pays_delivered_flexibility_only() -> None:
    awards = [
        FlexDelivery(HOUSE, "up", -3_000, 1_000, 40_000),  # exported 1 800 instead of 3 000
        FlexDelivery("no-show", "up", -3_000, 1_000, 40_000),  # did not respond
    ]
    settled = settle_with_delivery(
        [],
        {HOUSE: Delivery(0, 1_800), "no-show": Delivery(0, 3_000)},
        TARIFFS,
        grid_operator=OPERATOR,
        supplier=SUPPLIER,
        flexibility=awards,
    )
    flex = [line for line in settled.lines if line.kind == "flexibility"]
    assert [(x.participant, x.energy_wh, x.amount_micro, x.counterparty) for x in flex] == [
        (HOUSE, 1_000, 40_000, OPERATOR)
    ]
    assert settled.deltas_micro[OPERATOR] == -40_000
    assert settled.deltas_micro[HOUSE] == 40_000 + 1_800 * 80  # flexibility + feed-in
    assert sum(settled.deltas_micro.values()) == 0


def _statement(
    award: FlexAwardLine, proven_under: FlexAwardLine | None = None
) -> tuple[Statement, dict[int, OnChainCommitment]]:
    """The household's interval: one reading and one award proven under the result root."""
    committed = proven_under or award
    reading = Reading(HOUSE, 1, START, 900, 0, 1_800)
    r_leaf = reading_leaf(reading, reading_salt(LEAF_KEY, reading))
    a_salt = flex_award_salt(LEAF_KEY, committed)
    a_leaf = flex_award_leaf(committed, a_salt)
    result_tree, readings_tree = build_tree([a_leaf]), build_tree([r_leaf])
    settled = settle_with_delivery(
        [],
        {HOUSE: Delivery(0, 1_800)},
        TARIFFS,
        grid_operator=OPERATOR,
        supplier=SUPPLIER,
        flexibility=[FlexDelivery(HOUSE, "up", -3_000, 1_000, 40_000)],
    )
    lines = tuple(settled.lines_of(HOUSE))
    interval = IntervalStatement(
        START,
        (),
        (),
        (Proven(reading, tuple(readings_tree.proof(r_leaf)), reading_salt(LEAF_KEY, reading)),),
        lines,
        sum(x.amount_micro for x in lines),
        (Proven(award, tuple(result_tree.proof(a_leaf)), a_salt),),
    )
    chain = {
        START: OnChainCommitment(
            build_tree([]).root,
            result_tree.root,
            readings_tree.root,
            True,
            settled.deltas_micro[HOUSE],
        )
    }
    return Statement(HOUSE, START, START + 900, (interval,)), chain


AWARD = FlexAwardLine(START, HOUSE, 7, "up", 1_000, 40_000, -3_000)


def test_a_statement_with_a_flexibility_line_verifies_against_the_roots() -> None:
    statement, chain = _statement(AWARD)
    kinds = [line.kind for line in statement.intervals[0].lines]
    assert kinds == ["flexibility", "imbalance-export"]
    assert (
        verify_statement(statement, chain, TARIFFS, grid_operator=OPERATOR, supplier=SUPPLIER) == []
    )


def test_an_inflated_award_or_payment_is_caught() -> None:
    # the operator shows an award larger than the one it committed: the proof fails
    statement, chain = _statement(dataclasses.replace(AWARD, energy_wh=1_200), proven_under=AWARD)
    problems = verify_statement(
        statement, chain, TARIFFS, grid_operator=OPERATOR, supplier=SUPPLIER
    )
    assert any("flexibility award 1: its Merkle proof" in p for p in problems)
    # a flexibility line paying more than the proven award and readings give
    statement, chain = _statement(AWARD)
    interval = statement.intervals[0]
    richer = (dataclasses.replace(interval.lines[0], amount_micro=90_000), *interval.lines[1:])
    tampered = dataclasses.replace(
        statement, intervals=(dataclasses.replace(interval, lines=richer),)
    )
    problems = verify_statement(tampered, chain, TARIFFS, grid_operator=OPERATOR, supplier=SUPPLIER)
    assert any("(flexibility): 90000 micro, the proven facts give 40000" in p for p in problems)
