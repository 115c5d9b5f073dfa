"""Order signing and every rejection reason of verify_order."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account import Account

from gridledger.eip712 import Domain, sign_digest
from gridledger.errors import OrderRejected, ValidationError
from gridledger.market import (
    ORDER_TYPE,
    InMemoryOrderContext,
    SignedOrder,
    escrow_required_micro,
    sign_order,
    verify_order,
)
from tests.market.conftest import INTERVAL_S, addr, key, order
from tests.support.eip712 import eth_account_message

FEE = 20_000


def context(**changes: object) -> InMemoryOrderContext:
    base = InMemoryOrderContext(
        open_interval_start_s=INTERVAL_S,
        escrow_micro={addr("alice"): 1_000_000, addr("bob"): 0},
        grid_fee_micro_per_kwh=FEE,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def reject_code(signed: SignedOrder, domain: Domain, ctx: InMemoryOrderContext) -> str:
    with pytest.raises(OrderRejected) as info:
        verify_order(signed, domain, ctx)
    return info.value.code


def test_signed_order_verifies_and_matches_eth_account(domain: Domain) -> None:
    o = order("alice", "buy", 2_000, 250_000, nonce=7)
    signed = sign_order(o, key("alice"), domain)
    assert verify_order(signed, domain, context()) == o
    message = eth_account_message(domain, ORDER_TYPE, o.struct_values())
    assert Account.recover_message(message, signature=signed.signature) == o.participant


def test_tampered_order_is_bad_signature(domain: Domain) -> None:
    signed = sign_order(order("alice", "sell", 1_000, 90_000), key("alice"), domain)
    forged = SignedOrder(dataclasses.replace(signed.order, energy_wh=9_000), signed.signature)
    assert reject_code(forged, domain, context()) == "bad_signature"


def test_other_domain_is_bad_signature(domain: Domain) -> None:
    signed = sign_order(order("alice", "sell", 1_000, 90_000), key("alice"), domain)
    other_chain = dataclasses.replace(domain, chain_id=1)
    assert reject_code(signed, other_chain, context()) == "bad_signature"


def test_signature_by_someone_else_is_bad_signature(domain: Domain) -> None:
    o = order("alice", "sell", 1_000, 90_000)
    stolen = SignedOrder(o, sign_digest(key("mallory"), o.digest(domain)))
    assert reject_code(stolen, domain, context()) == "bad_signature"
    truncated = SignedOrder(o, sign_order(o, key("alice"), domain).signature[:64])
    assert reject_code(truncated, domain, context()) == "bad_signature"


def test_sign_order_refuses_a_foreign_key(domain: Domain) -> None:
    with pytest.raises(ValidationError, match="private_key"):
        sign_order(order("alice", "buy", 1, 1), key("bob"), domain)


def test_unknown_and_suspended_participants(domain: Domain) -> None:
    carol = sign_order(order("carol", "sell", 1_000, 1), key("carol"), domain)
    assert reject_code(carol, domain, context()) == "unknown_participant"
    alice = sign_order(order("alice", "sell", 1_000, 1), key("alice"), domain)
    assert reject_code(alice, domain, context(suspended={addr("alice")})) == "suspended_participant"


def test_wrong_interval_and_closed_market(domain: Domain) -> None:
    late = sign_order(
        order("alice", "sell", 1_000, 1, interval=INTERVAL_S - 900), key("alice"), domain
    )
    assert reject_code(late, domain, context()) == "wrong_interval"
    now = sign_order(order("alice", "sell", 1_000, 1), key("alice"), domain)
    assert reject_code(now, domain, context(open_interval_start_s=None)) == "wrong_interval"


def test_nonce_reuse_is_rejected(domain: Domain) -> None:
    ctx = context()
    first = sign_order(order("alice", "sell", 1_000, 1, nonce=3), key("alice"), domain)
    ctx.accept(verify_order(first, domain, ctx))
    again = sign_order(order("alice", "sell", 2_000, 1, nonce=3), key("alice"), domain)
    assert reject_code(again, domain, ctx) == "nonce_reused"


@pytest.mark.parametrize(("energy_wh", "price"), [(10_000_001, 1), (1, 10_000_001)])
def test_out_of_bounds(domain: Domain, energy_wh: int, price: int) -> None:
    signed = sign_order(order("alice", "sell", energy_wh, price), key("alice"), domain)
    with pytest.raises(OrderRejected) as info:
        verify_order(signed, domain, context())
    assert info.value.code == "out_of_bounds"
    assert info.value.field == ("energy_wh" if energy_wh > 1 else "price_micro_per_kwh")


def test_escrow_is_exact_and_counts_other_accepted_buys(domain: Domain) -> None:
    # 3 kWh at 0.3 + fee 0.02 per kWh = 960_000 micro of the 1_000_000 escrow.
    assert escrow_required_micro(3_000, 300_000, FEE) == 960_000
    assert escrow_required_micro(1, 1, 0) == 1  # rounded up, never down
    ctx = context(escrow_micro={addr("alice"): 960_000})
    exact = sign_order(order("alice", "buy", 3_000, 300_000, nonce=1), key("alice"), domain)
    ctx.accept(verify_order(exact, domain, ctx))
    one_more = sign_order(order("alice", "buy", 1, 0, nonce=2), key("alice"), domain)
    assert reject_code(one_more, domain, ctx) == "insufficient_escrow"
    sell = sign_order(order("alice", "sell", 5_000, 0, nonce=3), key("alice"), domain)
    assert verify_order(sell, domain, ctx).side == "sell"  # sellers need no escrow


def test_insufficient_escrow_by_one_micro(domain: Domain) -> None:
    ctx = context(escrow_micro={addr("alice"): 959_999})
    signed = sign_order(order("alice", "buy", 3_000, 300_000), key("alice"), domain)
    assert reject_code(signed, domain, ctx) == "insufficient_escrow"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"side": "hold"}, "side"),
        ({"energy_wh": 0}, "energy_wh"),
        ({"price_micro_per_kwh": -1}, "price_micro_per_kwh"),
        ({"nonce": 1 << 64}, "nonce"),
        ({"participant": addr("alice").lower()}, "participant"),
        ({"energy_wh": 1.5}, "energy_wh"),
    ],
)
def test_malformed_orders_are_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        dataclasses.replace(order("alice", "buy", 1, 1), **changes)  # type: ignore[arg-type]
    assert info.value.field == field
