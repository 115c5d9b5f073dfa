"""kill -9 of the node (the gateway) at seeded random moments while meters post readings over HTTP.

The node runs as a subprocess on a real anvil chain with a SQLite file; meters are registered
through the operator endpoints. Several :class:`HttpMeterClient` threads post batches, retry
with backoff while the node is down and resend whatever was never acknowledged. At the end the
set of acknowledged (meter, sequence) must equal the stored rows: nothing acknowledged is lost,
nothing is stored twice, and nothing is stored that was not sent.

The market runs fast (``speed``) with a settlement grace far longer than the test, so every
reading's interval has ended (not ``out_of_window``) and none is settled (not ``late``).
The default run posts 4,000 readings through 3 kills; the ``slow`` run posts 20,000 through 8.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.ledger.transport import ANVIL_DEV_KEY
from gridledger.metering import Reading, SignedReading, sign_reading
from gridledger.metering.client import ReadingKey, reading_key
from gridledger.metering.httpclient import HttpMeterClient
from tests.node.support import Actor, domain_of, market, sign_in, wait_for
from tests.node.test_node_restart import NodeProcess
from tests.support.services import Service, free_port

pytestmark = pytest.mark.anvil

INTERVAL_S = 900
SPEED = 18_000  # 20 market intervals per wall second
OWNER_SEED = "crash-owner"


@dataclass
class CrashRun:
    readings: int
    meters: int
    kills: int
    clients: int = 4
    batch_size: int = 100
    seed: int = 5
    killed: int = 0
    batches_posted: int = 0
    failed_attempts: int = 0
    acks: dict[ReadingKey, str] = field(default_factory=dict)


@pytest.fixture
def node(tmp_path: Path, anvil_server: Service) -> Iterator[NodeProcess]:
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'chain = "{anvil_server.url}"\n'
        f'db_url = "sqlite:///{tmp_path / "node.sqlite"}"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'operator_key = "0x{ANVIL_DEV_KEY.hex()}"\n'
        f"http_port = {port}\nspeed = {SPEED}\nsettle_grace_s = 1000000000\n"
        "rate_limit_participant_per_min = 1000000\nrate_limit_meter_per_min = 1000000\n"
    )
    process = NodeProcess(config, port, tmp_path / "node.log").start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.kill()


def meter_keys(n_meters: int) -> list[bytes]:
    return [key_from_seed(f"crash-meter-{i}") for i in range(n_meters)]


def register_meters(url: str, keys: list[bytes]) -> None:
    operator = sign_in(url, Actor(ANVIL_DEV_KEY))
    owner = address_of(key_from_seed(OWNER_SEED))
    body = {"address": owner, "role": "prosumer", "grid_node": 1, "label": "crash"}
    post = httpx.Client(headers=operator.headers, timeout=30)
    post.post(f"{url}/v1/participants", json=body).raise_for_status()
    for key in keys:
        meter = {"address": address_of(key), "owner": owner, "rated_power_w": 30_000}
        post.post(f"{url}/v1/meters", json=meter).raise_for_status()
    post.close()


def reportable_intervals(url: str, count: int) -> list[int]:
    """``count`` consecutive ended, unsettled intervals (waits for the market clock)."""
    first = int(market(url)["next_settlement_interval_start_s"])
    last_end = first + count * INTERVAL_S
    wait_for(lambda: market(url)["market_time_s"] >= last_end, 30, f"{count} ended intervals")
    return [first + k * INTERVAL_S for k in range(count)]


def signed_readings(keys: list[bytes], starts: list[int], domain: Domain) -> list[SignedReading]:
    """Per meter, sequence k + 1 reports interval k; interleaved interval by interval."""
    rng = random.Random(0)
    out = []
    for k, start_s in enumerate(starts):
        for key in keys:
            reading = Reading(
                address_of(key),
                k + 1,
                start_s,
                INTERVAL_S,
                rng.randrange(0, 2_000),
                rng.randrange(0, 500),
            )
            out.append(sign_reading(reading, key, domain))
    return out


def client_loop(
    client: HttpMeterClient, readings: list[SignedReading], run: CrashRun, lock: threading.Lock
) -> None:
    with client:
        for i in range(0, len(readings), run.batch_size):
            client.submit_batch(readings[i : i + run.batch_size])
            client.resend_due()
        left = client.flush(timeout_s=120)
    with lock:
        assert left == 0, f"{left} readings never acknowledged"
        run.batches_posted += -(-len(readings) // run.batch_size)
        run.failed_attempts += client.failed_attempts
        run.acks.update({key: str(ack["status"]) for key, ack in client.acks.items()})


def kill_while(node: NodeProcess, run: CrashRun, clients: list[HttpMeterClient]) -> None:
    """SIGKILL the node ``run.kills`` times at seeded random moments, restarting it each time.

    A moment is a seeded share of the readings acknowledged so far plus a seeded delay, so the
    kills land while the clients are sending however fast this machine is.
    """
    rng = random.Random(run.seed)
    marks = sorted(rng.uniform(0.05, 0.9) * run.readings for _ in range(run.kills))
    for mark in marks:
        wait_for(
            lambda mark=mark: sum(len(c.acks) for c in clients) >= mark,
            120,
            f"{mark:.0f} acks",
            poll_s=0.01,
        )
        time.sleep(rng.uniform(0.0, 0.2))
        node.kill()
        run.killed += 1
        time.sleep(rng.uniform(0.0, 0.5))
        node.start()


def stored_rows(db_path: Path) -> list[tuple[str, int, int, int, int, int, str]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT meter, sequence, interval_start_s, interval_length_s, imported_wh, "
            "exported_wh, signature FROM readings"
        ).fetchall()


def crash_and_compare(node: NodeProcess, tmp_path: Path, run: CrashRun) -> None:
    url = node.url
    keys = meter_keys(run.meters)
    register_meters(url, keys)
    starts = reportable_intervals(url, run.readings // run.meters)
    readings = signed_readings(keys, starts, domain_of(url))
    assert len(readings) == run.readings
    client_of = {address_of(key): i % run.clients for i, key in enumerate(keys)}
    shares: list[list[SignedReading]] = [[] for _ in range(run.clients)]
    for signed in readings:  # each client sends for its own meters, in sequence order
        shares[client_of[signed.reading.meter]].append(signed)
    lock = threading.Lock()
    clients = [
        HttpMeterClient(
            url,
            batch_size=run.batch_size,
            max_attempts=4,
            backoff_s=0.05,
            max_backoff_s=0.5,
            timeout_s=20,
            resend_after_s=0.5,
        )
        for _ in shares
    ]
    threads = [
        threading.Thread(target=client_loop, args=(client, share, run, lock))
        for client, share in zip(clients, shares, strict=True)
    ]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    kill_while(node, run, clients)
    for thread in threads:
        thread.join(240)
    assert not any(t.is_alive() for t in threads), "a client is still sending"
    assert node.terminate() == 0

    sent = {reading_key(r): r for r in readings}
    acknowledged = {key for key, status in run.acks.items() if status in ("accepted", "duplicate")}
    rows = stored_rows(tmp_path / "node.sqlite")
    stored = [(meter, sequence) for meter, sequence, *_ in rows]
    report = {
        "kills": run.killed,
        "readings": run.readings,
        "acknowledged": len(acknowledged),
        "duplicate_acks": sum(s == "duplicate" for s in run.acks.values()),
        "rejected": {k: s for k, s in run.acks.items() if s == "rejected"},
        "lost": len(acknowledged - set(stored)),
        "stored": len(stored),
        "duplicated_rows": len(stored) - len(set(stored)),
        "failed_attempts": run.failed_attempts,
        "seconds": round(time.monotonic() - began, 1),
    }
    print("crash test:", report)
    assert run.killed == run.kills, report
    assert report["rejected"] == {}, report
    assert acknowledged == set(sent), report  # every reading was answered: accepted once
    assert report["lost"] == 0 and report["duplicated_rows"] == 0, report
    assert set(stored) == set(sent), report  # nothing stored that was not sent
    for meter, sequence, start_s, length_s, imported, exported, signature in rows:
        signed = sent[(meter, sequence)]
        assert (start_s, length_s, imported, exported) == signed.reading.values()[2:]
        assert signature == signed.signature_hex


def test_kill_9_during_4000_http_readings_loses_and_duplicates_nothing(
    node: NodeProcess, tmp_path: Path
) -> None:
    crash_and_compare(node, tmp_path, CrashRun(readings=4_000, meters=40, kills=3))


@pytest.mark.slow
def test_kill_9_during_20000_http_readings_loses_and_duplicates_nothing(
    node: NodeProcess, tmp_path: Path
) -> None:
    crash_and_compare(node, tmp_path, CrashRun(readings=20_000, meters=100, kills=8, seed=11))
