"""People read currency, kWh, kW and local clock times; fixed units stay inside."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridledger.api import NodeState, create_app
from gridledger.config import Settings
from gridledger.errors import ConfigError
from gridledger.sim.kpis import KPI_DEFINITIONS
from gridledger.sim.report import render_html
from gridledger.sim.runner import ScenarioResult, run_scenario
from gridledger.store import Store
from gridledger.web.units import (
    cost_text,
    energy_text,
    local_time_text,
    money_text,
    net_text,
    price_text,
    savings_text,
)
from tests.support.scenarios import one_day

NOON_CEST_S = int(dt.datetime(2016, 6, 6, 10, 0, tzinfo=dt.UTC).timestamp())


def test_amounts_prices_and_energy_read_in_currency_and_kwh() -> None:
    assert money_text(-4_386_040) == "-4.39 EUR"
    assert money_text(1_234_567_890, "CHF") == "1,234.57 CHF"
    assert price_text(135_602) == "0.1356 EUR/kWh"
    assert price_text(None) == "–"
    assert energy_text(700) == "0.700 kWh"
    assert energy_text(12_345) == "12.35 kWh"


def test_signed_money_says_who_pays() -> None:
    assert cost_text(-2_500_000) == "earned 2.50 EUR"
    assert cost_text(2_500_000) == "paid 2.50 EUR"
    assert net_text(-10_000) == "paid 0.01 EUR"
    assert net_text(10_000) == "received 0.01 EUR"
    assert savings_text(-4_386_040) == "cost 4.39 EUR more"
    assert savings_text(4_386_040) == "saved 4.39 EUR"


def test_clock_times_are_local_with_the_zone_named() -> None:
    assert local_time_text(NOON_CEST_S) == "2016-06-06 12:00 CEST"
    assert local_time_text(NOON_CEST_S, "UTC") == "2016-06-06 10:00 UTC"


def test_settings_refuse_a_bad_currency_or_zone() -> None:
    with pytest.raises(ConfigError, match="currency"):
        Settings(currency="euro")
    with pytest.raises(ConfigError, match="timezone"):
        Settings(timezone="Mars/Olympus")


def test_display_endpoint_names_currency_zone_and_kpis(tmp_path: Path) -> None:
    settings = Settings(currency="CHF", timezone="Europe/Zurich")
    state = NodeState(Store.open(f"sqlite:///{tmp_path}/d.sqlite"), dict, settings=settings)
    body = TestClient(create_app(state)).get("/v1/display").json()
    assert body["currency"] == "CHF" and body["timezone"] == "Europe/Zurich"
    assert [k["key"] for k in body["kpis"]] == [d.key for d in KPI_DEFINITIONS]
    assert all(k["title"] and k["explanation"] for k in body["kpis"])


@pytest.fixture(scope="module")
def day_run(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return run_scenario(one_day("units", households=4, seed=3), write_files=False)


def test_report_shows_kpis_in_words_money_in_currency_and_local_times(
    day_run: ScenarioResult,
) -> None:
    page = render_html(day_run, "EUR", "Europe/Berlin")
    for definition in KPI_DEFINITIONS:
        assert html.escape(definition.title) in page
        assert html.escape(definition.explanation) in page
        assert f">{definition.key}<" not in page  # no snake_case names where people look
    assert "2016-06-10 02:00 CEST to 2016-06-11 02:00 CEST" in page
    assert re.search(r"Import tariff 0\.3000 EUR/kWh", page)
    savings = day_run.kpis.community_savings_micro
    assert f"{savings / 1e6:,.2f} EUR" in page
    assert "µ" not in page and "gEUR" not in page
    bills = page[page.index("id='bills'") :]
    assert bills.count("<tr>") == 1 + len(day_run.household_names)
    assert re.search(r"(saved|cost) [\d,]+\.\d\d EUR", bills)
