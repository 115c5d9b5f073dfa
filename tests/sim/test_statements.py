"""Statements built from the store verify against the chain, and tampering is caught by line."""

from __future__ import annotations

import dataclasses

import pytest

from gridledger.config import Settings
from gridledger.node.statements import build_statement, verify_on_chain
from gridledger.settlement import Tariffs
from gridledger.settlement.statements import Statement
from gridledger.sim.day import DayConfig, DayResult, run_day


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> DayResult:
    db = tmp_path_factory.mktemp("statements") / "s.sqlite"
    config = DayConfig(households=4, intervals=6, first_interval=46, fresh_db=False, seed=5)
    return run_day(config, Settings(db_url=f"sqlite:///{db}"))


def verify(day: DayResult, statement: Statement) -> list[str]:
    supplier = next(p.address for p in day.store.participants() if p.role == "supplier")
    settings = Settings()
    tariffs = Tariffs(settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh)
    return verify_on_chain(day.ledger, day.store, statement, tariffs, supplier)


def households(day: DayResult) -> list[str]:
    return [p.address for p in day.store.participants() if p.role in ("prosumer", "consumer")]


def billed(day: DayResult) -> list[str]:
    return [a for a in households(day) if day.store.statement_lines_of(a)]


def test_every_household_statement_verifies(day: DayResult) -> None:
    traded = verified = 0
    for address in households(day):
        statement = build_statement(day.store, address)
        if not statement.intervals:
            continue  # the battery household covered itself in every interval: nothing to bill
        assert len(statement.intervals) == 6
        assert verify(day, statement) == []
        verified += 1
        traded += sum(len(i.trades) for i in statement.intervals)
        assert statement.total_micro == day.ledger.escrow_of(address) - DayConfig().escrow_micro
    assert traded > 0 and verified >= 3


def test_a_changed_line_is_named(day: DayResult) -> None:
    statement = build_statement(day.store, billed(day)[0])
    first = statement.intervals[0]
    bad_line = dataclasses.replace(first.lines[0], amount_micro=first.lines[0].amount_micro + 1)
    bad = dataclasses.replace(first, lines=(bad_line, *first.lines[1:]))
    problems = verify(
        day, dataclasses.replace(statement, intervals=(bad, *statement.intervals[1:]))
    )
    assert any(f"interval {first.interval_start_s}: line 1" in p for p in problems), problems


def test_a_changed_reading_fails_its_proof(day: DayResult) -> None:
    statement = build_statement(day.store, billed(day)[1])
    first = statement.intervals[0]
    reading = first.readings[0]
    forged = dataclasses.replace(
        reading, item=dataclasses.replace(reading.item, imported_wh=reading.item.imported_wh + 100)
    )
    bad = dataclasses.replace(first, readings=(forged, *first.readings[1:]))
    problems = verify(
        day, dataclasses.replace(statement, intervals=(bad, *statement.intervals[1:]))
    )
    assert any("reading 1: its Merkle proof does not match" in p for p in problems), problems


def test_each_claim_period_is_proven_and_a_changed_claim_is_named(day: DayResult) -> None:
    statement = build_statement(day.store, billed(day)[0])
    assert len(statement.claims) == 1  # six roots, one (daily) claim period
    claim = statement.claims[0]
    assert claim.net_micro == sum(i.delta_micro for i in statement.intervals)
    closing = dataclasses.replace(
        claim.closing, cumulative_micro=claim.closing.cumulative_micro + 1
    )
    bad = dataclasses.replace(statement, claims=(dataclasses.replace(claim, closing=closing),))
    problems = verify(day, bad)
    assert any("does not match the on-chain root" in p for p in problems), problems
    assert any("deltas sum to" in p for p in problems), problems
