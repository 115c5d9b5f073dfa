"""Consent and the access log end to end on anvil: the owner grants with the CLI, the grantee
signs in (SIWE) and reads exactly the consented readings over the API (JSON and Green Button
XML); out of scope, after revocation and after expiry it gets a clear problem response; the node
commits the day's access log on-chain by itself when the market day ends, and
``gridledger access-log --participant ADDR --verify`` checks the grantee's reads against it;
the household page in Chromium shows the owner's grants with their status.

The node's market clock runs at 360x from a start 36 intervals before a UTC midnight (set as a
restarted node would resume it), so the market day ends 90 wall seconds in. Only the served reads
must fall before it (they are the day's log entries); a loaded machine may take longer for the
rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridledger.iotools.greenbutton import read_greenbutton
from gridledger.ledger.transport import ANVIL_DEV_KEY
from gridledger.metering import signed_reading_from_json
from gridledger.node.meta import NodeMeta
from gridledger.privacy.access_log import DAY_S, committed_days
from gridledger.privacy.consent import SCOPES
from gridledger.store import Store
from tests.node.support import (
    Household,
    domain_of,
    enrol,
    fast_settings,
    reading_body,
    running_node,
    wait_for,
)
from tests.support.services import REPO, Service, require_binary
from tests.web.test_dashboard_e2e import ARTIFACTS, CHROMIUM_FLAGS

pytestmark = pytest.mark.anvil
Q = 900  # one interval, market seconds
SPEED = 360  # one interval per 2.5 wall seconds


def _cli(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDLEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "gridledger", *args, "--db", db],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )


def _cli_json(*args: str, db: str) -> Any:
    done = _cli(*args, db=db)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _key_file(tmp_path: Path, who: Household) -> str:
    path = tmp_path / f"{who.participant.address}.key"
    path.write_text(who.participant.key.hex() + "\n")
    return str(path)


def _problem(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.json()["detail"], response.json()


def test_consent_and_access_log_end_to_end(tmp_path: Path, anvil_server: Service) -> None:
    db = f"sqlite:///{tmp_path / 'node.sqlite'}"
    # A midnight far enough ahead that every market instant here is after anvil's block times
    # (the Consent contract refuses an expiry in the past).
    midnight = (int(time.time()) // DAY_S + 2) * DAY_S
    start = midnight - 36 * Q
    store = Store.open(db)
    NodeMeta(store).put(market_time_s=start)  # where a restarted node resumes its clock
    store.close()
    settings = fast_settings(
        db,
        tmp_path,
        chain=anvil_server.url,
        operator_key="0x" + ANVIL_DEV_KEY.hex(),
        speed=SPEED,
        settle_grace_s=2 * SPEED,
    )
    data_from, data_to = start - 4 * Q, start - 2 * Q  # the granted period: two intervals
    with running_node(settings) as (node, url, operator):
        owner, grantee = enrol(url, operator, "e2e-owner"), enrol(url, operator, "e2e-grantee")
        researcher = enrol(url, operator, "e2e-researcher")
        domain = domain_of(url)
        node.store.insert_readings(
            [
                signed_reading_from_json(body)
                for body in (
                    _reading(owner, domain, data_from, 310),
                    _reading(owner, domain, data_from + Q, 320),
                    _reading(owner, domain, data_to, 330),  # outside the grant
                )
            ]
        )
        with node.market.chain_lock:
            node.ledger.fund_eth(owner.participant.address, 10**18)
        owner_key = _key_file(tmp_path, owner)
        market_now = node.market.clock.now_s()
        expires = market_now + 24 * Q  # six market hours: ~60 wall seconds
        period = ("--from", str(data_from), "--to", str(data_to))
        granted = _cli_json(
            "consent", "grant", "--key", owner_key, "--grantee", grantee.participant.address,
            "--scope", "readings", *period, "--expires", str(expires), db=db,
        )  # fmt: skip
        assert granted["scopes"] == ["readings"] and granted["revoked_at_s"] == 0
        other = _cli_json(
            "consent", "grant", "--key", owner_key, "--grantee", researcher.participant.address,
            "--scope", "statements", "--scope", "aggregates", *period,
            "--expires", str(midnight + DAY_S), db=db,
        )  # fmt: skip
        path = f"{url}/v1/grantee/{owner.participant.address}/readings"

        def read(who: Household, **params: Any) -> httpx.Response:
            return httpx.get(path, params=params, headers=who.participant.headers, timeout=60)

        served = read(grantee)
        assert served.status_code == 200, served.text
        assert served.json()["consent_id"] == granted["id"]
        assert [(r["interval_start_s"], r["imported_wh"]) for r in served.json()["readings"]] == [
            (data_from, 310),
            (data_from + Q, 320),
        ]
        xml = read(grantee, format="greenbutton")
        assert xml.headers["content-type"].startswith("application/atom+xml")
        assert [(i.start_s, i.energy_wh) for i in read_greenbutton(xml.content)] == [
            (data_from, 310),
            (data_from + Q, 320),
        ]
        _problem(read(grantee, to_s=data_to + Q), 403, "covers data from")
        _problem(read(researcher), 403, "not readings")
        assert node.market.clock.now_s() < midnight, "too slow: the reads fell after midnight"

        revoked = _cli_json(
            "consent", "revoke", "--key", owner_key, "--id", str(other["id"]), db=db
        )
        assert revoked["revoked_at_s"] > 0
        _problem(read(researcher), 403, "revoked")
        listed = _cli_json("consent", "list", "--participant", owner.participant.address, db=db)
        assert [g["id"] for g in listed] == [granted["id"], other["id"]]

        wait_for(lambda: node.market.clock.now_s() >= expires, 90, "the grant's expiry")
        _problem(read(grantee), 403, "expired")

        day = midnight - DAY_S
        wait_for(lambda: day in committed_days(node.store), 120, "the node's daily commit")
        done = _cli("access-log", "--participant", owner.participant.address, "--verify", db=db)
        assert done.returncode == 0, done.stderr
        assert "verified: every committed entry proves into" in done.stdout
        log = _cli_json("access-log", "--participant", owner.participant.address, "--json", db=db)
        reads = [e for e in log["committed"] if e["reader"] == grantee.participant.address]
        assert [(e["what"], e["consent_id"]) for e in reads] == [("readings", granted["id"])] * 2
        assert not [e for e in log["committed"] if e["reader"] == researcher.participant.address]
        held = node.ledger.access_log(day)
        assert held.entry_count == committed_days(node.store)[day].entry_count >= 2

        with node.market.chain_lock:
            client = node.ledger.participant_client(owner.participant.key)
            in_force, _ = client.grant_consent(
                grantee.participant.address,
                SCOPES["aggregates"],
                data_from,
                data_to,
                midnight + DAY_S,
            )
        statuses = _household_consents(tmp_path, url, owner)
        assert statuses == {
            granted["id"]: "expired",
            other["id"]: "revoked",
            in_force: "in force",
        }


def _reading(who: Household, domain: Any, start_s: int, imported_wh: int) -> dict[str, Any]:
    return reading_body(who, domain, start_s, imported_wh, 0)


def _household_consents(tmp_path: Path, url: str, owner: Household) -> dict[int, str]:
    """The owner's household page in Chromium: each grant row's id and status."""
    chromium = require_binary("chromium", [Path("/usr/bin/chromium")])
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 420, "height": 1600},  # a phone
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url + "/household")
            page.fill("#token-input", owner.participant.token)
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("#my-consents tbody tr[data-grant]", timeout=60_000)
            rows = page.locator("#my-consents tbody tr[data-grant]")
            text = page.locator("#my-consents").inner_text()
            assert "readings" in text and "given" in text and "EUR" not in text
            assert "revoked" in text
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "household-consents.png"), full_page=True)
            assert not errors, errors
            found = {}
            for i in range(rows.count()):
                row = rows.nth(i)
                found[int(row.get_attribute("data-grant") or 0)] = row.get_attribute("data-status")
            return {k: str(v) for k, v in found.items()}
        finally:
            browser.close()
