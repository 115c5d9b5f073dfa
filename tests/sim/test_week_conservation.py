"""A simulated week (672 intervals) on each chain: money is conserved, every interval settles
once, and every participant's statement verifies against the chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.config import Settings
from gridledger.node import supplier_address
from gridledger.node.statements import build_statement, verify_on_chain
from gridledger.settlement import Tariffs
from gridledger.sim.day import SUPPLIER_DEPOSIT_MICRO, DayConfig, run_day

WEEK = 7 * 96
DAY = 96


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_week_conserves_money_and_every_statement_verifies(
    chain_url: str, tmp_path: Path
) -> None:
    check_conservation(chain_url, tmp_path, WEEK)


def test_a_day_conserves_money_and_every_statement_verifies(chain_url: str, tmp_path: Path) -> None:
    """The bounded default of the week-long soak above (`make test-slow` runs the week)."""
    check_conservation(chain_url, tmp_path, DAY)


def check_conservation(chain_url: str, tmp_path: Path, intervals: int) -> None:
    settings = Settings(chain=chain_url, db_url=f"sqlite:///{tmp_path / 'run.sqlite'}")
    config = DayConfig(households=3, intervals=intervals, fresh_db=False, seed=11)
    day = run_day(config, settings)
    ledger, store = day.ledger, day.store

    _last, committed, settled = ledger.progress()
    assert committed == settled == intervals  # every interval committed and settled, once each
    deposited = config.households * config.escrow_micro + SUPPLIER_DEPOSIT_MICRO
    escrow = {p.address: ledger.escrow_of(p.address) for p in store.participants()}
    assert sum(escrow.values()) == deposited == ledger.token_balance_of(ledger.deployment.market)
    assert day.summary["trades"] > 0 and day.summary["unsettled_micro"] == 0

    tariffs = Tariffs(settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh)
    for participant in store.participants():
        statement = build_statement(store, participant.address)
        problems = verify_on_chain(ledger, store, statement, tariffs, supplier_address())
        assert problems == [], (participant.label, problems[:3])
        if participant.role in ("prosumer", "consumer"):
            assert statement.total_micro == escrow[participant.address] - config.escrow_micro
