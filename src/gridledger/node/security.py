"""The node's security wiring: its traffic feeds the traffic detector; alerts go on-chain.

What the node sees, as :class:`~gridledger.security.TrafficEvent` s:

* every HTTP request (``request``), 401 answers (``auth_failed``) and 429 answers
  (``rate_limited``), from :class:`SecurityMiddleware`;
* every reading the gateway rejects, with its reason code (``bad_signature``, ``replay``...),
  from :class:`ObservedGateway` (HTTP and MQTT alike).

Who is blamed (the evidence's subject) follows what is proven. A reading rejected after its
signature verified (``replay``, ``out_of_window``, ``implausible``, ``inactive_meter``) was sent
by the meter's key: the subject is the meter, and a confirmation suspends its owner. Anything
unsigned or forged (``bad_signature``, ``unknown_meter``...) and failed sign-ins name nobody
provable: the subject is the client connection, as :func:`client_subject` (an address no one
owns), so the anomaly is recorded on-chain but a forger cannot get a real participant suspended.
429s of a signed-in caller name the caller.

Each alert becomes one :class:`~gridledger.security.Evidence` per detector node this node signs
for, submitted to the ``Evidence`` contract (deployed next to the Registry, holding its
SUSPENDER_ROLE) by a worker thread. A development node signs for all of ``DETECTOR_SEEDS``; in
production each detector identity runs on its own operator's node. ``GET /v1/anomalies`` lists
what was flagged and confirmed, from this node's alerts and the contract's events.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ContractRevert, GridledgerError, NotFoundError
from gridledger.metering.gateway import Gateway, Outcome
from gridledger.metering.reading import SignedReading
from gridledger.security.evidence import DetectorNode, SignedEvidence, evidence_window
from gridledger.security.quorum import Submission
from gridledger.security.traffic import (
    DEFAULT_RULES,
    TrafficAlert,
    TrafficDetector,
    TrafficEvent,
    TrafficRule,
)

if TYPE_CHECKING:
    from gridledger.node.runner import Node
    from gridledger.security.onchain import EvidenceContract

log = logging.getLogger(__name__)

# Reasons the gateway gives only after the meter's signature verified: the meter sent them.
SIGNED_BY_METER = frozenset({"replay", "out_of_window", "implausible", "inactive_meter"})
DETECTOR_SEEDS = (
    "detector:community-operator",
    "detector:grid-operator",
    "detector:auditor",
    "detector:regulator",
    "detector:neighbourhood",
)
QUORUM = 3
_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("gridledger_client", default="mqtt")


def client_subject(client: str) -> str:
    """The address standing for a network client (``"127.0.0.1"``): owned by no one."""
    return to_checksum_address(keccak(text=f"gridledger-client:{client}")[-20:])


def traffic_model_version(rules: Sequence[TrafficRule]) -> str:
    canonical = json.dumps(
        [asdict(r) | {"codes": sorted(r.codes)} for r in rules], sort_keys=True
    ).encode()
    return f"traffic-rules/1+{hashlib.sha256(canonical).hexdigest()[:16]}"


@dataclass(frozen=True)
class SecurityPolicy:
    """Detector identities (dev seeds), which of them this node signs for, quorum and rules."""

    detector_seeds: tuple[str, ...] = DETECTOR_SEEDS
    local_seeds: tuple[str, ...] = DETECTOR_SEEDS
    quorum: int = QUORUM
    rules: tuple[TrafficRule, ...] = DEFAULT_RULES

    def keys(self, seeds: Sequence[str]) -> list[bytes]:
        return [key_from_seed(seed) for seed in seeds]


@dataclass
class Anomaly:
    """One (subject, day) as ``GET /v1/anomalies`` shows it."""

    subject: str
    window_start_s: int
    kind: str = ""
    rules: list[str] = field(default_factory=list)
    source: str = ""
    first_seen_s: int = 0
    count: int = 0
    detectors: list[str] = field(default_factory=list)
    evidence_hashes: list[str] = field(default_factory=list)
    confirmed: bool = False
    suspended: str | None = None

    def to_json(self, quorum: int) -> dict[str, Any]:
        return {
            **asdict(self),
            "votes": len(self.detectors),
            "quorum": quorum,
            "status": "confirmed" if self.confirmed else "flagged",
        }


class SecurityMonitor:
    """Thread-safe: observes traffic, raises alerts, signs and submits evidence in a worker."""

    def __init__(
        self,
        policy: SecurityPolicy,
        nodes: list[DetectorNode],
        contract: EvidenceContract | None,
        chain_lock: threading.RLock,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy, self.nodes, self.contract = policy, nodes, contract
        self.model_version = traffic_model_version(policy.rules)
        self._chain_lock, self._clock = chain_lock, clock
        self._detector = TrafficDetector(policy.rules)
        self._lock = threading.Lock()
        self._last_s = 0
        self._local: dict[tuple[str, int], Anomaly] = {}
        self._files: list[SignedEvidence] = []
        self._queue: queue.Queue[TrafficAlert | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="security", daemon=True)

    # -- intake ----------------------------------------------------------------------------
    def observe(self, source: str, code: str) -> None:
        """One traffic event now; alerts are queued for the worker."""
        with self._lock:
            self._last_s = max(self._last_s, int(self._clock()))
            alerts = self._detector.observe(TrafficEvent(self._last_s, source, code))
        for alert in alerts:
            log.warning("security: %s from %s (%d events)", alert.rule, alert.source, alert.count)
            self._queue.put(alert)

    def observe_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        client = client_subject(_CLIENT.get())
        for o in outcomes:
            if o.status == "rejected" and o.code:
                self.observe(o.meter if o.code in SIGNED_BY_METER else client, o.code)

    # -- the worker ------------------------------------------------------------------------
    def start(self) -> SecurityMonitor:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued alert has been handled (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                self._handle(alert)
            except Exception:  # one failed submission must not stop the detector
                log.exception("security: handling an alert failed")
            finally:
                self._queue.task_done()

    def _handle(self, alert: TrafficAlert) -> None:
        window_start_s, _ = evidence_window(alert.window_end_s)
        key = (alert.source, window_start_s)
        with self._lock:
            anomaly = self._local.setdefault(key, Anomaly(alert.source, window_start_s))
            if not anomaly.kind:
                anomaly.kind, anomaly.source = "traffic", "local"
                anomaly.first_seen_s = alert.window_start_s
            if alert.rule not in anomaly.rules:
                anomaly.rules.append(alert.rule)
            anomaly.count += alert.count
        features = {"count": float(alert.count), "window_s": float(self._rule_window(alert))}
        for node in self.nodes:
            signed = node.evidence(
                alert.source,
                alert.window_end_s,
                f"traffic/{alert.rule}",
                self.model_version,
                float(alert.count),
                features,
            )
            self._submit(node, signed)

    def _rule_window(self, alert: TrafficAlert) -> int:
        return next(r.window_s for r in self.policy.rules if r.name == alert.rule)

    def _submit(self, node: DetectorNode, signed: SignedEvidence) -> None:
        self._files.append(signed)
        if self.contract is None:
            return
        try:
            with self._chain_lock:
                self.contract.submit(node.private_key, Submission.of(signed))
        except ContractRevert as exc:
            # One vote per node per subject and day: later evidence of that day stays off-chain.
            if exc.error_name != "AlreadySubmitted":
                raise

    # -- reading ---------------------------------------------------------------------------
    def evidence_files(self) -> list[SignedEvidence]:
        """The signed records kept off-chain (their hashes are on-chain)."""
        with self._lock:
            return list(self._files)

    def anomalies(self) -> list[dict[str, Any]]:
        """Flagged and confirmed anomalies: this node's alerts merged with the chain's record."""
        with self._lock:
            merged = {k: _copy(a) for k, a in self._local.items()}
        if self.contract is not None:
            with self._chain_lock:
                events = self.contract.events()
            for event in events:
                anomaly = merged.setdefault(
                    (event.subject, event.window_start_s),
                    Anomaly(event.subject, event.window_start_s, source="chain"),
                )
                if event.detector is not None and event.evidence_hash is not None:
                    anomaly.detectors.append(event.detector)
                    anomaly.evidence_hashes.append("0x" + event.evidence_hash.hex())
                else:
                    anomaly.confirmed, anomaly.suspended = True, event.suspended
        rows = sorted(merged.values(), key=lambda a: (-a.window_start_s, a.subject))
        return [a.to_json(self.policy.quorum) for a in rows]


def _copy(anomaly: Anomaly) -> Anomaly:
    copied = {**asdict(anomaly), "detectors": [], "evidence_hashes": []}
    return Anomaly(**copied | {"rules": list(anomaly.rules)})


class ObservedGateway:
    """The node's gateway, reporting every rejected reading to the monitor."""

    def __init__(self, inner: Gateway, monitor: SecurityMonitor) -> None:
        self.inner, self.monitor = inner, monitor

    def ingest(self, batch: Sequence[SignedReading]) -> list[Outcome]:
        outcomes = self.inner.ingest(batch)
        self.monitor.observe_outcomes(outcomes)
        return outcomes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SecurityMiddleware:
    """ASGI middleware: each request's client and answer status become traffic events."""

    def __init__(self, app: Any, monitor: SecurityMonitor) -> None:
        self.app, self.monitor = app, monitor

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        token = _CLIENT.set(client)
        source = client_subject(client)
        self.monitor.observe(source, "request")

        async def observed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self._status(scope, source, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            _CLIENT.reset(token)

    def _status(self, scope: Any, source: str, status: int) -> None:
        if status == 401:
            self.monitor.observe(source, "auth_failed")
        elif status == 429:
            self.monitor.observe(_caller(scope) or source, "rate_limited")


def _caller(scope: Any) -> str | None:
    """The signed-in caller of a request, when its bearer token verifies."""
    headers = dict(scope.get("headers") or [])
    value = headers.get(b"authorization", b"").decode(errors="replace")
    if not value.lower().startswith("bearer "):
        return None
    try:
        return str(scope["app"].state.api.tokens.verify(value[7:]).address)
    except (GridledgerError, AttributeError, KeyError):
        return None


class NodeSecurity:
    """What :class:`~gridledger.node.runner.Node` starts: the monitor and its edges."""

    def __init__(self, monitor: SecurityMonitor) -> None:
        self.monitor = monitor

    @classmethod
    def start(cls, node: Node, policy: SecurityPolicy | None = None) -> NodeSecurity:
        policy = policy or SecurityPolicy()
        market = node.market
        nodes = [
            DetectorNode(seed, key, node.ledger.domain)
            for seed, key in zip(policy.local_seeds, policy.keys(policy.local_seeds), strict=True)
        ]
        contract = _evidence_contract(node, policy)
        monitor = SecurityMonitor(policy, nodes, contract, market.chain_lock).start()
        market.gateway = ObservedGateway(market.gateway, monitor)  # type: ignore[assignment]
        return cls(monitor)

    def stop(self) -> None:
        self.monitor.stop()

    def anomalies(self) -> list[dict[str, Any]]:
        return self.monitor.anomalies()

    def wrap(self, app: Any) -> Any:
        """Install the traffic middleware on the API application."""
        app.add_middleware(SecurityMiddleware, monitor=self.monitor)
        return app


def _evidence_contract(node: Node, policy: SecurityPolicy) -> EvidenceContract | None:
    """Attach to the contract the database remembers, or deploy it (None: no artifact)."""
    from gridledger.security.onchain import EvidenceContract, evidence_artifact

    try:
        artifact = evidence_artifact()
    except NotFoundError as exc:
        log.warning("security: evidence stays off-chain: %s", exc)
        return None
    meta, market = node.market.meta, node.market
    saved = meta.get("evidence_contract")
    with market.chain_lock:
        if saved is not None and node.settings.chain != "memory":
            return EvidenceContract(node.ledger, saved, artifact)
        detectors = [address_of(k) for k in policy.keys(policy.detector_seeds)]
        contract = EvidenceContract.deploy(node.ledger, policy.quorum, detectors, artifact=artifact)
    meta.put(evidence_contract=contract.address)
    return contract
