"""Collaborative detection live: anvil, the node and three `gridledger detector` OS processes.

The node runs with ``evidence_detectors`` = the three detectors' addresses and quorum k = 2, so it
signs nothing itself. Six households behind one feeder meter report real SimBench household
profiles (the first held-out grid, episode 1; 24 intervals kept below) every accelerated
interval; the feeder meter reports their true total with losses and metering noise.
Each detector is its own process with its own key: it signs in, fetches every interval's signed
readings, judges them with its own feeder-balance detector, signs its findings and submits them
to the Evidence contract from its own account.

* Detector 3 goes down (SIGKILL) before the attack; its key then lies about a clean meter.
* From mid-day one household under-reports by 25 %. The two live detectors confirm it on-chain
  from at most 8 intervals of its readings, and the confirmation suspends its owner.
* The lie has one vote and confirms nothing; the clean meter's owner stays active.
* Network side: after the detectors learned their traffic limits from the clean set-up
  traffic (``--learn-traffic-s``), a burst of forged readings from another client address is
  confirmed the same way, suspending no one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.ledger import Deployment, Ledger
from gridledger.ledger.transport import ANVIL_DEV_KEY
from gridledger.metering import Reading, sign_reading, signed_reading_to_json
from gridledger.node.security import client_subject
from gridledger.security.balance import FeederModel
from gridledger.security.data import HELD_OUT_GRIDS, episode, grid_meters
from gridledger.security.evidence import DetectorNode, evidence_window, verify_evidence_file
from gridledger.security.live import MeterStream, verifier_hook
from gridledger.security.onchain import EvidenceContract
from gridledger.security.quorum import Submission
from gridledger.verifier.reexecute import IntervalPackage
from tests.node.support import Actor, Household, domain_of, market, sign_in, wait_for
from tests.support.processes import spawn_gridledger, write_node_config
from tests.support.services import Service, free_port, wait_for_port

# A 15-minute interval lasts 1.5 wall seconds; readings may come 6 s late (a loaded machine).
SPEED, LENGTH_S, GRACE_S = 600, 900, 3600
K = 2
DETECTOR_KEYS = [bytes(key_from_seed(f"e2e-detector:{i}")) for i in range(3)]
DETECTORS = [address_of(k) for k in DETECTOR_KEYS]
N_HOUSEHOLDS = 6
WARMUP_INTERVALS = 12  # the detector's default warm-up
ONSET_INTERVAL = 16  # of the streamed intervals: 12:00 (the profile slice starts at 08:00)
MAX_DELAY_INTERVALS = 8
THIEF, VICTIM = 2, 4  # rows of the households: the under-reporter and the clean meter lied about
LEARN_TRAFFIC_S = 60  # the traffic rules' window: a full window of clean traffic (set-up)


def start_node(tmp: Path, chain: str, stack: ExitStack) -> str:
    port = free_port()
    config = write_node_config(
        tmp,
        chain,
        port,
        SPEED,
        GRACE_S,
        f'evidence_detectors = "{",".join(DETECTORS)}"\nevidence_quorum = {K}\n',
    )
    proc = spawn_gridledger(["node", "--config", str(config)], tmp / "node.log", stack)
    wait_for_port(port, timeout_s=60, proc=proc)
    return f"http://127.0.0.1:{port}"


def start_detector(
    i: int, tmp: Path, chain: str, url: str, feeder: str, stack: ExitStack
) -> subprocess.Popen[bytes]:
    folder = tmp / f"detector-{i}"
    folder.mkdir()
    key_file = folder / "key.hex"
    key_file.write_text("0x" + DETECTOR_KEYS[i].hex() + "\n")
    args = ["detector", "--node-url", url, "--key-file", str(key_file), "--chain", chain]
    args += ["--feeder-meter", feeder, "--evidence-dir", str(folder / "evidence")]
    args += ["--learn-traffic-s", str(LEARN_TRAFFIC_S)]
    proc = spawn_gridledger(args, folder / "detector.log", stack)
    return proc


# profile_slice(24), kept here: loading SimBench takes tens of seconds on a loaded machine.
# test_the_kept_profiles_are_simbench_households (slow) checks them against the data.
TRUE_WH = [
    [int(v) for v in row.split()]
    for row in """
9 10 10 12 10 13 8 10 11 13 11 8 10 10 17 9 9 8 12 13 11 8 10 11
28 31 29 27 25 38 33 37 36 41 32 50 38 38 37 56 108 122 150 64 37 24 67 76
25 27 34 29 30 29 22 16 22 29 38 23 14 18 20 27 25 27 29 25 23 13 14 45
9 12 15 30 23 16 5 12 35 59 59 60 66 110 47 42 36 38 43 40 32 31 28 39
71 78 55 27 65 30 100 157 87 46 47 26 35 29 32 30 24 32 24 40 23 36 38 41
14 16 16 19 19 16 14 13 39 42 28 28 49 46 24 32 29 26 29 25 18 18 79 102
""".strip().splitlines()
]


@pytest.mark.slow
def test_the_kept_profiles_are_simbench_households() -> None:
    assert profile_slice(len(TRUE_WH[0])).tolist() == TRUE_WH


def profile_slice(n_intervals: int) -> np.ndarray[Any, Any]:
    """True Wh of six households of a held-out grid, from 08:00 of a held-out episode's day."""
    meters = grid_meters(HELD_OUT_GRIDS[0])
    ep = episode(meters, 1)
    start = (28 + 2) * 96 + 32  # third judged day, 08:00
    true: np.ndarray[Any, Any] = ep.energy_wh[:N_HOUSEHOLDS, start : start + n_intervals]
    return true.astype(np.int64)


def register(url: str, operator: Actor, name: str) -> Household:
    """A household and its meter, registered by the operator (it only sends readings here)."""
    household = Household(Actor(key_from_seed(f"test-{name}")), key_from_seed(f"test-meter-{name}"))
    participant = {"address": household.participant.address, "role": "prosumer", "label": name}
    meter = {"address": household.meter, "owner": household.participant.address}
    for path, body in [
        ("participants", participant),
        ("meters", meter | {"rated_power_w": 30_000}),
    ]:
        r = httpx.post(f"{url}/v1/{path}", json=body, headers=operator.headers, timeout=60)
        assert r.status_code == 201, r.text
    return household


def post_interval(
    url: str, households: list[Household], feeder: Household, start_s: int, wh: list[int], f: int
) -> None:
    domain = _domain(url)
    body = []
    for household, energy in [*zip(households, wh, strict=True), (feeder, f)]:
        household.sequence += 1
        reading = Reading(household.meter, household.sequence, start_s, LENGTH_S, energy, 0)
        body.append(signed_reading_to_json(sign_reading(reading, household.meter_key, domain)))
    acks = httpx.post(f"{url}/v1/readings", json=body, timeout=30).json()
    assert {a["status"] for a in acks} == {"accepted"}, acks


_DOMAINS: dict[str, Domain] = {}


def _domain(url: str) -> Domain:
    if url not in _DOMAINS:
        _DOMAINS[url] = domain_of(url)
    return _DOMAINS[url]


def wait_interval_end(url: str, start_s: int) -> None:
    wait_for(lambda: market(url)["market_time_s"] >= start_s + LENGTH_S, 30, f"{start_s} to end")


def evidence_files(tmp: Path, i: int) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in (tmp / f"detector-{i}" / "evidence").glob("*.json")]


@pytest.mark.anvil
def test_three_detector_processes_confirm_a_thief_within_8_intervals_and_no_lie(
    tmp_path: Path, anvil_server: Service, processes: ExitStack
) -> None:
    began = time.monotonic()
    chain = anvil_server.url
    url = start_node(tmp_path, chain, processes)
    print(f"\nnode up in {time.monotonic() - began:.1f} s")
    operator = sign_in(url, Actor(ANVIL_DEV_KEY))
    deployment = Deployment.from_json((tmp_path / "state" / "deployment.json").read_text())
    ledger = Ledger.attach(chain, deployment, ANVIL_DEV_KEY)
    info = httpx.get(f"{url}/v1/security/evidence").json()
    assert (info["quorum"], info["detectors"]) == (K, sorted(DETECTORS))
    contract = EvidenceContract(ledger, info["contract"])

    for detector in DETECTORS:  # detectors sign in as auditors of the Registry
        body = {"address": detector, "role": "auditor", "label": "detector"}
        r = httpx.post(f"{url}/v1/participants", json=body, headers=operator.headers, timeout=30)
        assert r.status_code == 201, r.text
    grid = Household(Actor(key_from_seed("unused")), key_from_seed("test-meter-feeder"))
    # The detectors start now: the set-up below is the clean traffic they learn limits from.
    detectors = [start_detector(i, tmp_path, chain, url, grid.meter, processes) for i in range(3)]

    households = [register(url, operator, f"live-{i}") for i in range(N_HOUSEHOLDS)]
    meter = {"address": grid.meter, "owner": deployment.grid_operator, "rated_power_w": 10**6}
    r = httpx.post(f"{url}/v1/meters", json=meter, headers=operator.headers, timeout=30)
    assert r.status_code == 201, r.text

    n_intervals = ONSET_INTERVAL + MAX_DELAY_INTERVALS
    true = np.array(TRUE_WH, dtype=np.int64)[:, :n_intervals]
    feeder_wh = FeederModel().feeder_wh(true, seed=7)
    reported = true.copy()
    reported[THIEF, ONSET_INTERVAL:] = np.rint(0.75 * true[THIEF, ONSET_INTERVAL:])

    print(f"set up in {time.monotonic() - began:.1f} s")
    wait_for(lambda: _logged(tmp_path, "following", range(3)), 60, "the detectors to follow")
    # The open interval has not ended: no detector has judged it yet.
    first_s = int(market(url)["open_interval_start_s"])
    print(f"detectors following after {time.monotonic() - began:.1f} s")
    thief, victim = households[THIEF], households[VICTIM]
    onset_s = first_s + ONSET_INTERVAL * LENGTH_S
    windows = sorted({evidence_window(first_s + t * LENGTH_S)[0] for t in range(n_intervals)})

    def thief_confirmed() -> bool:
        return any(contract.is_confirmed(thief.meter, w) for w in windows)

    lie_window_s = 0
    for t in range(n_intervals):
        start_s = first_s + t * LENGTH_S
        if t == ONSET_INTERVAL - 1:  # detector 3 goes down before the attack, then lies
            detectors[2].send_signal(signal.SIGKILL)
            detectors[2].wait(10)
            liar = DetectorNode("liar", DETECTOR_KEYS[2], ledger.domain)
            lie = liar.evidence(victim.meter, start_s, "meter_balance", "lie", 99.0, {"t": 99.0})
            contract.submit(DETECTOR_KEYS[2], Submission.of(lie))
            lie_window_s = lie.evidence.window_start_s
        wait_interval_end(url, start_s)
        post_interval(
            url, households, grid, start_s, [int(v) for v in reported[:, t]], int(feeder_wh[t])
        )
        assert t >= ONSET_INTERVAL or not thief_confirmed()
    # Only intervals up to onset + 7 hold the thief's readings the detectors may judge.
    wait_for(thief_confirmed, 30, "the confirmation")
    assert not ledger.is_active(thief.participant.address)  # suspended by the Evidence contract

    submitted = [e for e in contract.events() if e.name == "EvidenceSubmitted"]
    on_thief = {e.detector: e.evidence_hash for e in submitted if e.subject == thief.meter}
    assert set(on_thief) == set(DETECTORS[:2])
    for i in range(2):
        files = [f for f in evidence_files(tmp_path, i) if f["evidence"]["subject"] == thief.meter]
        assert len(files) == 1, files
        text = json.dumps(files[0])
        evidence = verify_evidence_file(text, on_thief[DETECTORS[i]] or b"", ledger.domain)
        flagged_s = dict(evidence.features_micro)["interval_start_s"] // 1_000_000
        delay = (flagged_s - onset_s) // LENGTH_S + 1
        assert 1 <= delay <= MAX_DELAY_INTERVALS, delay
        print(f"\ndetector {i}: thief flagged after {delay} intervals of its readings")
        assert all(f["evidence"]["subject"] != victim.meter for f in evidence_files(tmp_path, i))

    # The lie: one vote, nothing confirmed, the victim's owner still active.
    assert contract.votes(victim.meter, lie_window_s) == 1
    assert not any(contract.is_confirmed(victim.meter, w) for w in windows)
    assert ledger.is_active(victim.participant.address)
    honest = [h for h in households if h is not thief]
    assert all(ledger.is_active(h.participant.address) for h in honest)

    # Network side: a forged-reading burst from another client, after the limits were learned.
    wait_for(lambda: _logged(tmp_path, "limits learned", range(2)), 60, "the traffic limits")
    open_s = int(market(url)["open_interval_start_s"])  # not late: the signature is judged
    attacker = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3"))
    forger, domain = key_from_seed("e2e-forger"), domain_of(url)
    forged = [
        signed_reading_to_json(
            sign_reading(Reading(victim.meter, 10**6 + i, open_s, LENGTH_S, 1, 0), forger, domain)
        )
        for i in range(12)
    ]
    with attacker:
        acks = attacker.post(f"{url}/v1/readings", json=forged, timeout=30).json()
    assert {a["code"] for a in acks} == {"bad_signature"}
    source = client_subject("127.0.0.3")
    today_s, _ = evidence_window(int(time.time()))
    wait_for(lambda: contract.is_confirmed(source, today_s), 30, "the traffic confirmation")
    assert ledger.is_active(victim.participant.address)  # a forger blames no one
    for i in range(2):  # and nothing else was found: no honest meter, no honest client
        found = {
            (f["evidence"]["subject"], f["evidence"]["kind"]) for f in evidence_files(tmp_path, i)
        }
        assert found == {(thief.meter, "meter_balance"), (source, "traffic/forged_readings")}
    anomalies = httpx.get(f"{url}/v1/anomalies", timeout=30).json()["items"]
    row = next(a for a in anomalies if a["subject"] == thief.meter)
    assert row["status"] == "confirmed" and row["suspended"] == thief.participant.address
    print(f"live detection end to end: {time.monotonic() - began:.1f} s")


def _logged(tmp: Path, text: str, which: range) -> bool:
    """Whether each of the detectors ``which`` has logged ``text``."""
    for i in which:
        log = tmp / f"detector-{i}" / "detector.log"
        if not log.exists() or text not in log.read_text():
            return False
    return True


def test_a_verifier_hook_names_the_thief_from_the_packages_it_verified(tmp_path: Path) -> None:
    """The same detector inside a verifier (its ``AfterVerify`` hook): no network, no chain.
    A reading whose signature is not its meter's is dropped; in the warm-up, with its interval."""
    domain = Domain("gridledger", "1", 31337, address_of(key_from_seed("hook-market")))
    meter_keys = [key_from_seed(f"hook-meter-{i}") for i in range(N_HOUSEHOLDS)]
    feeder_key = key_from_seed("hook-feeder")
    meters, feeder = [address_of(k) for k in meter_keys], address_of(feeder_key)
    owners = {m: address_of(key_from_seed(f"hook-owner-{m}")) for m in [*meters, feeder]}
    verifier_key = key_from_seed("hook-verifier")
    stream = MeterStream(DetectorNode("verifier", verifier_key, domain), feeder)
    folder = tmp_path / "evidence"
    hook = verifier_hook(stream, None, verifier_key, folder)

    true = np.array(TRUE_WH, dtype=np.int64)
    feeder_wh = FeederModel().feeder_wh(true, seed=7)
    reported = true.copy()
    reported[THIEF, ONSET_INTERVAL:] = np.rint(0.75 * true[THIEF, ONSET_INTERVAL:])
    day_s = 1_796_342_400  # a UTC midnight
    first_s = day_s + 8 * 3600  # the profiles start at 08:00
    flagged_at = None
    for t in range(true.shape[1]):
        start_s = first_s + t * LENGTH_S
        rows = [
            (m, k, int(reported[i, t]))
            for i, (m, k) in enumerate(zip(meters, meter_keys, strict=True))
        ]
        rows.append((feeder, feeder_key, int(feeder_wh[t])))
        readings = [
            sign_reading(Reading(m, t + 1, start_s, LENGTH_S, wh, 0), k, domain)
            for m, k, wh in rows
        ]
        if t == 5:  # a forgery during the warm-up: signed by another key
            readings[VICTIM] = sign_reading(readings[VICTIM].reading, feeder_key, domain)
        package = IntervalPackage(start_s, (), tuple(readings), owners, (), {}, None)  # type: ignore[arg-type]
        hook(package, None, None)
        if flagged_at is None and any(folder.glob("*.json")):
            flagged_at = t
    assert stream.rejected_signatures == 1
    assert flagged_at is not None and 1 <= flagged_at - ONSET_INTERVAL + 1 <= MAX_DELAY_INTERVALS
    files = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert [f["evidence"]["subject"] for f in files] == [meters[THIEF]]
    assert files[0]["evidence"]["kind"] == "meter_balance"
