"""Readings over a real mosquitto broker, including a broker killed and restarted mid-run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gridledger.metering import Gateway
from gridledger.metering.mqtt import (
    MqttBatchBridge,
    MqttMeterClient,
    gateway_bridge,
    publish_and_collect,
)
from gridledger.store import Store
from tests.metering.factory import DOMAIN, NOW_S, fleet, register, signed
from tests.support.services import Service

pytestmark = pytest.mark.mqtt


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'mqtt.sqlite'}")
    yield opened
    opened.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, tick: Callable[[], object]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        tick()
        time.sleep(0.1)
    return condition()


def test_broker_restart_loses_and_duplicates_nothing(
    store: Store, mosquitto_server: Service
) -> None:
    meters = fleet(3, prefix="mqtt")
    register(store, meters)
    bridge = gateway_bridge(
        Gateway(store, DOMAIN, lambda: NOW_S),
        mosquitto_server.url,
        client_id="gateway-restart-test",
    ).start()
    clients = {
        m.address: MqttMeterClient(mosquitto_server.url, m.address, 1.0).start() for m in meters
    }
    try:
        for sequence in range(1, 81):
            if sequence == 40:
                mosquitto_server.kill()  # SIGKILL: in-flight messages die with it
            if sequence == 50:
                mosquitto_server.start()
            for m in meters:
                clients[m.address].submit(signed(m, sequence, interval=sequence - 1))
            time.sleep(0.01)

        def all_acked() -> bool:
            return all(not c.pending for c in clients.values())

        def resend() -> None:
            for c in clients.values():
                c.resend_due()

        assert wait_for(all_acked, 45, resend), {a: len(c.pending) for a, c in clients.items()}
    finally:
        for c in clients.values():
            c.stop()
        bridge.stop()
        if mosquitto_server.proc is None:
            mosquitto_server.start()

    for m in meters:
        stored = [r.reading.sequence for r in store.readings_of_meter(m.address)]
        assert stored == list(range(1, 81))  # none lost, none twice
        acks = clients[m.address].acks
        assert {a["status"] for a in acks.values()} <= {"accepted", "duplicate"}
        assert len(acks) == 80


class _Recording:
    """A topic handler that records its batches (and may take its time over each)."""

    batch_size = 10

    def __init__(self, prefix: str, log: list[tuple[str, int]], pause_s: float) -> None:
        self.topic_prefix, self.log, self.pause_s = prefix, log, pause_s

    def handle(self, messages: list[Any]) -> list[tuple[str, dict[str, Any]]]:
        self.log.append((self.topic_prefix, len(messages)))
        time.sleep(self.pause_s)
        return []


def test_the_first_topic_waiting_always_goes_first(mosquitto_server: Service) -> None:
    """Readings before orders: once the first handler's messages wait, every batch of them is
    handled before the next batch of the second handler's."""
    log: list[tuple[str, int]] = []
    first, second = _Recording("t/first/", log, 0.0), _Recording("t/second/", log, 0.3)
    bridge = MqttBatchBridge(mosquitto_server.url, [first, second], "priority-test").start()
    try:
        time.sleep(0.5)  # subscribed
        seconds = [(f"t/second/{i}", {"i": i}) for i in range(60)]
        firsts = [(f"t/first/{i}", {"i": i}) for i in range(40)]
        publish_and_collect(mosquitto_server.url, seconds, "t/acks/+", lambda a: a, set(), 0.0)
        time.sleep(0.4)  # the second handler is busy with its first batches
        publish_and_collect(mosquitto_server.url, firsts, "t/acks/+", lambda a: a, set(), 0.0)
        assert wait_for(lambda: sum(n for _, n in log) == 100, 30, lambda: None), log
    finally:
        bridge.stop()
    kinds = [prefix for prefix, _ in log]
    begin = kinds.index("t/first/")
    end = len(kinds) - kinds[::-1].index("t/first/")
    assert set(kinds[begin:end]) == {"t/first/"}, kinds  # no second batch in between
    assert "t/second/" in kinds[end:], kinds  # the second topic's rest came after
