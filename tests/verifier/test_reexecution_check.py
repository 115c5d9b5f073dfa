"""The in-process verifiers' check against a real operator, store and chain (both paths)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.config import Settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConflictError
from gridledger.ledger import Ledger, Role
from gridledger.market import Order, sign_order
from gridledger.metering import Gateway, Reading, sign_reading
from gridledger.node.interval import MarketOperator, enrol_supplier
from gridledger.store import Meter, Participant, Store
from gridledger.verifier.faults import TamperingOperator
from gridledger.verifier.local import ReexecutionCheck, chain_facts, package_of
from gridledger.verifier.panel import InProcessVerifiers, dev_verifier_addresses, dev_verifier_keys
from gridledger.verifier.reexecute import void_attestation

START_S = 1_451_606_400
PEOPLE = ("ana", "ben", "cem")


def key(name: str) -> bytes:
    return bytes(key_from_seed("check-" + name))


def operator(tmp_path: Path, path: str, cls: type[MarketOperator]) -> MarketOperator:
    settings = Settings(db_url=f"sqlite:///{tmp_path / 's.sqlite'}", settlement_path=path)
    ledger = Ledger.deploy("memory", verifiers=dev_verifier_addresses(3), quorum=2)
    store = Store.open(settings.db_url)
    supplier = enrol_supplier(ledger, store, 10**10)
    grid = ledger.deployment.grid_operator
    store.add_participant(Participant(grid, "grid_operator", 0, "grid"))
    for name in PEOPLE:
        person, meter = address_of(key(name)), address_of(key("meter-" + name))
        ledger.add_participant(person, Role.PROSUMER, 1)
        ledger.register_meter(meter, person)
        ledger.deposit_for(person, 100_000_000)
        store.add_participant(Participant(person, "prosumer", 1, name))
        store.add_meter(Meter(meter, person, 30_000))
    op = cls(store, ledger, settings, supplier, None)  # type: ignore[arg-type]
    check = ReexecutionCheck(op, op.leaf_key)
    op.attestations = InProcessVerifiers(dev_verifier_keys(3), check, domain=ledger.domain)
    return op


def trade(op: MarketOperator, k: int) -> tuple[int, object]:
    start = START_S + 900 * k
    orders = [
        Order(address_of(key("ana")), "sell", 1_000, 90_000, start, k),
        Order(address_of(key("ben")), "buy", 800, 250_000, start, k),
        Order(address_of(key("cem")), "buy", 500, 200_000, start, k),
    ]
    signed = [sign_order(o, key(p), op.ledger.domain) for o, p in zip(orders, PEOPLE, strict=True)]
    op.accept_orders(signed, start)
    result = op.clear_interval(start)
    flows = ((0, 900), (800, 0), (600, 0))
    readings = [
        sign_reading(
            Reading(address_of(key("meter-" + p)), k + 1, start, 900, i, e),
            key("meter-" + p),
            op.ledger.domain,
        )
        for p, (i, e) in zip(PEOPLE, flows, strict=True)
    ]
    Gateway(op.store, op.ledger.domain, clock=lambda: start + 900).ingest(readings)
    return start, result


def check_of(op: MarketOperator) -> ReexecutionCheck:
    attestations = op.attestations
    assert isinstance(attestations, InProcessVerifiers)
    check = attestations._check
    assert isinstance(check, ReexecutionCheck)
    return check


@pytest.mark.parametrize("path", ["direct", "root"])
def test_honest_intervals_are_attested_and_settle(tmp_path: Path, path: str) -> None:
    op = operator(tmp_path, path, MarketOperator)
    for k in range(2):  # the second re-executes on top of the first's netting root
        start, result = trade(op, k)
        op.settle_interval(start, result)  # type: ignore[arg-type]
        assert op.ledger.interval(start).settled
    assert check_of(op).attested == {START_S, START_S + 900} and not check_of(op).disputes


@pytest.mark.parametrize("path", ["direct", "root"])
def test_an_empty_first_interval_is_attested(tmp_path: Path, path: str) -> None:
    op = operator(tmp_path, path, MarketOperator)  # root path: the grid operator's zero leaf
    op.settle_interval(START_S, op.clear_interval(START_S))
    assert op.ledger.interval(START_S).settled
    assert check_of(op).attested == {START_S} and not check_of(op).disputes


@pytest.mark.parametrize("path", ["direct", "root"])
def test_a_tampered_first_interval_is_voided_too(tmp_path: Path, path: str) -> None:
    op = operator(tmp_path, path, TamperingOperator)  # root path: no previous root to re-post
    assert isinstance(op, TamperingOperator)
    op.tamper_from_s = START_S
    first, result = trade(op, 0)
    outcome = op.settle_interval(first, result)  # type: ignore[arg-type]
    assert op.ledger.interval(first).settled and outcome.settlement.deltas_micro == {}
    assert first in check_of(op).disputes
    second, result = trade(op, 1)
    op.settle_interval(second, result)  # type: ignore[arg-type]
    assert op.ledger.interval(second).settled and check_of(op).attested == {second}


@pytest.mark.parametrize("path", ["direct", "root"])
def test_a_tampered_interval_is_refused_with_the_line(tmp_path: Path, path: str) -> None:
    op = operator(tmp_path, path, TamperingOperator)
    first, result = trade(op, 0)
    op.settle_interval(first, result)  # type: ignore[arg-type]
    assert isinstance(op, TamperingOperator)
    op.tamper_from_s = START_S + 900
    start, result = trade(op, 1)
    plan = op.plan(start, result)  # type: ignore[arg-type]
    op.ledger.commit_interval(start, *plan.roots, 0, 0)
    check = check_of(op)
    with pytest.raises(ConflictError, match="trade 0"):  # AttestationRefused is a ConflictError
        check(plan.attestation(start))
    dispute = check.disputes[start]
    assert "energy_wh=800," in dispute.expected and "energy_wh=1300," in dispute.claimed
    package = package_of(op, start)
    grid = op.ledger.deployment.grid_operator
    check(void_attestation(package, chain_facts(op.ledger, package), grid))  # the void it does sign


@pytest.mark.parametrize("path", ["direct", "root"])
def test_a_disputed_interval_is_voided_and_the_next_one_settles(tmp_path: Path, path: str) -> None:
    op = operator(tmp_path, path, TamperingOperator)
    first, result = trade(op, 0)
    op.settle_interval(first, result)  # type: ignore[arg-type]
    assert isinstance(op, TamperingOperator)
    op.tamper_from_s = START_S + 900
    tampered, result = trade(op, 1)
    op.claim_all()  # the first interval's nets are in escrow before we look
    escrow_before = {p.address: op.ledger.escrow_of(p.address) for p in op.store.participants()}
    outcome = op.settle_interval(tampered, result)  # type: ignore[arg-type]
    assert op.ledger.interval(tampered).settled and outcome.settlement.deltas_micro == {}
    assert outcome.lines == () and tampered in check_of(op).disputes
    last, result = trade(op, 2)
    op.settle_interval(last, result)  # type: ignore[arg-type]
    assert check_of(op).attested == {first, last}
    op.claim_all()
    moved = {
        p.address: op.ledger.escrow_of(p.address) - escrow_before[p.address]
        for p in op.store.participants()
    }
    plan = op.plan(last, result)  # type: ignore[arg-type]
    assert {a: d for a, d in moved.items() if d} == plan.settlement.deltas_micro
