"""The dashboard at 10,000 participants, in real headless Chromium against the real API and a
SQLite store: within 2 s of navigation the page shows the day's intervals, the order-book depth
of the newest interval and the grid map coloured from a power flow of every household's metered
energy (asserted on the DOM: coloured lines and buses, depth curves on both sides).

The store is seeded with bulk inserts (one multi-row insert per table in one transaction), about
a second for the 10,000 households; the signatures are placeholders, since nothing on the
dashboard's path re-verifies them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gridledger.api import NodeState, create_app
from gridledger.config import Settings
from gridledger.store import Store
from gridledger.store import schema as t
from gridledger.web.gridstate import _cached_state
from tests.support.http import serve_app
from tests.support.services import REPO, require_binary
from tests.web.test_dashboard_e2e import CHROMIUM_FLAGS

HOUSEHOLDS = 10_000
GRID_CODE = "1-LV-rural2--0-sw"
HOUSE_BUSES = (15, 61, 92)  # buses with residential loads on this feeder
T0 = 1_750_000_000 // 900 * 900  # the first interval of the seeded day
DAY_INTERVALS = 96
WARM, NEWEST = T0 + 900 * (DAY_INTERVALS - 2), T0 + 900 * (DAY_INTERVALS - 1)
LOAD_BUDGET_S = 2.0
GREY = "#94a3b8"  # the map's colour of a line without a power flow
ARTIFACTS = REPO / "test-artifacts"
SIGNATURE = "0x" + "11" * 65  # a placeholder: this path never re-verifies a signature


def address(kind: int, i: int) -> str:
    return f"0x{kind:02x}{i:038x}"


def _reading(start: int, i: int, scale: int) -> dict[str, Any]:
    # most households import a little, every fourth one feeds in from its PV
    imported_wh, exported_wh = (0, scale * (i % 5)) if i % 4 == 0 else (scale * (1 + i % 3), 0)
    return {
        "meter": address(2, i),
        "sequence": start // 900,
        "interval_start_s": start,
        "interval_length_s": 900,
        "imported_wh": imported_wh,
        "exported_wh": exported_wh,
        "signature": SIGNATURE,
        "received_at_s": start + 900,
    }


def _order(i: int) -> dict[str, Any]:
    side = "buy" if i % 2 else "sell"
    return {
        "interval_start_s": NEWEST,
        "participant": address(1, i),
        "side": side,
        "energy_wh": 100 + i % 400,
        "price_micro_per_kwh": 80_000 + 2_000 * (i % 50),
        "nonce": 1,
        "signature": SIGNATURE,
        "status": "matched",
    }


def _interval(start: int) -> dict[str, Any]:
    return {
        "interval_start_s": start,
        "status": "settled",
        "clearing_price_micro_per_kwh": 120_000 + start // 900 % 7 * 1_000,
        "cleared_energy_wh": 500_000,
    }


def seed(store: Store, households: int) -> None:
    """A day of ``households``: participants, meters, the readings of the day's last two
    intervals (the second twice as heavy) and one order of each household in the newest."""
    people = range(households)
    rows_of: dict[sa.Table, list[dict[str, Any]]] = {
        t.participants: [
            {"address": address(1, i), "role": "prosumer", "grid_node": HOUSE_BUSES[i % 3]}
            for i in people
        ],
        t.meters: [
            {"address": address(2, i), "owner": address(1, i), "rated_power_w": 30_000}
            for i in people
        ],
        t.readings: [_reading(WARM, i, 1) for i in people]
        + [_reading(NEWEST, i, 2) for i in people],
        t.orders: [_order(i) for i in people],
        t.intervals: [_interval(T0 + 900 * k) for k in range(DAY_INTERVALS)],
    }
    with store.engine.begin() as conn:
        for table, rows in rows_of.items():
            conn.execute(sa.insert(table), rows)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("scale") / "dashboard.sqlite"
    store = Store.open(f"sqlite:///{path}")
    began = time.monotonic()
    seed(store, HOUSEHOLDS)
    assert time.monotonic() - began < 15, "seeding 10,000 households should take seconds"
    yield store
    store.close()


def replay_state(store: Store) -> NodeState:
    chain = {"chain": "memory", "chain_id": 1, "tx_count": 3, "gas_used": 1_000_000}
    return NodeState(store, lambda: chain, settings=Settings(grid_code=GRID_CODE))


def test_the_seeded_store_holds_10000_households(big_store: Store) -> None:
    client = TestClient(create_app(replay_state(big_store)))
    first = client.get("/v1/participants", params={"limit": 10_000}).json()
    assert len(first["items"]) == HOUSEHOLDS and first["next_cursor"] is None
    depth = client.get(f"/v1/intervals/{NEWEST}/depth").json()
    assert len(depth["bids"]) == len(depth["asks"]) == 25  # the even and odd price levels
    state = client.get("/v1/grid/state").json()
    assert state["interval_start_s"] == NEWEST and state["readings"] == HOUSEHOLDS
    assert state["converged"] and state["lines"] and state["buses"]


def test_dashboard_with_10000_participants_shows_live_data_within_2_s(big_store: Store) -> None:
    chromium = require_binary("chromium", [Path("/usr/bin/chromium")])
    sync_api = pytest.importorskip("playwright.sync_api")
    app = create_app(replay_state(big_store))
    # The server process is warm (its imports done, the feeder loaded, one power flow of an
    # older interval run): the newest interval's power flow is computed while the page loads.
    warm = TestClient(app)
    assert warm.get("/v1/display").status_code == warm.get("/v1/grid").status_code == 200
    assert warm.get("/v1/grid/state", params={"interval_start_s": WARM}).status_code == 200
    _cached_state.cache_clear()  # the newest interval's flow is not computed yet
    with serve_app(app) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 2200})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            began = time.monotonic()
            page.goto(url + "/")
            page.wait_for_function(SHOWN_JS, timeout=30_000)
            elapsed_s = time.monotonic() - began
            timings = page.evaluate(RESOURCE_TIMINGS_JS)  # where the time went, if it fails
            print(f"dashboard with {HOUSEHOLDS} participants shown in {elapsed_s:.2f} s", timings)
            _assert_live_data(page)
            newest = page.locator("#book-interval").inner_text()  # the newest interval's time
            assert page.locator("#grid-when").inner_text() == f"metered {newest}"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-10000.png"), full_page=True)
            assert not errors, errors
            assert elapsed_s < LOAD_BUDGET_S, (elapsed_s, timings)
        finally:
            browser.close()


# Everything a person looks for is on the page: the newest intervals, depth curves on both sides,
# every grid line coloured by its loading.
SHOWN_JS = """() => {
  const lines = [...document.querySelectorAll('#grid-map .grid-line')];
  return document.querySelectorAll('#intervals tbody tr').length === 24  // the newest 24 shown
    && document.querySelector('#book-chart .depth-bids') !== null
    && document.querySelector('#book-chart .depth-asks') !== null
    && lines.length > 0 && lines.every((l) => l.dataset.loading !== '');
}"""

# Each request of the page: path, start and duration (ms since navigation began).
RESOURCE_TIMINGS_JS = """() => [
  ...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')
].map((e) => [new URL(e.name).pathname, Math.round(e.startTime), Math.round(e.duration)])"""


def _assert_live_data(page: Any) -> None:
    colours = page.eval_on_selector_all(
        "#grid-map .grid-line", "ls => ls.map(l => l.getAttribute('stroke'))"
    )
    assert colours and GREY not in colours
    loadings = page.eval_on_selector_all(
        "#grid-map .grid-line", "ls => ls.map(l => Number(l.dataset.loading))"
    )
    assert max(loadings) > 0
    voltages = page.eval_on_selector_all(
        "#grid-map .grid-bus", "bs => bs.map(b => Number(b.dataset.vmPu))"
    )
    assert voltages and all(0.8 < v < 1.2 for v in voltages)
    assert len(set(voltages)) > 1  # the households' energy moves the voltage along the feeder
    levels = page.locator("#book-levels").inner_text()
    assert levels == "25 bid and 25 ask price levels", levels
    for side in ("bids", "asks"):
        d = page.get_attribute(f"#book-chart .depth-{side}", "d")
        assert d is not None and d.count("L") == 2 * 25 - 1, side  # a step per price level
