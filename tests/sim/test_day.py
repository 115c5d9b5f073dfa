"""A short trading day end to end, on every chain and database backend."""

from __future__ import annotations

import pytest

from gridledger.config import Settings
from gridledger.sim.day import DayConfig, DayResult, run_day

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
    deposit = DayConfig().escrow_micro
    participants = [p.address for p in day.store.participants()]
    total_on_chain = 0
    for address in participants:
        delta = sum(s.delta_micro for s in day.store.settlements_of(address, limit=10_000))
        expected = delta + (0 if address == day.ledger.deployment.grid_operator else deposit)
        assert day.ledger.escrow_of(address) == expected
        total_on_chain += day.ledger.escrow_of(address)
    assert total_on_chain == deposit * HOUSEHOLDS  # nothing created or lost
    assert day.ledger.token_balance_of(day.ledger.deployment.market) == total_on_chain


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
