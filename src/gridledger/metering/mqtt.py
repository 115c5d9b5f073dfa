"""MQTT transport (paho-mqtt 2.x, QoS 1, persistent sessions) for readings and their acks.

Meters publish one signed reading (JSON) per message on ``gridledger/readings/<meter>``. The
bridge acknowledges the MQTT message to the broker, and publishes the application ack
``{"meter", "sequence", "status", "code"}`` on ``gridledger/acks/<meter>`` (QoS 0: a lost ack
is answered again when the meter resends), only after the gateway has committed the batch. A
broker restart can therefore lose nothing that a meter has not seen acknowledged, and meters
resend until they see the ack (the store dedupes).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, Self
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
# Acks go at most once: a lost ack costs a resend, which the store answers as a duplicate, and
# QoS 1 would double the node's MQTT packets (a PUBACK to read for every ack it sends).
ACK_QOS = 0
PUBLISH_IN_FLIGHT = 2_000  # QoS 1 messages one publisher has unacknowledged
SPREAD_CHUNK = 50  # a spread publisher sends this many messages, then waits for their time
STORE_RETRY_S = 0.5
# What a broker needs for the node's bridge: it acknowledges a batch after its commit, so a
# whole batch must be in flight at once (mosquitto's default, 20 per client, would cut every
# batch to 20 messages), and a burst of every household's message must fit in the queue.
BROKER_LIMITS = "max_inflight_messages 2000\nmax_queued_messages 200000\n"


def parse_broker_url(broker_url: str) -> tuple[str, int]:
    parts = urlsplit(broker_url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ConfigError(f"mqtt_url: expected mqtt://HOST:PORT, got {broker_url!r}")
    return parts.hostname, parts.port or 1883


def connect_client(
    broker_url: str, client_id: str, manual_ack: bool = False, in_flight: int = 20
) -> mqtt.Client:
    """A persistent-session client that keeps reconnecting in its own network thread;
    ``in_flight``: how many QoS 1 messages it may have unacknowledged (paho's default, 20)."""
    host, port = parse_broker_url(broker_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, manual_ack=manual_ack
    )
    client.max_inflight_messages_set(in_flight)  # before connecting: paho refuses it after
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    client.connect_async(host, port, keepalive=10)
    return client


class TopicHandler(Protocol):
    """What an :class:`MqttBatchBridge` does with one topic's messages."""

    topic_prefix: str  # the handler takes ``topic_prefix + "+"``
    batch_size: int  # messages per batch, at most

    def handle(self, messages: list[mqtt.MQTTMessage]) -> list[tuple[str, dict[str, Any]]]:
        """Process one batch; returns the (topic, JSON) acks to publish. May raise StoreError."""
        ...


class MqttBatchBridge:
    """One MQTT client and one worker for several topics, handed to their handlers in batches
    and in priority order: a waiting batch of the first handler's topic always goes before the
    next one's (the node puts readings, whose deadline is the settle grace, before orders,
    whose gate closes an interval later). The messages are acknowledged to the broker, and the
    handler's acks published, only after it returned (its transaction committed). A store that
    is down is waited for: the batch is tried again, nothing is dropped."""

    def __init__(
        self,
        broker_url: str,
        handlers: Sequence[TopicHandler],
        client_id: str = "gridledger-node",
    ) -> None:
        self.handlers = tuple(handlers)
        self._inboxes: list[queue.Queue[mqtt.MQTTMessage]] = [queue.Queue() for _ in handlers]
        self._arrived, self._stopping = threading.Event(), threading.Event()
        self._worker = threading.Thread(target=self._run, name=client_id, daemon=True)
        self.client = connect_client(broker_url, client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def start(self) -> Self:
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
            client.subscribe([(h.topic_prefix + "+", QOS) for h in self.handlers])

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        for handler, inbox in zip(self.handlers, self._inboxes, strict=True):
            if message.topic.startswith(handler.topic_prefix):
                inbox.put(message)
                self._arrived.set()
                return

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._arrived.clear()  # before looking: a message after the look sets it again
            waiting = next(
                ((h, q) for h, q in zip(self.handlers, self._inboxes, strict=True) if q.qsize()),
                None,
            )
            if waiting is None:
                self._arrived.wait(0.1)
                continue
            handler, inbox = waiting
            messages: list[mqtt.MQTTMessage] = []
            while len(messages) < handler.batch_size and not inbox.empty():
                messages.append(inbox.get_nowait())
            self._handle_until_stored(handler, messages)

    def _handle_until_stored(self, handler: TopicHandler, messages: list[mqtt.MQTTMessage]) -> None:
        while True:
            try:
                acks = handler.handle(messages)
                break
            except StoreError as exc:
                if self._stopping.is_set():
                    return  # not acknowledged: the broker delivers them again
                log.error("store unavailable, retrying the batch: %s", exc)
                time.sleep(STORE_RETRY_S)
        for topic, ack in acks:
            self.client.publish(topic, json.dumps(ack), qos=ACK_QOS)
        for message in messages:
            self.client.ack(message.mid, message.qos)


class ReadingHandler:
    """Signed readings (``gridledger/readings/<meter>``) to a :class:`Gateway`."""

    topic_prefix = READINGS_TOPIC
    batch_size = 2_000  # big: verified on every core, stored with one COPY

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def handle(self, messages: list[mqtt.MQTTMessage]) -> list[tuple[str, dict[str, Any]]]:
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
        outcomes = self.gateway.ingest(parsed)
        return [(ACKS_TOPIC + o.meter, o.to_json()) for o in outcomes]


def gateway_bridge(
    gateway: Gateway, broker_url: str, client_id: str = "gridledger-gateway"
) -> MqttBatchBridge:
    """A bridge for readings only (a gateway without a market)."""
    return MqttBatchBridge(broker_url, [ReadingHandler(gateway)], client_id)


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


def publish_and_collect(
    broker_url: str,
    messages: Sequence[tuple[str, dict[str, Any]]],
    ack_filter: str,
    key_of_ack: Callable[[dict[str, Any]], Hashable],
    expected: set[Hashable],
    timeout_s: float = 120.0,
    spread_s: float = 0.0,
) -> dict[Hashable, dict[str, Any]]:
    """Publish (topic, JSON) messages from one client, evenly over ``spread_s`` seconds (0: at
    once), and collect the acks (on ``ack_filter``) whose key is expected, until all arrived or
    ``timeout_s`` after the last: what a load generator or a test standing for many meters or
    households does."""
    acks: dict[Hashable, dict[str, Any]] = {}
    lock, connected = threading.Lock(), threading.Event()
    # paho's default of 20 unacknowledged messages would make a burst wait for round trips.
    client_id = f"gridledger-publisher-{time.time_ns()}"
    client = connect_client(broker_url, client_id, in_flight=PUBLISH_IN_FLIGHT)

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            c.subscribe(ack_filter, qos=QOS)
            connected.set()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            ack = json.loads(message.payload)
            key = key_of_ack(ack)
            with lock:
                if key in expected:
                    acks[key] = ack

    client.on_connect, client.on_message = on_connect, on_message
    client.loop_start()
    try:
        if not connected.wait(10):
            raise ConfigError(f"mqtt_url: no MQTT broker answers at {broker_url}")
        time.sleep(0.2)  # the subscription is in place before the first message goes out
        began, sent = time.monotonic(), []
        for k, (topic, body) in enumerate(messages):
            if spread_s > 0 and k % SPREAD_CHUNK == 0:
                time.sleep(max(began + spread_s * k / len(messages) - time.monotonic(), 0.0))
            sent.append(client.publish(topic, json.dumps(body), qos=QOS))
        deadline = time.monotonic() + timeout_s
        for info in sent:  # the broker has each one before this client goes
            info.wait_for_publish(max(deadline - time.monotonic(), 1.0))
        while time.monotonic() < deadline:
            with lock:
                if len(acks) == len(expected):
                    break
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(acks)
