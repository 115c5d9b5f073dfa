"""A grantee signed in with SIWE reads exactly the consented data from a live node, as JSON and
as Green Button XML; a stranger, another scope and a revoked grant get RFC 9457 problems."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gridledger.iotools.greenbutton import read_greenbutton
from gridledger.metering import signed_reading_from_json
from gridledger.privacy.consent import SCOPES
from tests.node.support import (
    domain_of,
    enrol,
    fast_settings,
    open_interval_with_time_left,
    reading_body,
    running_node,
)


def test_grantee_reads_exactly_the_consented_readings(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'node.sqlite'}", tmp_path)
    with running_node(settings) as (node, url, operator):
        owner, grantee = enrol(url, operator, "owner"), enrol(url, operator, "grantee")
        stranger = enrol(url, operator, "stranger")
        start = open_interval_with_time_left(url)
        reading = signed_reading_from_json(reading_body(owner, domain_of(url), start, 420, 0))
        node.store.insert_readings([reading])  # the data to share; how it arrived is not the point
        live = node.market
        with live.chain_lock:
            live.ledger.fund_eth(owner.participant.address, 10**18)
            client = live.ledger.participant_client(owner.participant.key)
            expires = int(time.time()) + 86_400
            grant_id, _ = client.grant_consent(
                grantee.participant.address, SCOPES["readings"], start, start + 900, expires
            )
            client.grant_consent(
                stranger.participant.address, SCOPES["statements"], start, start + 900, expires
            )
        path = f"{url}/v1/grantee/{owner.participant.address}/readings"

        served = httpx.get(path, headers=grantee.participant.headers, timeout=60)
        assert served.status_code == 200, served.text
        body = served.json()
        assert body["consent_id"] == grant_id
        assert [(r["interval_start_s"], r["imported_wh"]) for r in body["readings"]] == [
            (start, 420)
        ]
        xml = httpx.get(
            path, params={"format": "greenbutton"}, headers=grantee.participant.headers, timeout=60
        )
        assert xml.headers["content-type"].startswith("application/atom+xml")
        assert [(i.start_s, i.energy_wh) for i in read_greenbutton(xml.content)] == [(start, 420)]

        wider = httpx.get(
            path, params={"from_s": start - 900}, headers=grantee.participant.headers, timeout=60
        )
        assert wider.status_code == 403 and "covers data from" in wider.json()["detail"]
        other_scope = httpx.get(path, headers=stranger.participant.headers, timeout=60)
        assert other_scope.status_code == 403
        assert other_scope.headers["content-type"].startswith("application/problem+json")
        assert "not readings" in other_scope.json()["detail"]

        listed = httpx.get(
            f"{url}/v1/consents", headers=owner.participant.headers, timeout=60
        ).json()
        assert {g["grant_id"] for g in listed} >= {grant_id}
        with live.chain_lock:
            client.revoke_consent(grant_id)
        revoked = httpx.get(path, headers=grantee.participant.headers, timeout=60)
        assert revoked.status_code == 403 and "revoked" in revoked.json()["detail"]

        log = httpx.get(
            f"{url}/v1/participants/{owner.participant.address}/access-log",
            headers=owner.participant.headers,
            timeout=60,
        ).json()
        reads = [e for e in log["not_yet_committed"] if e["reader"] == grantee.participant.address]
        assert [e["consent_id"] for e in reads] == [grant_id, grant_id]
