"""Simulated SimBench meters against a live node (in-process, memory chain) over HTTP and MQTT."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.metering.simulate import simulate_meters, simulated_meters
from gridledger.store import Store
from tests.node.support import fast_settings, running_node
from tests.support.services import Service

DEV_KEY = (1).to_bytes(32, "big")  # the memory chain's operator key (tests.node.support)


def stored_values(store: Store, meter: str) -> list[tuple[str | int, ...]]:
    return [s.reading.values() for s in store.readings_of_meter(meter)]


def test_http_meters_register_report_simbench_energy_and_continue(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'sim.sqlite'}", tmp_path, speed=900)
    with running_node(settings) as (node, url, _operator):
        first = simulate_meters(3, "http", url, intervals=2, operator_key=DEV_KEY)
        again = simulate_meters(3, "http", url, intervals=1)  # registered now: no key needed
        meters = simulated_meters(3)
        for meter in meters:
            expected = [meter.reading(s, 900).values() for s in first.intervals + again.intervals]
            assert stored_values(node.store, meter.address) == expected
        assert {m.address for m in node.store.meters()} >= {m.address for m in meters}
    assert (first.sent, first.accepted, first.rejected, first.unacknowledged) == (6, 6, {}, 0)
    assert (again.sent, again.accepted, again.rejected) == (3, 3, {})
    assert again.intervals[0] > first.intervals[-1]
    assert any(
        v[4] or v[5]
        for m in meters
        for v in [m.reading(t, 900).values() for t in range(0, 86_400, 900)]
    )


def test_unregistered_meters_are_reported_as_rejected(tmp_path: Path) -> None:
    settings = fast_settings(f"sqlite:///{tmp_path / 'sim.sqlite'}", tmp_path, speed=900)
    with running_node(settings) as (node, url, _operator):
        report = simulate_meters(2, "http", url, intervals=1)
        assert node.store.meters() == []
    assert report.accepted == 0 and report.rejected == {"unknown_meter": 2}


def test_simulation_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="via"):
        simulate_meters(1, "smoke", "http://127.0.0.1:1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="api_url"):
        simulate_meters(1, "mqtt", "mqtt://127.0.0.1:1883")


@pytest.mark.mqtt
def test_mqtt_meters_report_through_the_node_bridge(
    tmp_path: Path, mosquitto_server: Service
) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'sim.sqlite'}", tmp_path, speed=900, mqtt_url=mosquitto_server.url
    )
    with running_node(settings) as (node, url, _operator):
        report = simulate_meters(
            2, "mqtt", mosquitto_server.url, intervals=2, api_url=url, operator_key=DEV_KEY
        )
        rows = [stored_values(node.store, m.address) for m in simulated_meters(2)]
    assert (report.sent, report.accepted + report.duplicate, report.rejected) == (4, 4, {})
    assert report.unacknowledged == 0 and [len(r) for r in rows] == [2, 2]
