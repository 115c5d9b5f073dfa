"""A security detector's read of an interval's signed readings is personal data: it lands in the
access log under the detector's address, once for each household the answer names."""

from __future__ import annotations

from pathlib import Path

import httpx

from gridledger.eip712 import key_from_seed
from gridledger.metering import signed_reading_from_json
from gridledger.privacy.access_log import entries_about
from tests.node.support import (
    Actor,
    domain_of,
    enrol,
    fast_settings,
    open_interval_with_time_left,
    reading_body,
    running_node,
    sign_in,
)


def test_a_detector_read_of_readings_is_logged_for_each_owner(tmp_path: Path) -> None:
    detector = Actor(key_from_seed("test-privacy-detector"))
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'node.sqlite'}",
        tmp_path,
        evidence_detectors=detector.address,
        evidence_quorum=1,
    )
    with running_node(settings) as (node, url, operator):
        first, second = enrol(url, operator, "det-a"), enrol(url, operator, "det-b")
        body = {"address": detector.address, "role": "auditor", "label": "detector"}
        httpx.post(
            f"{url}/v1/participants", json=body, headers=operator.headers, timeout=60
        ).raise_for_status()
        sign_in(url, detector)
        start = open_interval_with_time_left(url)
        node.store.insert_readings(
            [
                signed_reading_from_json(reading_body(who, domain_of(url), start, wh, 0))
                for who, wh in ((first, 410), (second, 520))
            ]
        )
        path = f"{url}/v1/security/intervals/{start}/readings"
        assert httpx.get(path, timeout=60).status_code == 401  # signed in, and a detector
        served = httpx.get(path, headers=detector.headers, timeout=60)
        assert served.status_code == 200, served.text
        assert len(served.json()["readings"]) == 2
        for who in (first, second):
            reads = [
                (e.reader, e.reader_role, e.what)
                for e in entries_about(node.store, who.participant.address)
                if e.reader == detector.address
            ]
            assert reads == [(detector.address, "detector", f"security-readings {start}")]
