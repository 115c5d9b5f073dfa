"""``gridledger detector``: an independent detector node that follows a gridledger node live.

Another party runs it (the grid operator, the community association, an auditor) with its own
key, registered in the ``Evidence`` contract's detector set and, to sign in, in the Registry as
an auditor. Every interval, once its readings are final, it fetches every meter's *signed*
readings from the node (``/v1/security/intervals/{start}/readings``), re-verifies each signature
itself, and feeds the households' energy and the feeder meter's to its own
:class:`~gridledger.security.live_balance.LiveBalanceDetector`. It also reads the node's raw
traffic events (``/v1/security/traffic``) and applies its own thresholds, learned from a clean
run (:func:`~gridledger.security.traffic.learn_rules`). Each finding is signed as
:class:`~gridledger.security.evidence.Evidence` by this detector's key, kept as a file, and its
hash submitted to the Evidence contract from this detector's own account; the contract confirms
at k distinct detectors and suspends a confirmed meter's owner through the Registry.

:class:`MeterStream` is the part without any network: a verifier process runs it through
:func:`verifier_hook` (its ``AfterVerify`` hook) on every interval it verified.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from gridledger.eip712 import Domain, recover_address
from gridledger.errors import ContractRevert, GridledgerError, ValidationError
from gridledger.metering.reading import SignedReading, reading_digest, signed_reading_from_json
from gridledger.security.evidence import DetectorNode, SignedEvidence, evidence_window
from gridledger.security.live_balance import LiveBalanceConfig, LiveBalanceDetector
from gridledger.security.traffic import (
    DEFAULT_RULES,
    TrafficDetector,
    TrafficEvent,
    TrafficRule,
    learn_rules,
)

if TYPE_CHECKING:
    from gridledger.security.onchain import EvidenceContract
    from gridledger.verifier.process import AfterVerify
    from gridledger.verifier.reexecute import IntervalPackage

log = logging.getLogger(__name__)
METER_KIND = "meter_balance"
TRAFFIC_MODEL = "traffic-learned/1"


def reading_is_signed_by_its_meter(signed: SignedReading, domain: Domain) -> bool:
    try:
        signer = recover_address(reading_digest(signed.reading, domain), signed.signature)
    except (GridledgerError, ValueError):
        return False
    return signer == signed.reading.meter


@dataclass
class MeterStream:
    """Whole intervals of signed readings -> this detector's signed findings about meters.

    The households are every registered meter except ``feeder_meter``; when that set changes the
    detector starts a new warm-up (its fit describes one set of meters), from complete intervals
    only. After it, a household missing from an interval (or whose reading is not signed by its
    meter) holds its last value; an interval without the feeder reading is skipped.
    One finding per (meter, evidence day): the contract counts one vote per detector anyway.
    """

    node: DetectorNode
    feeder_meter: str
    config: LiveBalanceConfig = field(default_factory=LiveBalanceConfig)
    households: tuple[str, ...] = ()
    detector: LiveBalanceDetector | None = None
    _last: dict[str, float] = field(default_factory=dict)
    _reported: set[tuple[str, int]] = field(default_factory=set)
    rejected_signatures: int = 0

    def observe_interval(
        self, interval_start_s: int, meters: Iterable[str], readings: Sequence[SignedReading]
    ) -> list[SignedEvidence]:
        households = tuple(sorted(m for m in set(meters) if m != self.feeder_meter))
        if households != self.households or self.detector is None:
            self.households = households
            self.detector = LiveBalanceDetector(len(households), self.config)
        energy: dict[str, float] = {}
        for signed in readings:
            r = signed.reading
            if r.interval_start_s != interval_start_s:
                continue
            if not reading_is_signed_by_its_meter(signed, self.node.domain):
                self.rejected_signatures += 1
                continue
            energy[r.meter] = energy.get(r.meter, 0.0) + float(r.imported_wh - r.exported_wh)
        if self.feeder_meter not in energy or not households:
            return []
        if not self.detector.warm and not energy.keys() >= set(households):
            # The warm-up fits the feeder's losses and noise: a held value there would make the
            # fit loose for good. Later a missing meter holds its last value, so that a thief
            # who stops reporting does not stop being compared with the feeder.
            return []
        for meter in households:
            if meter in energy:
                self._last[meter] = energy[meter]
        reported = np.array([self._last.get(m, 0.0) for m in households])
        flags = self.detector.observe(interval_start_s, reported, energy[self.feeder_meter])
        found = []
        for flag in flags:
            subject = households[flag.meter]
            key = (subject, evidence_window(interval_start_s)[0])
            if key in self._reported:
                continue
            self._reported.add(key)
            found.append(
                self.node.evidence(
                    subject,
                    interval_start_s,
                    METER_KIND,
                    self.detector.version,
                    flag.t_stat,
                    flag.features(),
                )
            )
        return found


def judge_verified_interval(stream: MeterStream, package: IntervalPackage) -> list[SignedEvidence]:
    """For a verifier that has just verified ``package``: this detector's findings about it.

    The verifier submits what comes back through :func:`submit_findings` (its key must be in the
    Evidence contract's detector set) or keeps the files.
    """
    return stream.observe_interval(
        package.interval_start_s, package.meter_owners.keys(), package.readings
    )


def verifier_hook(
    stream: MeterStream, contract: EvidenceContract | None, key: bytes, folder: Path
) -> AfterVerify:
    """An ``AfterVerify`` hook for ``VerifierConfig.after_verify``: the verifier, one more
    independent node, judges every interval it verified and submits its findings (``key`` must
    be in the Evidence contract's detector set; ``contract`` None keeps the files only)."""

    def after_verify(package: IntervalPackage, _facts: object, _verdict: object) -> None:
        submit_findings(judge_verified_interval(stream, package), contract, key, folder)

    return after_verify


def submit_findings(
    findings: Sequence[SignedEvidence],
    contract: EvidenceContract | None,
    key: bytes,
    folder: Path,
) -> list[SignedEvidence]:
    """Keep each evidence file and submit its hash; the ones the contract took."""
    from gridledger.security.quorum import Submission

    folder.mkdir(parents=True, exist_ok=True)
    taken = []
    for signed in findings:
        digest = signed.evidence.evidence_hash.hex()
        (folder / f"evidence-{digest}.json").write_text(signed.to_file())
        if contract is None:
            continue
        try:
            contract.submit(key, Submission.of(signed))
        except ContractRevert as exc:
            # One vote per detector per subject and day; the file stays as the record.
            log.info("detector: %s stays off-chain: %s", signed.evidence.subject, exc.error_name)
            continue
        log.warning(
            "detector: submitted %s about %s", signed.evidence.kind, signed.evidence.subject
        )
        taken.append(signed)
    return taken


@dataclass
class TrafficStream:
    """Raw traffic events -> findings. Events before ``learn_until_s`` are the clean run the
    limits are learned from (:func:`learn_rules`); it should span the rules' longest window, or
    a busy honest source's full-window count is under-estimated. ``learn_until_s`` 0: the
    default limits from the first event on."""

    node: DetectorNode
    learn_until_s: int = 0
    rules: tuple[TrafficRule, ...] = DEFAULT_RULES
    _clean: list[TrafficEvent] = field(default_factory=list)
    _detector: TrafficDetector | None = None

    @property
    def learning(self) -> bool:
        return self._detector is None

    def observe(self, events: Sequence[TrafficEvent]) -> list[SignedEvidence]:
        found = []
        for event in events:
            if self._detector is None:
                if event.time_s < self.learn_until_s:
                    self._clean.append(event)
                    continue
                if self.learn_until_s > 0:
                    self.rules = learn_rules(self._clean, self.rules)
                    log.info("detector: traffic limits learned: %s", self.limits())
                self._detector = TrafficDetector(self.rules)
            for alert in self._detector.observe(event):
                window_s = next(r.window_s for r in self.rules if r.name == alert.rule)
                features = {"count": float(alert.count), "window_s": float(window_s)}
                found.append(
                    self.node.evidence(
                        alert.source,
                        alert.window_end_s,
                        f"traffic/{alert.rule}",
                        f"{TRAFFIC_MODEL}+{self.limits_digest()}",
                        float(alert.count),
                        features,
                    )
                )
        return found

    def limits(self) -> dict[str, int]:
        return {r.name: r.max_count for r in self.rules}

    def limits_digest(self) -> str:
        import hashlib

        canonical = json.dumps(self.limits(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]


@dataclass(frozen=True)
class DetectorConfig:
    node_url: str
    key: bytes
    chain: str | None  # None: findings are signed and kept as files, not submitted
    feeder_meter: str | None  # None: no energy-balance detection, traffic only
    evidence_dir: Path
    balance: LiveBalanceConfig = field(default_factory=LiveBalanceConfig)
    learn_traffic_s: int = 0
    poll_s: float = 1.0  # against intervals of minutes; every poll is three requests to the node
    http_timeout_s: float = 30.0


class DetectorProcess:
    """One detector: follow the node's intervals and traffic, judge, sign, submit."""

    def __init__(self, config: DetectorConfig) -> None:
        from gridledger.eip712 import address_of
        from gridledger.ledger import Deployment, Ledger
        from gridledger.verifier.client import OperatorClient

        self.config = config
        self.address = address_of(config.key)
        self.client = OperatorClient(config.node_url, config.key, config.http_timeout_s)
        published = self.client.public("/v1/verifier/deployment")
        deployment = Deployment.from_json(json.dumps(published["deployment"]))
        info = self.client.public("/v1/security/evidence")
        if self.address not in set(info["detectors"]):
            raise ValidationError("key_file", f"{self.address} is not a registered detector")
        self.contract: EvidenceContract | None = None
        if config.chain is not None:
            from gridledger.security.onchain import EvidenceContract

            ledger = Ledger.attach(config.chain, deployment, config.key)
            domain = ledger.domain
            if info["contract"] is not None:
                self.contract = EvidenceContract(ledger, str(info["contract"]))
        else:
            chain_id = int(self.client.public("/v1/chain")["chain_id"])
            domain = Domain("gridledger", "1", chain_id, deployment.market)
        identity = DetectorNode(f"detector:{self.address}", config.key, domain)
        self.meters = (
            MeterStream(identity, config.feeder_meter, config.balance)
            if config.feeder_meter is not None
            else None
        )
        learn_until_s = int(time.time()) + config.learn_traffic_s if config.learn_traffic_s else 0
        self.traffic = TrafficStream(identity, learn_until_s)
        market = self.client.public("/v1/market")
        self.length_s = int(market["interval_length_s"])
        self.next_interval_s = int(market["open_interval_start_s"])
        self.traffic_after = 0
        self.submitted: list[SignedEvidence] = []
        self.stop = threading.Event()

    def run(self) -> None:
        log.info(
            "detector %s following %s from interval %d",
            self.address,
            self.config.node_url,
            self.next_interval_s,
        )
        while not self.stop.is_set():
            try:
                self.step()
            except (GridledgerError, OSError, httpx.HTTPError) as exc:
                log.warning("detector: %s; retrying", exc)
            self.stop.wait(self.config.poll_s)

    def step(self) -> list[SignedEvidence]:
        """Judge every interval whose readings are final, then the new traffic events."""
        findings = self._intervals() + self._traffic()
        taken = submit_findings(findings, self.contract, self.config.key, self.config.evidence_dir)
        self.submitted.extend(taken)
        return findings

    def _intervals(self) -> list[SignedEvidence]:
        if self.meters is None:
            return []
        found: list[SignedEvidence] = []
        market = self.client.public("/v1/market")
        now_s, grace_s = int(market["market_time_s"]), int(market["settle_grace_s"])
        while self.next_interval_s + self.length_s <= now_s:
            start = self.next_interval_s
            data = self.client.get(f"/v1/security/intervals/{start}/readings")
            meters = [m["address"] for m in data["meters"]]
            readings = [signed_reading_from_json(r) for r in data["readings"]]
            complete = {r.reading.meter for r in readings} >= set(meters)
            if not complete and start + self.length_s + grace_s > now_s:
                break  # some meter may still report: wait, but not past the settle grace
            found.extend(self.meters.observe_interval(start, meters, readings))
            self.next_interval_s += self.length_s
        return found

    def _traffic(self) -> list[SignedEvidence]:
        data = self.client.get(f"/v1/security/traffic?after_id={self.traffic_after}")
        self.traffic_after = int(data["last_id"])
        events = [
            TrafficEvent(int(e["time_s"]), str(e["source"]), str(e["code"])) for e in _rows(data)
        ]
        return self.traffic.observe(events)

    def close(self) -> None:
        self.client.close()


def _rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(data["events"])


def run_detector(config: DetectorConfig) -> None:
    """Run until SIGTERM/SIGINT."""
    from gridledger._service import run_until_signal

    run_until_signal(DetectorProcess(config))


def detector_config(
    node_url: str,
    key_file: Path,
    chain: str | None,
    feeder_meter: str | None,
    learn_traffic_s: int,
    evidence_dir: Path | None,
    passphrase_file: Path | None,
) -> DetectorConfig:
    """The CLI's flags as a config; evidence files default to a folder named after the key."""
    from eth_utils.address import is_checksum_address

    from gridledger.eip712 import address_of
    from gridledger.verifier.keyfile import load_key_file

    if feeder_meter is not None and not is_checksum_address(feeder_meter):
        raise ValidationError("feeder_meter", f"not a checksummed address: {feeder_meter!r}")
    key = load_key_file(key_file, passphrase_file)
    folder = evidence_dir or Path(".gridledger/detector") / address_of(key) / "evidence"
    return DetectorConfig(
        node_url, key, chain, feeder_meter, folder, learn_traffic_s=learn_traffic_s
    )
