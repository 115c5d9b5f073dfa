"""The operator's interval pipeline: once-only on-chain effects, even across a crash."""

from __future__ import annotations

import pytest

from gridledger.config import Settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConflictError
from gridledger.ledger import Ledger
from gridledger.metering import Reading, sign_reading
from gridledger.node import MarketOperator
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
    """Spendable escrow: claimed plus the netting-root net not claimed yet."""
    netting = runner.operator.netting
    netting.refresh_claims()
    return {
        p.address: runner.ledger.escrow_of(p.address) + netting.unclaimed_micro(p.address)
        for p in runner.store.participants()
    }


def restarted(runner: DayRunner) -> MarketOperator:
    """A new operator on the same store and chain, as after a kill -9 (book rebuilt from store)."""
    ledger = Ledger.attach(runner.ledger.chain, runner.ledger.deployment)
    op = runner.operator
    return MarketOperator(runner.store, ledger, runner.settings, op.supplier, op.attestations)


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
    plan = runner.operator.plan(start_s, result)  # type: ignore[arg-type]
    runner.ledger.commit_interval(start_s, *plan.roots, 0, 0)  # the operator died right after this
    operator = restarted(runner)
    outcome = operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert outcome.commit.tx_hash == ""  # not committed again
    assert outcome.settlement == plan.settlement  # the stored plan, not a recomputation
    operator.claim_all()
    after = {p.address: runner.ledger.escrow_of(p.address) for p in runner.store.participants()}
    assert sum(after.values()) == sum(before.values())
    for account, delta in outcome.settlement.deltas_micro.items():
        assert after[account] == before[account] + delta  # applied exactly once


def test_crash_after_settle_records_without_sending(runner: DayRunner) -> None:
    start_s, result = prepare(runner, START_INTERVAL)
    plan = runner.operator.plan(start_s, result)  # type: ignore[arg-type]
    runner.ledger.commit_interval(start_s, *plan.roots, 0, 0)
    assert plan.root is not None
    signatures = runner.operator.attestations.collect(plan.attestation(start_s))
    credits, count = plan.credits_micro, plan.account_count
    runner.ledger.settle_interval_root(
        start_s, plan.root, credits, credits, count, signatures
    )  # died
    roots_before = runner.ledger.root_count()
    operator = restarted(runner)
    outcome = operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert outcome.settle.tx_hash == "" and runner.ledger.root_count() == roots_before
    assert outcome.settlement.deltas_micro == plan.settlement.deltas_micro
    assert runner.store.interval_status(start_s) == "settled"
    root = runner.store.netting_root_of_interval(start_s)
    assert root is not None and root.root == "0x" + runner.ledger.settlement_root(1).hex()


def test_the_direct_batch_is_the_same_method_switched_by_config(
    chain_url: str, db_url: str
) -> None:
    config = DayConfig(households=3, intervals=2, first_interval=START_INTERVAL, fresh_db=False)
    settings = Settings(chain=chain_url, db_url=db_url, settlement_path="direct")
    runner = DayRunner(config, settings)
    before = escrows(runner)
    start_s, result = prepare(runner, START_INTERVAL)
    outcome = runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    assert runner.ledger.root_count() == 0 and runner.ledger.interval(start_s).settled
    after = escrows(runner)
    for account, delta in outcome.settlement.deltas_micro.items():
        assert after[account] == before[account] + delta  # moved in the settling transaction


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


def test_kill_mid_claim_period_loses_nothing_and_pays_nothing_twice(
    chain_url: str, db_url: str
) -> None:
    """Claims every 2 roots; the operator dies right after a claim batch was mined, before it
    saw the batch: the restarted operator (book and claims rebuilt from store + chain) settles
    on, claims only what is still owed, and every escrow ends at deposit + settled deltas."""
    config = DayConfig(households=3, intervals=3, first_interval=START_INTERVAL, fresh_db=False)
    settings = Settings(chain=chain_url, db_url=db_url, claim_period_intervals=2)
    runner = DayRunner(config, settings)
    before = escrows(runner)
    for k in (START_INTERVAL, START_INTERVAL + 1):
        start_s, result = prepare(runner, k)
        runner.operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    claimed = runner.ledger.netting.root()
    assert runner.operator.netting.claimed_through() == 2  # the period's claims went out
    # Kill -9 emulated: the store forgets the claims it recorded (as if the process died after
    # the claimMany transaction was mined and before the Claimed events were read).
    runner.store.set_meta("netting_claims_next_block", "0")
    runner.store.set_meta("netting_claimed_through_root", "0")
    with runner.store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM netting_claims")
    operator = restarted(runner)
    assert operator.ledger.netting.root().root == claimed.root  # the book rebuilt from the store
    assert operator.claim_all() == []  # the chain's Claimed events show nothing is owed
    start_s, result = prepare(runner, START_INTERVAL + 2)
    operator.settle_interval(start_s, result)  # type: ignore[arg-type]
    operator.claim_all()
    settled: dict[str, int] = {}
    for p in runner.store.participants():
        settled[p.address] = sum(
            s.delta_micro for s in runner.store.settlements_of(p.address, limit=1000)
        )
    for address, escrow in before.items():
        assert runner.ledger.escrow_of(address) == escrow + settled[address], address
    assert runner.ledger.netting_capacity() == (0, 0)  # every posted credit and debit applied
    assert runner.ledger.root_count() == 3 and runner.store.interval_status(start_s) == "settled"
