"""Security on a running node: attacks over HTTP are flagged, recorded on-chain, and acted on.

One node (memory chain, SQLite) serves every test; each test uses its own household. The node
signs for the five development detector identities (quorum 3); the lying-node test submits as
one of them directly to the Evidence contract. The MQTT test runs its own node on a broker that
publishes its connection notices (``log_dest topic``), as reconnect-storm detection needs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ContractRevert
from gridledger.metering import Reading, sign_reading, signed_reading_to_json
from gridledger.metering.mqtt import READINGS_TOPIC, parse_broker_url
from gridledger.node.runner import Node
from gridledger.node.security import DETECTOR_SEEDS, QUORUM, NodeSecurity, client_subject
from gridledger.security import verify_evidence_file
from gridledger.security.evidence import evidence_window
from gridledger.security.onchain import EvidenceContract
from gridledger.security.quorum import Submission
from tests.node.support import (
    Actor,
    Household,
    domain_of,
    enrol,
    fast_settings,
    open_interval_with_time_left,
    order_body,
    reading_body,
    running_node,
    wait_for,
)
from tests.support.services import Service, free_port, require_binary

CLIENT = client_subject("127.0.0.1")  # every request of these tests comes from here


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, str, Actor]]:
    tmp = tmp_path_factory.mktemp("security-node")
    # Nothing settles during the tests, so readings of past intervals stay acceptable.
    settings = fast_settings(f"sqlite:///{tmp / 'node.sqlite'}", tmp, settle_grace_s=10**7)
    with running_node(settings) as running:
        yield running


def security(node: Node) -> NodeSecurity:
    assert node.security is not None
    return node.security


def contract(node: Node) -> EvidenceContract:
    deployed = security(node).monitor.contract
    assert deployed is not None, "the Evidence contract was not deployed"
    return deployed


def anomalies(url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/v1/anomalies", timeout=30)
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["items"]
    return rows


def anomaly_of(url: str, subject: str, rule: str) -> dict[str, Any] | None:
    rows = anomalies(url)
    return next((a for a in rows if a["subject"] == subject and rule in a["rules"]), None)


def confirmed(url: str, subject: str, rule: str) -> dict[str, Any] | None:
    row = anomaly_of(url, subject, rule)
    return row if row is not None and row["status"] == "confirmed" else None


def sell_order(url: str, household: Household, nonce: int) -> httpx.Response:
    start = open_interval_with_time_left(url)
    body = order_body(household, domain_of(url), "sell", 1_000, 50_000, start, nonce)
    return httpx.post(
        f"{url}/v1/orders", json=body, headers=household.participant.headers, timeout=30
    )


def past_interval_s(node: Node) -> int:
    """An interval that has ended and is not settled: its readings are accepted."""
    start = node.market.next_settle_s
    wait_for(lambda: node.market.clock.now_s() >= start + 960, 30, "the interval to end")
    return start


def test_a_forged_reading_storm_is_confirmed_on_chain_without_suspending_the_victim(
    node: tuple[Node, str, Actor],
) -> None:
    running, url, operator = node
    victim = enrol(url, operator, "forgery-victim")
    domain = domain_of(url)
    forger, start = key_from_seed("forger"), running.market.next_settle_s
    forged = [
        signed_reading_to_json(
            sign_reading(Reading(victim.meter, 100 + i, start, 900, 5_000, 0), forger, domain)
        )
        for i in range(8)
    ]
    acks = httpx.post(f"{url}/v1/readings", json=forged, timeout=30).json()
    assert {a["code"] for a in acks} == {"bad_signature"}

    row = wait_for(lambda: confirmed(url, CLIENT, "forged_readings"), 30, "a confirmation")
    assert row["votes"] >= QUORUM and row["kind"] == "traffic" and row["suspended"] is None
    window_s = row["window_start_s"]
    assert contract(running).is_confirmed(CLIENT, window_s)
    files = [f for f in security(running).monitor.evidence_files() if f.evidence.subject == CLIENT]
    for signed in files:
        evidence = signed.evidence
        onchain = contract(running).evidence_of(CLIENT, window_s, evidence.detector)
        if evidence.kind == "traffic/forged_readings" and onchain == evidence.evidence_hash:
            assert verify_evidence_file(signed.to_file(), onchain, running.ledger.domain)
            break
    else:
        pytest.fail("no forged_readings evidence file matches the hash on-chain")
    assert running.ledger.is_active(victim.participant.address)  # a forger blames no one
    assert sell_order(url, victim, 1).status_code == 201


def test_an_authentication_failure_burst_is_flagged_and_recorded(
    node: tuple[Node, str, Actor],
) -> None:
    running, url, _operator = node
    attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    bad = {"Authorization": "Bearer not-a-token"}
    with attacker:
        statuses = [attacker.get(f"{url}/v1/auth/me", headers=bad).status_code for _ in range(7)]
    assert statuses == [401] * 7

    subject = client_subject("127.0.0.2")
    row = wait_for(lambda: confirmed(url, subject, "auth_failures"), 30, "a confirmation")
    assert row["count"] >= 6
    detectors = {address_of(key_from_seed(seed)) for seed in DETECTOR_SEEDS}
    assert set(row["detectors"]) <= detectors and len(row["detectors"]) >= QUORUM
    assert contract(running).votes(subject, row["window_start_s"]) >= QUORUM
    assert contract(running).is_confirmed(subject, row["window_start_s"])


def test_a_confirmed_replay_storm_suspends_the_meter_owner_and_stops_orders(
    node: tuple[Node, str, Actor],
) -> None:
    running, url, operator = node
    household = enrol(url, operator, "replayer")
    assert sell_order(url, household, 1).status_code == 201
    domain, start = domain_of(url), past_interval_s(running)
    household.sequence = 9
    first = httpx.post(f"{url}/v1/readings", json=[reading_body(household, domain, start, 0, 10)])
    assert first.json()[0]["status"] == "accepted"
    replays = []
    for sequence in range(7):  # signed by the meter's own key, sequence numbers reused
        household.sequence = sequence
        replays.append(reading_body(household, domain, start, 0, 20 + sequence))
    acks = httpx.post(f"{url}/v1/readings", json=replays, timeout=30).json()
    assert {a["code"] for a in acks} == {"replay"}

    row = wait_for(lambda: confirmed(url, household.meter, "replays"), 30, "a confirmation")
    assert row["suspended"] == household.participant.address
    assert not running.ledger.is_active(household.participant.address)
    refused = sell_order(url, household, 2)
    assert refused.status_code == 422 and refused.json()["code"] == "suspended_participant"


def test_one_lying_detector_of_five_confirms_nothing(node: tuple[Node, str, Actor]) -> None:
    running, url, operator = node
    honest = enrol(url, operator, "honest")
    liar = key_from_seed(DETECTOR_SEEDS[-1])
    window_s, _ = evidence_window(int(time.time()))
    lie = Submission(address_of(liar), honest.participant.address, window_s, b"\x13" * 32)
    contract(running).submit(liar, lie)
    with pytest.raises(ContractRevert) as again:
        contract(running).submit(liar, lie)
    assert again.value.error_name == "AlreadySubmitted"

    security(running).monitor.drain()
    rows = [a for a in anomalies(url) if a["subject"] == honest.participant.address]
    assert len(rows) == 1 and rows[0]["votes"] == 1 and rows[0]["status"] == "flagged"
    assert not contract(running).is_confirmed(honest.participant.address, window_s)
    assert running.ledger.is_active(honest.participant.address)
    assert sell_order(url, honest, 1).status_code == 201


def test_a_malformed_payload_burst_is_confirmed_on_chain(node: tuple[Node, str, Actor]) -> None:
    running, url, operator = node
    household = enrol(url, operator, "malformed-source")
    domain, start = domain_of(url), running.market.next_settle_s
    item = reading_body(household, domain, start, 0, 10)
    broken = [{k: v for k, v in item.items() if k != "signature"} for _ in range(25)]
    sender = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.5"))
    with sender:
        acks = sender.post(f"{url}/v1/readings", json=broken, timeout=30).json()
    assert {a["code"] for a in acks} == {"malformed"}

    subject = client_subject("127.0.0.5")
    row = wait_for(lambda: confirmed(url, subject, "malformed"), 30, "a confirmation")
    assert row["count"] > 20 and row["suspended"] is None
    assert contract(running).is_confirmed(subject, row["window_start_s"])


@pytest.fixture(scope="module")
def logging_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """mosquitto publishing its notices (client connections) on ``$SYS/broker/log/N``."""
    binary = require_binary("mosquitto", [Path("/usr/sbin/mosquitto")])
    tmp, port = tmp_path_factory.mktemp("mosquitto-log"), free_port()
    conf, log = tmp / "mosquitto.conf", tmp / "mosquitto.log"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest topic\nlog_type notice\n"
    )

    def launch() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen([binary, "-c", str(conf)], stdout=out, stderr=out)

    service = Service("mosquitto", f"mqtt://127.0.0.1:{port}", port, launch, log=log).start()
    yield service
    service.stop()


@pytest.mark.mqtt
def test_an_mqtt_reconnect_storm_and_malformed_mqtt_payloads_are_confirmed(
    logging_broker: Service, tmp_path: Path
) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'node.sqlite'}", tmp_path, mqtt_url=logging_broker.url
    )
    host, port = parse_broker_url(logging_broker.url)
    with running_node(settings) as (running, url, _operator):
        watcher = security(running).mqtt
        assert watcher is not None
        wait_for(watcher.client.is_connected, 30, "the node's broker-log subscription")
        time.sleep(0.5)  # the SUBACK
        for _ in range(35):  # one client reconnecting over and over (or two fighting for an id)
            flapping = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="meter-flapping")
            flapping.connect(host, port, bind_address="127.0.0.4")
            flapping.loop(0.05)
            flapping.disconnect()
        storm = client_subject("127.0.0.4")
        row = wait_for(lambda: confirmed(url, storm, "mqtt_reconnects"), 30, "a confirmation")
        assert row["count"] > 30 and row["suspended"] is None

        garbage = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="garbage")
        garbage.connect(host, port)
        garbage.loop_start()
        try:
            for i in range(25):
                topic = f"{READINGS_TOPIC}0x{i:040x}"
                garbage.publish(topic, b"{not json", qos=1).wait_for_publish(10)
        finally:
            garbage.disconnect()
            garbage.loop_stop()
        # MQTT readings carry no client address past the broker: the source is the transport.
        mqtt_source = client_subject("mqtt")
        row = wait_for(lambda: confirmed(url, mqtt_source, "malformed"), 30, "a confirmation")
        assert row["count"] > 20 and contract(running).is_confirmed(
            mqtt_source, row["window_start_s"]
        )
