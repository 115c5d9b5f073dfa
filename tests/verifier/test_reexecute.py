"""Re-execution: an honest interval yields the attestation, every tampering a named Dispute."""

from __future__ import annotations

import dataclasses

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.ledger.entries import pack_entries
from gridledger.market import Book, Order, clear, orders_root, result_lines, sign_order
from gridledger.market.commitments import lines_root
from gridledger.metering import Reading, readings_root, sign_reading
from gridledger.privacy.salts import LeafKey
from gridledger.settlement import Delivery, Tariffs, settle_with_delivery
from gridledger.settlement.statements import settled_trades
from gridledger.verifier.attestation import (
    IntervalAttestation,
    settlement_hash_of_entries,
    settlement_hash_of_root,
)
from gridledger.verifier.reexecute import (
    ChainFacts,
    Dispute,
    IntervalPackage,
    MarketRules,
    NettingBase,
    netting_book_at,
    reexecute,
)

START_S = 1_700_000_100 - 1_700_000_100 % 900
DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
RULES = MarketRules(
    DOMAIN,
    "uniform",
    20_000,
    Tariffs(300_000, 80_000),
    address_of(key_from_seed("grid")),
    address_of(key_from_seed("supplier")),
)
PEOPLE = ("ana", "ben", "cem", "dora")
KEY = LeafKey(b"k" * 32)


def addr(name: str) -> str:
    return str(address_of(key_from_seed(name)))


def _orders() -> list[Order]:
    return [
        Order(addr("ana"), "buy", 1_500, 250_000, START_S, 1),
        Order(addr("ben"), "buy", 800, 200_000, START_S, 1),
        Order(addr("cem"), "sell", 1_000, 120_000, START_S, 1),
        Order(addr("dora"), "sell", 900, 150_000, START_S, 2),
    ]


def _readings() -> list[Reading]:
    flows = {"ana": (1_400, 0), "ben": (900, 0), "cem": (0, 1_100), "dora": (0, 700)}
    return [
        Reading(addr("meter-" + name), 7, START_S, 900, imported, exported)
        for name, (imported, exported) in flows.items()
    ]


def honest(netting: NettingBase | None = None) -> tuple[IntervalPackage, ChainFacts]:
    """What an honest operator publishes and commits, computed with the project's functions."""
    orders = _orders()
    signed = tuple(
        sign_order(o, key_from_seed(p), DOMAIN) for o, p in zip(orders, PEOPLE, strict=True)
    )
    readings = tuple(
        sign_reading(r, key_from_seed("meter-" + p), DOMAIN)
        for r, p in zip(_readings(), PEOPLE, strict=True)
    )
    owners = {addr("meter-" + p): addr(p) for p in PEOPLE}
    lines = result_lines(clear(Book.from_orders(orders), "uniform", RULES.grid_fee_micro_per_kwh))
    assert lines, "the fixture book must trade"
    deliveries = {
        addr(p): Delivery(r.imported_wh, r.exported_wh)
        for p, r in zip(PEOPLE, _readings(), strict=True)
    }
    deltas = settle_with_delivery(
        settled_trades(lines),
        deliveries,
        RULES.tariffs,
        grid_operator=RULES.grid_operator,
        supplier=RULES.supplier,
    ).deltas_micro
    roots = (orders_root(orders, KEY), lines_root(lines, KEY), readings_root(_readings(), KEY))
    if netting is None:
        settlement_hash = settlement_hash_of_entries(pack_entries(deltas))
        chain_root = None
    else:
        book = netting_book_at(netting)
        posted = book.prepare(netting.root_seq + 1, START_S, deltas)
        settlement_hash = settlement_hash_of_root(
            posted.root, posted.moved_micro, posted.moved_micro, len(posted.cumulative_micro)
        )
        chain_root = book.root(netting.root_seq).root if netting.root_seq else None
    att = IntervalAttestation(START_S, *roots, settlement_hash)
    package = IntervalPackage(START_S, signed, readings, owners, lines, deltas, att, netting)
    facts = ChainFacts(*roots, owners, None, chain_root)
    return package, facts


def test_honest_interval_gives_the_operators_attestation() -> None:
    package, facts = honest()
    assert reexecute(package, facts, RULES, KEY) == package.attestation


def test_honest_interval_on_the_netting_root_path() -> None:
    base = NettingBase(3, {addr("ana"): -5_000, RULES.supplier: 5_000})
    package, facts = honest(base)
    assert reexecute(package, facts, RULES, KEY) == package.attestation


def test_tampered_trade_names_the_trade() -> None:
    package, facts = honest()
    first = package.trades[0]
    inflated = dataclasses.replace(first, energy_wh=first.energy_wh + 100)
    tampered = dataclasses.replace(package, trades=(inflated, *package.trades[1:]))
    dispute = reexecute(tampered, facts, RULES, KEY)
    assert isinstance(dispute, Dispute)
    assert dispute.line.startswith("trade 0")
    assert f"energy_wh={first.energy_wh}," in dispute.expected
    assert f"energy_wh={first.energy_wh + 100}," in dispute.claimed
    assert dispute.interval_start_s == START_S


def test_tampered_committed_result_root_is_disputed() -> None:
    # The operator published honest lines but committed another result root.
    package, facts = honest()
    dispute = reexecute(package, dataclasses.replace(facts, result_root=b"\1" * 32), RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line.startswith("result_root")


def test_tampered_reading_fails_its_signature() -> None:
    package, facts = honest()
    signed = package.readings[1]
    forged = dataclasses.replace(signed, reading=dataclasses.replace(signed.reading, imported_wh=5))
    readings = (package.readings[0], forged, *package.readings[2:])
    dispute = reexecute(dataclasses.replace(package, readings=readings), facts, RULES, KEY)
    assert isinstance(dispute, Dispute)
    assert dispute.line == f"reading {signed.reading.meter}/7 signer"
    assert dispute.expected == signed.reading.meter


def test_missing_order_breaks_the_orders_root() -> None:
    package, facts = honest()
    dispute = reexecute(dataclasses.replace(package, orders=package.orders[1:]), facts, RULES, KEY)
    assert isinstance(dispute, Dispute)
    assert dispute.line.startswith("orders_root")
    assert dispute.expected == "0x" + facts.orders_root.hex()


def test_settlement_delta_mismatch_names_the_account() -> None:
    package, facts = honest()
    deltas = dict(package.deltas_micro)
    deltas[RULES.supplier] += 1
    deltas[RULES.grid_operator] -= 1
    dispute = reexecute(dataclasses.replace(package, deltas_micro=deltas), facts, RULES, KEY)
    assert isinstance(dispute, Dispute)
    assert dispute.line in {
        f"settlement delta of {RULES.supplier}",
        f"settlement delta of {RULES.grid_operator}",
    }


def test_meter_of_another_owner_is_disputed() -> None:
    package, facts = honest()
    meter = package.readings[0].reading.meter
    owners = {**facts.meter_owners, meter: addr("ben")}
    dispute = reexecute(package, dataclasses.replace(facts, meter_owners=owners), RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line == f"reading {meter}/7 owner (registry)"


def test_wrong_previous_netting_state_is_disputed() -> None:
    base = NettingBase(3, {addr("ana"): -5_000, RULES.supplier: 5_000})
    package, facts = honest(base)
    lying = dataclasses.replace(package, netting=NettingBase(3, {addr("ana"): 0}))
    dispute = reexecute(lying, facts, RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line.startswith("netting root 3")


def test_attestation_for_another_settlement_is_disputed() -> None:
    package, facts = honest()
    other = dataclasses.replace(package.attestation, settlement_hash=b"\2" * 32)
    dispute = reexecute(dataclasses.replace(package, attestation=other), facts, RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line == "attestation settlement_hash"


def test_duplicate_order_never_attests() -> None:
    package, facts = honest()
    orders = (*package.orders, package.orders[0])
    dispute = reexecute(dataclasses.replace(package, orders=orders), facts, RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line.endswith("nonce")


def test_duplicate_reading_never_attests() -> None:
    package, facts = honest()
    readings = (*package.readings, package.readings[0])
    dispute = reexecute(dataclasses.replace(package, readings=readings), facts, RULES, KEY)
    assert isinstance(dispute, Dispute) and dispute.line.endswith("sequence")
