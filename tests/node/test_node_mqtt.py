"""With ``mqtt_url`` set the node also takes readings over MQTT and acks them after commit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gridledger.metering import Reading, sign_reading
from gridledger.metering.mqtt import MqttMeterClient
from tests.node.support import (
    domain_of,
    enrol,
    fast_settings,
    interval_status,
    market,
    running_node,
    wait_for,
)
from tests.support.services import Service

pytestmark = pytest.mark.mqtt


def test_readings_arrive_over_mqtt(tmp_path: Path, mosquitto_server: Service) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'mqtt.sqlite'}",
        tmp_path,
        mqtt_url=mosquitto_server.url,
        speed=900,  # one interval per wall second
        settle_grace_s=3600,  # settled 4 wall seconds after it ends
    )
    with running_node(settings) as (node, url, operator):
        household = enrol(url, operator, "mqtt-household")
        domain = domain_of(url)
        start = node.market.next_settle_s  # the node's first interval
        wait_for(lambda: market(url)["market_time_s"] >= start + 900, 10, "the interval to end")
        reading = Reading(household.meter, 1, start, 900, 250, 0)
        meter = MqttMeterClient(mosquitto_server.url, household.meter).start()
        try:
            meter.submit(sign_reading(reading, household.meter_key, domain))
            ack = wait_for(lambda: meter.acks.get((household.meter, 1)), 15, "the MQTT ack")
        finally:
            meter.stop()
        assert ack["status"] == "accepted", ack
        assert node.store.readings_of_meter(household.meter)[0].reading == reading
        wait_for(lambda: interval_status(url, start) == "settled", 15, "settlement")
        settled = httpx.get(f"{url}/v1/intervals/{start}").json()
        assert settled["readings_root"] != "0x" + "00" * 32  # the MQTT reading is anchored
