"""The verifier quorum end to end: anvil, the node and four `gridledger verifier` OS processes.

The node runs with ``verifier_mode = "remote"`` and a registered set of 4 verifiers, quorum 3;
each verifier is its own process with its own key and database, talking to the node over HTTP
(SIWE sign-in as a verifier, data endpoints, attestation POSTs) and to anvil directly. Over a
short accelerated day two households trade; one verifier is SIGKILLed after the first traded
interval (the other three still reach the quorum); the operator inflates one trade of one
interval (the test-only ``test_operator_tamper_traded_interval``): the three live verifiers
dispute it (files, and their hashes through an Evidence contract), it settles void (nothing
moves), and every other interval settles and verifies in the participants' statements.

The gate-closure-to-settled latency of every interval after the warm-up is printed as one JSON
line (``-s`` shows it). The slow ``test_gate_closure_to_settled_latency_with_four_verifiers``
measures it over a longer run with all four verifiers live and no tampering
(``VERIFIER_E2E_INTERVALS``, default 60), with the settling transactions' gas.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.ledger import Deployment, Ledger
from gridledger.ledger.transport import ANVIL_DEV_KEY
from gridledger.node.interval import supplier_address
from gridledger.node.statements import build_statement, verify_on_chain
from gridledger.security.onchain import EvidenceContract
from gridledger.settlement import Tariffs
from gridledger.store import Store
from tests.node.support import (
    Actor,
    Household,
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
from tests.support.processes import gridledger_env, spawn_gridledger, write_node_config
from tests.support.services import Service, free_port, wait_for_port

pytestmark = pytest.mark.anvil

SPEED, LENGTH_S, GRACE_S = 180, 900, 360  # a 15-minute interval lasts 5 wall seconds
QUORUM = 3
VERIFIER_KEYS = [bytes(key_from_seed(f"e2e-verifier:{i}")) for i in range(4)]
VERIFIERS = [address_of(k) for k in VERIFIER_KEYS]
TAMPERED = 3  # the operator inflates a trade of the third interval with trades
TRADED_INTERVALS = 4
DETECTING = 0  # this verifier also runs the live detector on what it verified


def start_node(tmp: Path, chain: str, stack: ExitStack, tamper: int = TAMPERED) -> tuple[str, Path]:
    port = free_port()
    config = write_node_config(
        tmp,
        chain,
        port,
        SPEED,
        GRACE_S,
        (
            'verifier_mode = "remote"\n'
            f'verifier_addresses = "{",".join(VERIFIERS)}"\n'
            f"verifier_count = {len(VERIFIERS)}\nverifier_quorum = {QUORUM}\n"
            f"test_operator_tamper_traded_interval = {tamper}\n"
        ),
    )
    proc = spawn_gridledger(["node", "--config", str(config)], tmp / "node.log", stack)
    wait_for_port(port, timeout_s=180, proc=proc)  # imports take long on a busy machine
    return f"http://127.0.0.1:{port}", tmp / "node.sqlite"


def start_verifier(
    i: int, tmp: Path, chain: str, url: str, evidence: str, stack: ExitStack
) -> subprocess.Popen[bytes]:
    folder = tmp / f"verifier-{i}"
    folder.mkdir()
    key_file = folder / "key.hex"
    key_file.write_text("0x" + VERIFIER_KEYS[i].hex() + "\n")
    args = ["verifier", "--chain", chain, "--operator-url", url, "--key-file", str(key_file)]
    args += ["--db", f"sqlite:///{folder / 'verifier.sqlite'}", "--evidence", evidence]
    if i == DETECTING:  # also a detector node, with the buyer's meter standing for the feeder
        args += ["--feeder-meter", address_of(key_from_seed("test-meter-e2e-buyer"))]
    env = gridledger_env(GRIDLEDGER_STATE_DIR=str(folder / "state"))
    proc = spawn_gridledger(args, folder / "verifier.log", stack, env)
    return proc


def dispute_files(tmp: Path, i: int) -> list[Path]:
    return sorted((tmp / f"verifier-{i}" / "verifier").glob("*/disputes/dispute-*.json"))


def attested_by(url: str, verifier: Actor, start_s: int) -> set[str]:
    response = httpx.get(
        f"{url}/v1/verifier/intervals/{start_s}/attestations", headers=verifier.headers
    )
    response.raise_for_status()
    return set(response.json()["signed"])


def all_four_attested(url: str, verifier: Actor) -> bool:
    """Every verifier process is up: all four attested the newest settled interval."""
    rows = httpx.get(f"{url}/v1/intervals").json()["items"]
    settled = [r["interval_start_s"] for r in rows if r["status"] == "settled"]
    return bool(settled) and attested_by(url, verifier, max(settled)) == set(VERIFIERS)


def caught_up(url: str) -> bool:
    """No settlement overdue by more than an interval (the backlog of the start has drained)."""
    status = market(url)
    due_s = status["next_settlement_interval_start_s"] + LENGTH_S + GRACE_S
    return bool(status["market_time_s"] - due_s < LENGTH_S)


def trade_and_deliver(
    url: str, a: Household, b: Household, nonce: int, settled: bool = True
) -> int:
    """Both households order in the open interval, then their meters report what flowed;
    ``settled``: wait for the interval to settle too (else the next one trades meanwhile)."""
    domain = domain_of(url)
    start_s = open_interval_with_time_left(url)
    for household, side, energy_wh, price in ((a, "sell", 1000, 100_000), (b, "buy", 800, 200_000)):
        body = order_body(household, domain, side, energy_wh, price, start_s, nonce)
        response = httpx.post(f"{url}/v1/orders", json=body, headers=household.participant.headers)
        assert response.status_code == 201, response.text
    wait_for(lambda: market(url)["market_time_s"] >= start_s + LENGTH_S, 20, "the interval to end")
    readings = [reading_body(a, domain, start_s, 0, 1000), reading_body(b, domain, start_s, 800, 0)]
    acks = httpx.post(f"{url}/v1/readings", json=readings).json()
    assert [ack["status"] for ack in acks] == ["accepted", "accepted"], acks
    if settled:
        wait_for(lambda: interval_status(url, start_s) == "settled", 40, f"{start_s} to settle")
    return start_s


def all_settled(url: str, starts: list[int]) -> bool:
    return all(interval_status(url, start_s) == "settled" for start_s in starts)


def node_events(url: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event the node still buffers (from the first), read from its SSE stream."""
    events: list[tuple[str, dict[str, Any]]] = []
    kind = ""
    headers = {"Last-Event-ID": "0"}
    with httpx.stream("GET", f"{url}/v1/events", params={"limit_s": 1}, headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind != "hello":
                events.append((kind, json.loads(line.removeprefix("data: "))))
    return events


def latency_s(events: list[tuple[str, dict[str, Any]]], after_s: float) -> dict[int, float]:
    """Wall seconds from each interval's gate closure to its settlement (node timestamps), for
    the intervals whose gate closed after ``after_s`` (before it, the verifier processes were
    still starting and the settlements queue behind the first)."""
    closed = {d["interval_start_s"]: d["at_s"] for k, d in events if k == "gate_closed"}
    settled = {d["interval_start_s"]: d["at_s"] for k, d in events if k == "settled"}
    return {
        s: settled[s] - closed[s] for s in sorted(closed) if s in settled and closed[s] > after_s
    }


def latency_report(gaps: list[float], label: str, **extra: Any) -> dict[str, Any]:
    """Median and p99 of ``gaps``, and the part of them that is the verifiers' (above due)."""
    due_s = (LENGTH_S + GRACE_S) / SPEED  # the scheduler settles no earlier than this
    ordered = sorted(gaps)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    median = statistics.median(ordered)
    return {
        "measure": label,
        "intervals": len(gaps),
        "gate_closure_to_settled_median_s": round(median, 3),
        "gate_closure_to_settled_p99_s": round(p99, 3),
        "settlement_due_after_s": due_s,
        "verifier_overhead_median_s": round(median - due_s, 3),
        "verifier_overhead_p99_s": round(p99 - due_s, 3),
        "speed": SPEED,
        "load_average_1m": os.getloadavg()[0],
        **extra,
    }


def start_four(tmp: Path, chain: str, tamper: int, stack: ExitStack) -> dict[str, Any]:
    """Node, Evidence contract, four verifier processes, two enrolled households; returns once
    every verifier attested a settled interval (the warm-up)."""
    url, node_db = start_node(tmp, chain, stack, tamper)
    operator = sign_in(url, Actor(ANVIL_DEV_KEY))
    deployment = Deployment.from_json((tmp / "state" / "deployment.json").read_text())
    ledger = Ledger.attach(chain, deployment, ANVIL_DEV_KEY)
    assert (ledger.verifiers(), ledger.verifier_threshold()) == (VERIFIERS, QUORUM)
    disputes = EvidenceContract.deploy(ledger, QUORUM, VERIFIERS)
    procs = [start_verifier(i, tmp, chain, url, disputes.address, stack) for i in range(4)]
    watcher = sign_in(url, Actor(VERIFIER_KEYS[0]))  # verifiers sign in with the verifier role
    assert httpx.get(f"{url}/v1/auth/me", headers=watcher.headers).json()["role"] == "verifier"
    a, b = enrol(url, operator, "e2e-seller"), enrol(url, operator, "e2e-buyer")
    wait_for(lambda: all_four_attested(url, watcher), 240, "all four verifiers to attest")
    wait_for(lambda: caught_up(url), 120, "the settlements queued at start to drain")
    return {
        "url": url,
        "node_db": node_db,
        "operator": operator,
        "ledger": ledger,
        "disputes": disputes,
        "verifiers": procs,
        "watcher": watcher,
        "households": (a, b),
        "warm_s": time.time(),
    }


def settle_gas(chain: str, url: str, starts: list[int]) -> list[int]:
    """Gas used by the transaction that settled each interval (anvil receipts)."""
    used = []
    for start_s in starts:
        tx = httpx.get(f"{url}/v1/intervals/{start_s}").json()["settle_tx"]
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt", "params": [tx]}
        used.append(int(httpx.post(chain, json=body).json()["result"]["gasUsed"], 16))
    return used


def test_four_verifier_processes_co_sign_a_day_with_a_kill_and_a_tamper(
    tmp_path: Path, anvil_server: Service, processes: ExitStack
) -> None:
    chain = anvil_server.url
    up = start_four(tmp_path, chain, TAMPERED, processes)
    url, operator, watcher, ledger = up["url"], up["operator"], up["watcher"], up["ledger"]
    a, b = up["households"]
    verifiers, disputes = up["verifiers"], up["disputes"]

    traded = [trade_and_deliver(url, a, b, 1)]
    four = set(VERIFIERS)
    wait_for(lambda: attested_by(url, watcher, traded[0]) == four, 30, "the fourth signature")
    verifiers[3].send_signal(signal.SIGKILL)  # mid-day: the other three carry on
    verifiers[3].wait(10)
    for nonce in range(2, TRADED_INTERVALS + 1):  # one interval after the other, not waiting
        traded.append(trade_and_deliver(url, a, b, nonce, settled=False))
    wait_for(lambda: all_settled(url, traded), 90, "every traded interval to settle")
    tampered = traded[TAMPERED - 1]
    honest = [s for s in traded if s != tampered]

    # Honest intervals: settled with their trade by the three live verifiers' quorum.
    for start_s in honest:
        assert httpx.get(f"{url}/v1/chain/intervals/{start_s}").json()["settled"]
        trades = httpx.get(f"{url}/v1/intervals/{start_s}/trades", headers=operator.headers)
        assert [t["energy_wh"] for t in trades.json()["items"]] == [800], start_s
        if start_s > traded[0]:
            assert attested_by(url, watcher, start_s) == set(VERIFIERS[:3])
    # The tampered interval: disputed by every live verifier, settled void (nothing moved).
    assert httpx.get(f"{url}/v1/chain/intervals/{tampered}").json()["settled"]
    void = httpx.get(f"{url}/v1/intervals/{tampered}/trades", headers=operator.headers).json()
    assert void["items"] == []
    for i in range(3):
        files = dispute_files(tmp_path, i)
        assert [f.name.split("-")[1] for f in files] == [str(tampered)], files
        assert "expected" in files[0].read_text()
    assert dispute_files(tmp_path, 3) == []
    submitted = [e for e in disputes.events() if e.name == "EvidenceSubmitted"]
    assert {e.detector for e in submitted} == set(VERIFIERS[:3])
    assert {e.subject for e in submitted} == {ledger.operator}

    events = node_events(url)
    processes.close()  # the node and the verifiers stop; the chain and the node's store stay

    # The participants' statements verify against the chain for every interval but the void.
    store = Store.open(f"sqlite:///{up['node_db']}")
    tariffs = Tariffs(300_000, 80_000)  # the node's default tariffs
    for household in (a, b):
        statement = build_statement(store, household.participant.address)
        covered = {i.interval_start_s for i in statement.intervals}
        assert set(honest) <= covered
        problems = verify_on_chain(ledger, store, statement, tariffs, supplier_address())
        assert all(p.startswith(f"interval {tampered}") for p in problems), problems
    store.close()

    gaps = latency_s(events, up["warm_s"])
    assert set(traded) <= set(gaps)
    assert min(gaps.values()) >= (LENGTH_S + GRACE_S) / SPEED - 0.5  # never before it is due
    detecting_log = (tmp_path / f"verifier-{DETECTING}" / "verifier.log").read_text()
    assert "also detects (feeder meter" in detecting_log
    assert "after-verify hook" not in detecting_log  # it judged every interval without failing
    label = "4 verifier processes, quorum 3, one killed after the first trade, one tamper"
    print("\n" + json.dumps(latency_report(list(gaps.values()), label)))


@pytest.mark.slow
def test_gate_closure_to_settled_latency_with_four_verifiers(
    tmp_path: Path, anvil_server: Service, processes: ExitStack
) -> None:
    """Item 7 of issue 15: all four verifiers live, a trade in every other interval."""
    chain = anvil_server.url
    up = start_four(tmp_path, chain, 0, processes)
    url, (a, b) = up["url"], up["households"]
    wanted = int(os.environ.get("VERIFIER_E2E_INTERVALS", "60"))
    nonce = 0
    while len(latency_s(node_events(url), up["warm_s"])) < wanted:
        nonce += 1
        trade_and_deliver(url, a, b, nonce)
    gaps = latency_s(node_events(url), up["warm_s"])
    assert all(p.poll() is None for p in up["verifiers"])
    assert attested_by(url, up["watcher"], max(gaps)) == set(VERIFIERS)
    gas = settle_gas(chain, url, sorted(gaps))
    label = "4 verifier processes, quorum 3, all live"
    extra = {"settle_gas_median": statistics.median(gas), "settle_gas_max": max(gas)}
    print("\n" + json.dumps(latency_report(list(gaps.values()), label, **extra)))
