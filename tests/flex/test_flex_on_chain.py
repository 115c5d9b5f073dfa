"""Flexibility on a chain: a DR run's award intervals are committed (trades + awards under the
result root, readings under the readings root) and settled against delivery, so a household's
flexibility payment shows in a statement that verifies against what the ledger holds."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from gridledger.ledger import Ledger
from gridledger.merkle import EMPTY_ROOT
from gridledger.settlement.statements import Statement
from gridledger.sim.chain import LedgerRecorder, flex_statement, verify_flex_statement
from gridledger.sim.runner import ScenarioResult, run_scenario
from gridledger.sim.scenario import load_scenario
from gridledger.verifier.panel import DEV_QUORUM, dev_verifier_addresses

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run() -> tuple[LedgerRecorder, ScenarioResult]:
    scenario = load_scenario(ROOT / "scenarios" / "dr-congested.toml").replace(chain="memory")
    start = dt.datetime.combine(scenario.start_date, dt.time(), dt.UTC)
    ledger = Ledger.deploy("memory", verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
    recorder = LedgerRecorder(ledger, int(start.timestamp()))
    result = run_scenario(scenario, recorder=recorder, write_files=False)
    return recorder, result


def paid_household(recorder: LedgerRecorder) -> tuple[str, Statement]:
    """A household whose statement has a flexibility line (paid for delivered flexibility)."""
    for name in sorted(recorder.address_of):
        statement = flex_statement(recorder, name)
        if any(line.kind == "flexibility" for i in statement.intervals for line in i.lines):
            return name, statement
    raise AssertionError("no household was paid for flexibility")


def test_a_flexibility_payment_verifies_against_the_on_chain_roots(
    run: tuple[LedgerRecorder, ScenarioResult],
) -> None:
    recorder, result = run
    assert recorder.recorded, "no interval had flexibility awards"
    _, statement = paid_household(recorder)
    assert verify_flex_statement(recorder, statement) == []
    paid = [line for i in statement.intervals for line in i.lines if line.kind == "flexibility"]
    assert all(line.amount_micro > 0 for line in paid)
    assert all(line.counterparty == recorder.ledger.deployment.grid_operator for line in paid)
    assert all(i.flex_awards and i.readings for i in statement.intervals)
    # the on-chain delta is what the statement's lines sum to
    for interval in statement.intervals:
        recorded = recorder.recorded[interval.interval_start_s]
        deltas = recorder.ledger.settled_deltas(interval.interval_start_s, recorded.settle_tx)
        assert deltas[statement.participant] == interval.total_micro
    assert result.summary["kpis"]["gas_used"] > 0


def test_intervals_without_awards_keep_their_commitment(
    run: tuple[LedgerRecorder, ScenarioResult],
) -> None:
    recorder, _ = run
    first = recorder.first_interval_start_s
    plain = next(
        start for start in range(first, first + 96 * 900, 900) if start not in recorder.recorded
    )
    on_chain = recorder.ledger.interval(plain)
    assert on_chain.settled
    assert on_chain.result_root == EMPTY_ROOT and on_chain.readings_root == EMPTY_ROOT


def test_a_changed_flexibility_payment_is_named(
    run: tuple[LedgerRecorder, ScenarioResult],
) -> None:
    recorder, _ = run
    _, statement = paid_household(recorder)
    k, interval = next(
        (k, i)
        for k, i in enumerate(statement.intervals)
        if any(line.kind == "flexibility" for line in i.lines)
    )
    n, line = next((n, x) for n, x in enumerate(interval.lines) if x.kind == "flexibility")
    lines = list(interval.lines)
    lines[n] = dataclasses.replace(line, amount_micro=line.amount_micro + 1_000)
    bad = dataclasses.replace(
        interval, lines=tuple(lines), delta_micro=interval.delta_micro + 1_000
    )
    intervals = list(statement.intervals)
    intervals[k] = bad
    problems = verify_flex_statement(
        recorder, dataclasses.replace(statement, intervals=tuple(intervals))
    )
    where = f"interval {interval.interval_start_s}"
    assert any(f"{where}: line {n + 1} (flexibility)" in p for p in problems), problems
    assert any(f"{where}: on-chain delta" in p for p in problems), problems


def test_a_changed_award_fails_its_proof(run: tuple[LedgerRecorder, ScenarioResult]) -> None:
    recorder, _ = run
    _, statement = paid_household(recorder)
    interval = statement.intervals[0]
    award = interval.flex_awards[0]
    forged = dataclasses.replace(
        award, item=dataclasses.replace(award.item, energy_wh=award.item.energy_wh + 500)
    )
    bad = dataclasses.replace(interval, flex_awards=(forged, *interval.flex_awards[1:]))
    problems = verify_flex_statement(
        recorder, dataclasses.replace(statement, intervals=(bad, *statement.intervals[1:]))
    )
    where = f"interval {interval.interval_start_s}"
    assert any(
        f"{where}: flexibility award 1: its Merkle proof does not match" in p for p in problems
    ), problems
