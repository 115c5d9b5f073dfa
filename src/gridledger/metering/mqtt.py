"""MQTT transport (paho-mqtt 2.x, QoS 1, persistent sessions) for readings and their acks.

Meters publish one signed reading (JSON) per message on ``gridledger/readings/<meter>``. The
bridge acknowledges the MQTT message to the broker, and publishes the application ack
``{"meter", "sequence", "status", "code"}`` on ``gridledger/acks/<meter>``, only after the
gateway has committed the batch. A broker restart can therefore lose nothing that a meter has
not seen acknowledged, and meters resend until they see the ack (the store dedupes).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridledger.errors import ConfigError, StoreError, ValidationError
from gridledger.metering.client import MeterClient
from gridledger.metering.gateway import Gateway, Outcome
from gridledger.metering.reading import (
    SignedReading,
    signed_reading_from_json,
    signed_reading_to_json,
)

log = logging.getLogger(__name__)

READINGS_TOPIC = "gridledger/readings/"
ACKS_TOPIC = "gridledger/acks/"
QOS = 1
STORE_RETRY_S = 0.5


def parse_broker_url(broker_url: str) -> tuple[str, int]:
    parts = urlsplit(broker_url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"mqtt_url: expected mqtt://HOST:PORT, got {broker_url!r}")
    return parts.hostname, parts.port or 1883


def connect_client(broker_url: str, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """A persistent-session client that keeps reconnecting in its own network thread."""
    host, port = parse_broker_url(broker_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=manual_ack
    )
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect_async(host, port, keepalive=10)
    return client


class MqttGatewayBridge:
    """Feeds MQTT readings to a :class:`Gateway` in batches and publishes acks after commit."""

    def __init__(
        self,
        gateway: Gateway,
        broker_url: str,
        client_id: str = "gridledger-gateway",
        batch_size: int = 500,
    ) -> None:
        self.gateway = gateway
        self.batch_size = batch_size
        self._inbox: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="mqtt-gateway", daemon=True)
        self.client = connect_client(broker_url, client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, message: self._inbox.put(message)

    def start(self) -> MqttGatewayBridge:
        self.client.loop_start()
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._worker.join(10)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        if not reason.is_failure:
            client.subscribe(READINGS_TOPIC + "+", qos=QOS)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self._inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            messages = [first]
            while len(messages) < self.batch_size and not self._inbox.empty():
                messages.append(self._inbox.get_nowait())
            self._handle(messages)

    def _handle(self, messages: list[mqtt.MQTTMessage]) -> None:
        parsed: list[SignedReading] = []
        malformed: list[Outcome] = []
        for message in messages:
            reading = _parse(message)
            if reading is not None:
                parsed.append(reading)
            else:
                meter = message.topic.removeprefix(READINGS_TOPIC)
                malformed.append(Outcome(meter, -1, "rejected", "malformed", "unparseable"))
        self.gateway.observe_rejected(malformed)
        outcomes = self._ingest_until_stored(parsed)
        for outcome in outcomes:
            self.client.publish(ACKS_TOPIC + outcome.meter, json.dumps(outcome.to_json()), qos=QOS)
        for message in messages:
            self.client.ack(message.mid, message.qos)

    def _ingest_until_stored(self, batch: list[SignedReading]) -> list[Outcome]:
        while True:
            try:
                return self.gateway.ingest(batch)
            except StoreError as exc:
                if self._stopping.is_set():
                    return []
                log.error("store unavailable, retrying the batch: %s", exc)
                time.sleep(STORE_RETRY_S)


def _parse(message: mqtt.MQTTMessage) -> SignedReading | None:
    try:
        return signed_reading_from_json(json.loads(message.payload))
    except (ValueError, ValidationError) as exc:
        # Unparseable: nobody can be acked by (meter, sequence); drop it and say why.
        log.warning("reading rejected: code=malformed topic=%s %s", message.topic, exc)
        return None


class MqttMeterClient(MeterClient):
    """A :class:`MeterClient` publishing on MQTT and listening on its meter's ack topic."""

    def __init__(self, broker_url: str, meter: str, resend_after_s: float = 2.0) -> None:
        super().__init__(self._publish, resend_after_s)
        self.meter = meter
        self.client = connect_client(broker_url, f"meter-{meter}")
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_ack

    def start(self) -> MqttMeterClient:
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        if not reason.is_failure:
            client.subscribe(ACKS_TOPIC + self.meter, qos=QOS)

    def _on_ack(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self.handle_ack(json.loads(message.payload))
        except (ValueError, TypeError) as exc:
            log.warning("unreadable ack on %s: %s", message.topic, exc)

    def _publish(self, batch: list[SignedReading]) -> None:
        for reading in batch:
            payload = json.dumps(signed_reading_to_json(reading))
            self.client.publish(READINGS_TOPIC + reading.reading.meter, payload, qos=QOS)
