"""The dashboard in real headless Chromium during an accelerated node run.

It must show the live clock over server-sent events, gain a price point when a gate closes,
and verify a participant's statement against the roots on-chain. A screenshot is kept in
test-artifacts/. Under CI=true a missing chromium fails this test (require_binary).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.node.support import (
    enrol,
    fast_settings,
    interval_status,
    running_node,
)
from tests.support.services import REPO, require_binary
from tests.support.trading import meter_and_settle, post_crossing_orders

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EMPTY_KECCAK = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"


def test_dashboard_follows_the_live_market(tmp_path: Path) -> None:
    chromium = require_binary("chromium", [Path("/usr/bin/chromium")])
    sync_api = pytest.importorskip("playwright.sync_api")
    settings = fast_settings(f"sqlite:///{tmp_path / 'web.sqlite'}", tmp_path)
    with running_node(settings) as (_node, url, operator), sync_api.sync_playwright() as pw:
        seller, buyer = enrol(url, operator, "web-seller"), enrol(url, operator, "web-buyer")
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1300, "height": 2200},
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/")
            page.wait_for_selector('#live-status[data-mode="live"]', timeout=60_000)
            page.wait_for_selector("#grid-map .grid-bus", timeout=120_000)  # SimBench loads slowly
            assert (
                page.evaluate(
                    "gridledgerProofs.bytesToHex(gridledgerProofs.keccak256(new Uint8Array()))"
                )
                == EMPTY_KECCAK
            )
            assert page.locator("#price-chart .price-point").count() == 0

            start = post_crossing_orders(url, seller, buyer, 700)
            page.wait_for_function(
                "document.querySelectorAll('#price-chart .price-point').length >= 1",
                timeout=60_000,
            )
            assert interval_status(url, start) in ("cleared", "settled")
            cleared = httpx.get(f"{url}/v1/intervals/{start}", timeout=60).json()
            expected_price = f"{cleared['clearing_price_micro_per_kwh'] / 1e6:.4f} EUR/kWh"
            page.wait_for_function(
                "t => [...document.querySelectorAll('#intervals td.price')]"
                ".some(td => td.textContent === t)",
                arg=expected_price,
                timeout=60_000,
            )
            first_row = page.locator("#intervals tbody tr").first.inner_text()
            assert "CET" in first_row or "CEST" in first_row, first_row  # Europe/Berlin clock
            assert "µ" not in page.locator("body").inner_text()

            meter_and_settle(url, seller, buyer, 700, start)

            page.goto(url + "/household")  # the household's own page
            page.fill("#token-input", seller.participant.token)
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("#account-body:not([hidden])", timeout=60_000)
            page.wait_for_function(
                "document.querySelectorAll('#my-trades tbody tr').length >= 1", timeout=60_000
            )
            page.click("#verify")
            page.wait_for_function(
                "Number(document.getElementById('verify-result').dataset.verified || 0) >= 1",
                timeout=60_000,
            )
            assert page.get_attribute("#verify-result", "data-failed") == "0"
            bill = page.locator("#my-bill").inner_text()
            assert "received" in bill and "EUR" in bill and "-" not in bill  # signed in words
            assert page.locator("#my-energy-chart .energy-out").count() >= 1
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
