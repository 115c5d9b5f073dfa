"""`gridledger ven` as an OS process against the VTN of a live node (`gridledger node`'s Node
with ``openadr_port`` set): the node's VTN knows its enrolled households and nobody else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.flex import FlexAward, FlexRequest
from gridledger.node.runner import Node
from gridledger.store import Participant
from tests.node.support import fast_settings
from tests.openadr.support import INTERVAL_S, next_interval_start, wait_until
from tests.support.services import free_port

GRIDLEDGER = str(Path(sys.executable).with_name("gridledger"))
HOUSEHOLD_TOML = """\
battery_capacity_kwh = 10
battery_soc_kwh = 6
battery_power_kw = 4
shiftable_kw = 0.5
net_power_kw = -2.5
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    tmp_path = tmp_path_factory.mktemp("node")
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'node.sqlite'}",
        tmp_path,
        openadr_port=free_port(),
        openadr_poll_s=1,
        openadr_report_interval_s=1,
    )
    opened = Node.open(settings).start()
    yield opened
    opened.stop()


def _ven(tmp_path: Path, key: bytes, url: str, name: str) -> subprocess.Popen[str]:
    key_file = tmp_path / f"{name}.key"
    key_file.write_text(key.hex())
    household = tmp_path / f"{name}.toml"
    household.write_text(HOUSEHOLD_TOML)
    args = ["ven", "--vtn-url", url, "--key-file", str(key_file), "--household", str(household)]
    env = {**os.environ, "GRIDLEDGER_OPENADR_REPORT_INTERVAL_S": "1"}
    return subprocess.Popen(
        [GRIDLEDGER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_gridledger_ven_process_answers_the_node_vtn(node: Node, tmp_path: Path) -> None:
    assert node.vtn is not None
    key = key_from_seed("openadr-household-1")
    household = address_of(key)
    node.store.add_participant(Participant(household, "prosumer", 3, "household 1"))

    process = _ven(tmp_path, key, node.vtn.url, "h1")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until registered (or the process died)
        assert line.strip() == f"VEN {household} registered with {node.vtn.url}; answering events"
        zone = node.settings.grid_code  # the node's LV grid is one zone: its transformer
        assert node.vtn.vtn.vens[household].zone == zone

        request = FlexRequest("live-1", zone, "up", 3000, next_interval_start(), 2, 180_000)
        started = time.monotonic()
        assert node.vtn.issue(request) == {household: 3000}
        answers = node.vtn.wait_for_answers("live-1", count=1, timeout_s=15)
        print(f"round trip with a VEN process: {time.monotonic() - started:.2f} s")
        assert answers == {household: "optIn"}  # 4 kWh free covers 3 kW for 30 min
        assert process.stdout.readline().strip() == "event live-1: optIn"
        assert node.vtn.awards("live-1") == [
            FlexAward("live-1", household, zone, "up", request.start + i * INTERVAL_S, 750, 180_000)
            for i in range(2)
        ]
        wait_until(lambda: node.vtn.vtn.latest_power_w(household) == -2500, 10, "telemetry")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
    assert process.returncode == 0, err


def test_a_ven_the_node_does_not_know_exits_with_one_line(node: Node, tmp_path: Path) -> None:
    assert node.vtn is not None
    stranger = key_from_seed("openadr-stranger")
    process = _ven(tmp_path, stranger, node.vtn.url, "stranger")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"refused to register VEN {address_of(stranger)}" in err
    assert "Traceback" not in err
    assert address_of(stranger) not in node.vtn.vtn.vens
