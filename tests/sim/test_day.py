"""A short trading day end to end, on every chain and database backend."""

from __future__ import annotations

import pytest

from gridledger.config import Settings
from gridledger.sim.day import SUPPLIER_DEPOSIT_MICRO, DayConfig, DayResult, run_day

HOUSEHOLDS, INTERVALS = 4, 6


@pytest.fixture
def day(chain_url: str, db_url: str) -> DayResult:
    settings = Settings(chain=chain_url, db_url=db_url)
    # Midday intervals of the sunny June day, so PV sellers meet buyers.
    config = DayConfig(
        households=HOUSEHOLDS, intervals=INTERVALS, first_interval=48, fresh_db=False, seed=3
    )
    return run_day(config, settings)


def test_every_interval_is_committed_and_settled_once_on_chain(day: DayResult) -> None:
    assert day.summary["settled_intervals"] == INTERVALS
    stored = day.store.intervals(limit=100)
    assert [row.status for row in stored] == ["settled"] * INTERVALS
    for row in stored:
        on_chain = day.ledger.interval(row.interval_start_s)
        assert on_chain.committed and on_chain.settled
        assert "0x" + on_chain.orders_root.hex() == row.orders_root
        assert "0x" + on_chain.readings_root.hex() == row.readings_root


def test_escrow_on_chain_equals_deposits_plus_stored_settlements(day: DayResult) -> None:
    deposits = {
        m.address: DayConfig().escrow_micro
        for m in day.store.participants()
        if m.role in ("prosumer", "consumer")
    }
    supplier = next(p.address for p in day.store.participants() if p.role == "supplier")
    deposits[supplier] = SUPPLIER_DEPOSIT_MICRO
    total_on_chain = 0
    for participant in day.store.participants():
        address = participant.address
        settled = sum(s.delta_micro for s in day.store.settlements_of(address, limit=10_000))
        assert day.ledger.escrow_of(address) == deposits.get(address, 0) + settled, participant
        total_on_chain += day.ledger.escrow_of(address)
    assert total_on_chain == sum(deposits.values())  # nothing created or lost
    assert day.ledger.token_balance_of(day.ledger.deployment.market) == total_on_chain


def test_statement_lines_add_up_to_the_settled_deltas(day: DayResult) -> None:
    for participant in day.store.participants():
        lines = day.store.statement_lines_of(participant.address)
        settled = day.store.settlements_of(participant.address, limit=10_000)
        if participant.role in ("grid_operator", "supplier"):
            continue  # counterparties: their money is the other side of the households' lines
        assert sum(x.amount_micro for x in lines) == sum(s.delta_micro for s in settled)


def test_every_reading_is_stored_once(day: DayResult) -> None:
    assert day.summary["readings"] == HOUSEHOLDS * INTERVALS
    for meter in day.store.meters():
        sequences = sorted(r.reading.sequence for r in day.store.readings_of_meter(meter.address))
        assert sequences == list(range(49, 49 + INTERVALS))


def test_summary_has_the_documented_fields(day: DayResult) -> None:
    for key in (
        "intervals",
        "settled_intervals",
        "trades",
        "energy_traded_wh",
        "gas_used",
        "chain_txs",
    ):
        assert isinstance(day.summary[key], int), key
    assert day.summary["chain_txs"] >= 2 * INTERVALS
    assert day.summary["trades"] > 0  # midday: PV households sell to their neighbours
