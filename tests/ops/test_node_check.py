"""gridledger node --check: the store rebuilt from the chain agrees; each difference is named."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.stack import check_store_against_chain
from tests.node.support import (
    enrol,
    fast_settings,
    running_node,
)
from tests.support.trading import trade_one_interval


def test_check_agrees_after_trading_then_names_each_tampered_fact(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'check.sqlite'}", tmp_path)
    with running_node(settings) as (node, url, operator):
        seller, buyer = enrol(url, operator, "check-seller"), enrol(url, operator, "check-buyer")
        start = trade_one_interval(url, seller, buyer, 700)
        with node.market.chain_lock:
            report = check_store_against_chain(node.store, node.ledger)
            assert report.ok, report.differences
            assert report.intervals_checked >= 1 and report.participants_checked >= 2

            with node.store.engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE intervals SET orders_root = :r WHERE interval_start_s = :s"),
                    {"r": "0x" + "ee" * 32, "s": start},
                )
                conn.execute(
                    sa.text("UPDATE meters SET owner = :o WHERE address = :m"),
                    {"o": buyer.participant.address, "m": seller.meter},
                )
            tampered = check_store_against_chain(node.store, node.ledger)
    assert not tampered.ok
    text = "\n".join(tampered.differences)
    assert f"interval {start}: orders_root is 0x{'ee' * 32} in the store" in text
    assert (
        f"meter {seller.meter}: owner {buyer.participant.address} in the store, "
        f"{seller.participant.address} on-chain"
    ) in text


def test_cli_check_needs_a_chain_that_outlives_the_node(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'none.sqlite'}"
    result = CliRunner().invoke(app, ["node", "--check", "--chain", "memory", "--db", db])
    assert result.exit_code == 1
    assert "does not outlive" in result.output or "no database" in result.output
    assert "Traceback" not in result.output
