"""CLI tables in the units people read: names, kWh, EUR per kWh."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gridledger.cli import app


def test_market_clear_reads_an_excel_book_and_shows_names_and_euros(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    book.write_bytes(
        b"\xef\xbb\xbfid;side;energy_wh;price_per_kwh\r\no1;buy;1000;0,30\r\no2;sell;800;0,10\r\n"
    )
    shown = CliRunner().invoke(app, ["market", "clear", "--orders", str(book)])
    assert shown.exit_code == 0, shown.stderr
    assert "0.800 kWh cleared, price 0.2000 EUR/kWh" in shown.stdout
    assert "│ o1    │ o2     │ 0.800 kWh │" in shown.stdout
    as_json = CliRunner().invoke(app, ["market", "clear", "--orders", str(book), "--json"])
    trade = json.loads(as_json.stdout)["trades"][0]
    assert (trade["buy_id"], trade["sell_id"], trade["price_micro_per_kwh"]) == (
        "o1",
        "o2",
        200_000,
    )
