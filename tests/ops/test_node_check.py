"""gridledger node --check: the store rebuilt from the chain agrees; each difference is named."""

from __future__ import annotations

from pathlib import Path

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.stack import check_store_against_chain
from tests.node.support import (
    domain_of,
    enrol,
    fast_settings,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
    reading_body,
    running_node,
    wait_for,
)


def test_check_agrees_after_trading_then_names_each_tampered_fact(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'check.sqlite'}", tmp_path)
    with running_node(settings) as (node, url, operator):
        seller, buyer = enrol(url, operator, "check-seller"), enrol(url, operator, "check-buyer")
        domain = domain_of(url)
        start = open_interval_with_time_left(url)
        for who, side, price in ((seller, "sell", 100_000), (buyer, "buy", 200_000)):
            body = order_body(who, domain, side, 700, price, start, 1)
            httpx.post(f"{url}/v1/orders", json=body, headers=who.participant.headers, timeout=60)
        wait_for(lambda: market(url)["market_time_s"] >= start + 900, 60, "the interval end")
        readings = [
            reading_body(seller, domain, start, 0, 700),
            reading_body(buyer, domain, start, 700, 0),
        ]
        httpx.post(f"{url}/v1/readings", json=readings, timeout=60).raise_for_status()
        wait_for(lambda: interval_status(url, start) == "settled", 60, "settlement")
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
