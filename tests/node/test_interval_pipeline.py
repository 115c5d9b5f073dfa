"""The operator's interval pipeline: once-only on-chain effects, even across a crash."""

from __future__ import annotations

import pytest

from gridledger.config import Settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConflictError
from gridledger.market import result_lines
from gridledger.metering import Reading, sign_reading
from gridledger.sim.day import DayConfig, DayRunner
from gridledger.store import Meter

START_INTERVAL = 50


@pytest.fixture
def runner(chain_url: str, db_url: str) -> DayRunner:
    config = DayConfig(households=3, intervals=2, first_interval=START_INTERVAL, fresh_db=False)
    return DayRunner(config, Settings(chain=chain_url, db_url=db_url))


def prepare(runner: DayRunner, k: int) -> tuple[int, object]:
    """Everything up to settlement for interval k: orders, clearing, readings."""
    start_s = runner.start_s + k * runner.community.interval_length_s
    positions = runner.net_positions_wh(k)
    runner.operator.accept_orders(runner.sign_orders(start_s, k, positions), start_s)
    result = runner.operator.clear_interval(start_s)
    runner.record_readings(start_s, k, positions)
    return start_s, result


def escrows(runner: DayRunner) -> dict[str, int]:
    return {p.address: runner.ledger.escrow_of(p.address) for p in runner.store.participants()}


def test_settling_twice_is_refused_and_pays_once(runner: DayRunner) -> None:
    start_s, result = prepare(runner, START_INTERVAL)
    runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    after_first = escrows(runner)
    with pytest.raises(ConflictError, match="already settled"):
        runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert escrows(runner) == after_first


def test_crash_after_commit_resumes_without_paying_twice(runner: DayRunner) -> None:
    start_s, result = prepare(runner, START_INTERVAL)
    before = escrows(runner)
    roots = runner.operator.roots_of(start_s, result)  # type: ignore[arg-type]
    runner.ledger.commit_interval(start_s, *roots, 0, 0)  # the operator died right after this
    outcome = runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert outcome.commit.tx_hash == ""  # not committed again
    after = escrows(runner)
    assert sum(after.values()) == sum(before.values())
    for account, delta in outcome.settlement.deltas_micro.items():
        assert after[account] == before[account] + delta  # applied exactly once


def test_crash_after_settle_records_without_sending(runner: DayRunner) -> None:
    start_s, result = prepare(runner, START_INTERVAL)
    lines = result_lines(result)  # type: ignore[arg-type]
    settlement = runner.operator.settlement_of(start_s, lines, cap_to_escrow=True)
    roots = runner.operator.roots_of(start_s, result)  # type: ignore[arg-type]
    runner.ledger.commit_interval(start_s, *roots, 0, 0)
    runner.ledger.settle_interval(start_s, settlement.deltas_micro)  # then died
    paid = escrows(runner)
    outcome = runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert outcome.settle.tx_hash == "" and escrows(runner) == paid
    assert outcome.settlement.deltas_micro == settlement.deltas_micro
    assert runner.store.interval_status(start_s) == "settled"


def test_a_late_reading_for_a_committed_interval_is_refused(runner: DayRunner) -> None:
    start_s, result = prepare(runner, START_INTERVAL)
    runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    member = runner.members[0]
    stored = runner.store.readings_of_meter(member.meter)
    resent = runner.gateway.ingest([stored[0].signed])
    assert resent[0].status == "duplicate"  # a resent copy is still acknowledged
    # A second meter of the same household, first heard of after the interval was committed.
    key = key_from_seed("late-meter")
    runner.store.add_meter(Meter(address_of(key), member.address, 30_000))
    late = Reading(address_of(key), 1, start_s, 900, 1, 0)
    outcome = runner.gateway.ingest([sign_reading(late, key, runner.ledger.domain)])
    assert outcome[0].status == "rejected" and outcome[0].code == "out_of_window"
