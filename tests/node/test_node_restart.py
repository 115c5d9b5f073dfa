"""The node as a process on a real anvil chain: trade, settle, SIGKILL, restart, continue.

Orders and readings go over HTTP; the chain is asked directly through the API's chain
endpoints. After the kill nothing acknowledged is lost (the open interval's orders clear after
the restart) and nothing is settled twice (one settlement event per interval, settle txs kept).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridledger.ledger import Deployment, Ledger
from gridledger.ledger.transport import ANVIL_DEV_KEY
from tests.node.support import (
    Actor,
    domain_of,
    enrol,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
    reading_body,
    sign_in,
    wait_for,
)
from tests.support.services import REPO, Service, free_port, wait_for_port

ANVIL_KEY_0 = "0x" + ANVIL_DEV_KEY.hex()
pytestmark = pytest.mark.anvil


class NodeProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> NodeProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env = {k: v for k, v in env.items() if not k.startswith("GRIDLEDGER_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gridledger", "node", "--config", str(self.config)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout_s=180, proc=self.proc)  # slow imports on a busy machine
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


@pytest.fixture
def node_config(tmp_path: Path, anvil_server: Service) -> tuple[Path, int]:
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'chain = "{anvil_server.url}"\n'
        f'db_url = "sqlite:///{tmp_path / "node.sqlite"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'operator_key = "{ANVIL_KEY_0}"\n'
        f"http_port = {port}\nspeed = 180\nsettle_grace_s = 360\n"
        "rate_limit_participant_per_min = 100000\nrate_limit_meter_per_min = 100000\n"
    )
    return config, port


@pytest.fixture
def node(node_config: tuple[Path, int], tmp_path: Path) -> Iterator[NodeProcess]:
    process = NodeProcess(node_config[0], node_config[1], tmp_path / "node.log").start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.kill()


def _trade(url: str, a, b, start_s: int, nonce: int) -> list[httpx.Response]:  # type: ignore[no-untyped-def]
    domain = domain_of(url)
    sell = order_body(a, domain, "sell", 1000, 100_000, start_s, nonce)
    buy = order_body(b, domain, "buy", 800, 200_000, start_s, nonce)
    return [
        httpx.post(f"{url}/v1/orders", json=sell, headers=a.participant.headers),
        httpx.post(f"{url}/v1/orders", json=buy, headers=b.participant.headers),
    ]


def _deliver(url: str, a, b, start_s: int) -> None:  # type: ignore[no-untyped-def]
    domain = domain_of(url)
    wait_for(lambda: market(url)["market_time_s"] >= start_s + 900, 15, "the interval to end")
    acks = httpx.post(
        f"{url}/v1/readings",
        json=[reading_body(a, domain, start_s, 0, 1000), reading_body(b, domain, start_s, 800, 0)],
    ).json()
    assert [ack["status"] for ack in acks] == ["accepted", "accepted"], acks


def test_node_settles_on_chain_and_survives_sigkill(
    node: NodeProcess, tmp_path: Path, anvil_server: Service
) -> None:
    url = node.url
    operator = sign_in(url, Actor(bytes.fromhex(ANVIL_KEY_0[2:])))
    a, b = enrol(url, operator, "restart-a"), enrol(url, operator, "restart-b")

    first = open_interval_with_time_left(url)
    placed = _trade(url, a, b, first, 1)
    assert [r.status_code for r in placed] == [201, 201], [r.text for r in placed]
    wait_for(lambda: interval_status(url, first) == "cleared", 15, "gate closure")
    _deliver(url, a, b, first)
    wait_for(lambda: interval_status(url, first) == "settled", 15, "settlement")
    on_chain = httpx.get(f"{url}/v1/chain/intervals/{first}").json()
    assert on_chain["settled"] and on_chain["price_micro_per_kwh"] == 140_000
    settle_tx = httpx.get(f"{url}/v1/intervals/{first}").json()["settle_tx"]

    second = open_interval_with_time_left(url)
    acknowledged = _trade(url, a, b, second, 2)
    assert [r.status_code for r in acknowledged] == [201, 201]
    node.kill()  # SIGKILL while `second` is open with two acknowledged orders

    node.start()
    sign_in(url, operator)
    again = _trade(url, a, b, second, 2)  # the same signed orders, resent after the crash
    assert [r.json()["duplicate"] for r in again] == [True, True]
    wait_for(lambda: interval_status(url, second) == "cleared", 20, "gate closure after restart")
    cleared = httpx.get(f"{url}/v1/intervals/{second}").json()
    assert (
        cleared["cleared_energy_wh"] == 800 and cleared["clearing_price_micro_per_kwh"] == 140_000
    )
    _deliver(url, a, b, second)
    wait_for(lambda: interval_status(url, second) == "settled", 20, "settlement after restart")

    assert httpx.get(f"{url}/v1/intervals/{first}").json()["settle_tx"] == settle_tx
    chain = httpx.get(f"{url}/v1/chain").json()
    rows = httpx.get(f"{url}/v1/intervals").json()["items"]
    settled_rows = [r for r in rows if r["status"] == "settled"]
    assert chain["settled_intervals"] == len(settled_rows) >= 2
    deployment = Deployment.from_json((tmp_path / "state" / "deployment.json").read_text())
    events = Ledger.attach(anvil_server.url, deployment).events()
    per_interval = Counter(
        e.args["intervalStartS"]
        for e in events
        if e.name in ("IntervalSettled", "IntervalSettledByRoot")  # the root path by default
    )
    assert per_interval[first] == per_interval[second] == 1
    assert max(per_interval.values()) == 1
    statement = httpx.get(
        f"{url}/v1/participants/{a.participant.address}/statement", headers=a.participant.headers
    ).json()
    assert {s["interval_start_s"] for s in statement["settlements"]} >= {first, second}


def test_sigterm_stops_the_node_gracefully(node: NodeProcess) -> None:
    assert market(node.url)["speed"] == 180
    assert node.terminate() == 0
