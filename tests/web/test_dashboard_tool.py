"""The dashboard as a user's tool: order-book depth, the grid map coloured from a power flow of
the metered interval, readable on a phone. Real Chromium against a real API and SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gridledger.api import NodeState, create_app
from gridledger.config import Settings
from gridledger.store import IntervalRow, Meter, OrderRow, Participant, Store
from tests.metering.factory import T0, fleet, signed
from tests.support.http import serve_app
from tests.support.services import REPO, require_binary
from tests.web.test_dashboard_e2e import CHROMIUM_FLAGS

HOUSE_BUSES = (15, 61, 92)  # buses with residential loads on 1-LV-rural2--0-sw
ARTIFACTS = REPO / "test-artifacts"


def community_store(url: str, imported_wh: int) -> Store:
    """Three households; interval T0 + 900 metered and settled, with a book of four orders."""
    store = Store.open(url)
    meters = fleet(3, "dash")
    for m, bus in zip(meters, HOUSE_BUSES, strict=True):
        store.add_participant(Participant(m.owner, "prosumer", bus, ""))
        store.add_meter(Meter(m.address, m.owner, 30_000))
    store.insert_readings(
        [signed(m, 1, interval=1, imported_wh=imported_wh) for m in meters], received_at_s=T0
    )
    start = T0 + 900
    orders = [
        OrderRow(start, meters[0].owner, "buy", 800, 250_000, 1, "0x" + "01" * 65),
        OrderRow(start, meters[1].owner, "buy", 400, 200_000, 1, "0x" + "02" * 65),
        OrderRow(start, meters[2].owner, "sell", 600, 120_000, 1, "0x" + "03" * 65),
        OrderRow(start, meters[2].owner, "sell", 300, 120_000, 2, "0x" + "04" * 65),
    ]
    store.insert_orders(orders)
    store.save_interval(IntervalRow(start, "settled", 135_602, 900))
    return store


def replay_state(store: Store) -> NodeState:
    chain = {"chain": "memory", "chain_id": 1, "tx_count": 3, "gas_used": 1_000_000}
    return NodeState(store, lambda: chain, settings=Settings(grid_code="1-LV-rural2--0-sw"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = community_store(f"sqlite:///{tmp_path / 'dash.sqlite'}", 2_000)
    yield opened
    opened.close()


def test_depth_aggregates_price_levels_of_a_closed_interval(store: Store) -> None:
    client = TestClient(create_app(replay_state(store)))
    depth = client.get(f"/v1/intervals/{T0 + 900}/depth").json()
    assert depth["bids"] == [
        {"price_micro_per_kwh": 250_000, "energy_wh": 800},
        {"price_micro_per_kwh": 200_000, "energy_wh": 400},
    ]
    assert depth["asks"] == [{"price_micro_per_kwh": 120_000, "energy_wh": 900}]


def test_grid_state_follows_the_metered_energy(store: Store, tmp_path: Path) -> None:
    client = TestClient(create_app(replay_state(store)))
    light = client.get("/v1/grid/state").json()
    assert light["interval_start_s"] == T0 + 900 and light["converged"]
    heavy_store = community_store(f"sqlite:///{tmp_path / 'heavy.sqlite'}", 6_000)
    heavy = TestClient(create_app(replay_state(heavy_store))).get("/v1/grid/state").json()
    # three times the import: the most loaded line carries more, the lowest voltage drops
    assert max(heavy["lines"].values()) > max(light["lines"].values()) > 0
    assert min(heavy["buses"].values()) < min(light["buses"].values())


def test_dashboard_on_a_phone_shows_depth_grid_colours_and_eur(store: Store) -> None:
    chromium = require_binary("chromium", [Path("/usr/bin/chromium")])
    sync_api = pytest.importorskip("playwright.sync_api")
    app = create_app(replay_state(store))
    warm = TestClient(app)  # load the feeder and run its power flow before the browser asks
    assert warm.get("/v1/grid").status_code == warm.get("/v1/grid/state").status_code == 200
    with serve_app(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.wait_for_selector("#book-chart .depth-bids", state="attached", timeout=30_000)
            assert page.locator("#book-chart .depth-asks").count() == 1
            page.wait_for_selector(
                '#grid-map .grid-line[data-loading]:not([data-loading=""])',
                state="attached",
                timeout=60_000,
            )
            colours = page.eval_on_selector_all(
                "#grid-map .grid-line", "ls => ls.map(l => l.getAttribute('stroke'))"
            )
            assert "#94a3b8" not in colours  # every line coloured by its loading
            voltages = page.eval_on_selector_all(
                "#grid-map .grid-bus", "bs => bs.map(b => b.dataset.vmPu)"
            )
            assert all(v for v in voltages)
            assert "0.1356 EUR/kWh" in page.locator("#intervals").inner_text()
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], width  # nothing wider than the phone's screen
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
