"""With ``mqtt_url`` set the node also takes readings and signed orders over MQTT and acks them
after commit."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gridledger.metering import Reading, sign_reading
from gridledger.metering.mqtt import MqttMeterClient, publish_and_collect
from gridledger.node.mqtt_orders import ORDER_ACKS_TOPIC, ORDERS_TOPIC
from tests.node.support import (
    domain_of,
    enrol,
    fast_settings,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
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


def test_signed_orders_arrive_over_mqtt_without_sign_in(
    tmp_path: Path, mosquitto_server: Service
) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'orders.sqlite'}",
        tmp_path,
        mqtt_url=mosquitto_server.url,
        speed=60,  # 15 wall seconds per interval: time for two rounds of messages
    )
    with running_node(settings) as (node, url, operator):
        seller, buyer = enrol(url, operator, "mqtt-seller"), enrol(url, operator, "mqtt-buyer")
        domain = domain_of(url)
        start = open_interval_with_time_left(url, 8.0)
        sell = order_body(seller, domain, "sell", 400, 100_000, start, 1)
        buy = order_body(buyer, domain, "buy", 300, 200_000, start, 1)
        forged = {**order_body(buyer, domain, "buy", 300, 200_000, start, 2), "energy_wh": 900}
        wrong_topic = order_body(buyer, domain, "buy", 100, 200_000, start, 3)
        messages = [
            (ORDERS_TOPIC + seller.participant.address, sell),
            (ORDERS_TOPIC + buyer.participant.address, buy),
            (ORDERS_TOPIC + buyer.participant.address, forged),
            (ORDERS_TOPIC + seller.participant.address, wrong_topic),
        ]
        expected = {(seller.participant.address, 1), (buyer.participant.address, 1)}
        expected |= {(buyer.participant.address, 2), (seller.participant.address, 3)}
        acks = publish_and_collect(
            mosquitto_server.url,
            messages,
            ORDER_ACKS_TOPIC + "+",
            lambda a: (a["participant"], a["nonce"]),
            expected,  # type: ignore[arg-type]
            timeout_s=15,
        )
        assert acks[(seller.participant.address, 1)]["status"] == "accepted", acks
        assert acks[(buyer.participant.address, 1)]["status"] == "accepted", acks
        assert acks[(buyer.participant.address, 2)]["code"] == "bad_signature", acks
        assert acks[(seller.participant.address, 3)]["code"] == "wrong_topic", acks
        again = publish_and_collect(
            mosquitto_server.url,
            messages[:1],
            ORDER_ACKS_TOPIC + "+",
            lambda a: (a["participant"], a["nonce"]),
            {(seller.participant.address, 1)},
            timeout_s=15,
        )
        assert again[(seller.participant.address, 1)]["status"] == "duplicate"
        stored = {(r.participant, r.nonce) for r in node.store.orders_in_interval(start)}
        assert stored == {(seller.participant.address, 1), (buyer.participant.address, 1)}
