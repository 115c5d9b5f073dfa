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

Independent detectors (``gridledger detector`` processes, :mod:`gridledger.security.live`): when
``Settings.evidence_detectors`` lists their addresses, the Evidence contract is deployed for them
(quorum ``Settings.evidence_quorum``) and this node signs nothing itself. It serves them, signed
in (as Registry auditors) and listed in that set, what they judge on their own:
``GET /v1/security/intervals/{start}/readings`` (every meter's signed readings of an interval)
and ``GET /v1/security/traffic`` (the raw traffic events, each detector applies its own rules);
``GET /v1/security/evidence`` (public) names the contract, the quorum and the detector set.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections import deque
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
    from gridledger.config import Settings
    from gridledger.node.parts import NodeParts as Node  # a Protocol: runner imports us
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
TRAFFIC_LOG_EVENTS = 100_000  # the newest traffic events kept for detector processes
_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("gridledger_client", default="mqtt")


@functools.lru_cache(maxsize=4096)  # asked for every request: a few clients, many requests
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
    detector_addresses: tuple[str, ...] = ()  # independent detectors; replaces the seeds' set

    def keys(self, seeds: Sequence[str]) -> list[bytes]:
        return [key_from_seed(seed) for seed in seeds]

    def detectors(self) -> list[str]:
        """The addresses the Evidence contract registers."""
        if self.detector_addresses:
            return list(self.detector_addresses)
        return [address_of(k) for k in self.keys(self.detector_seeds)]

    @classmethod
    def from_settings(cls, settings: Settings) -> SecurityPolicy:
        """External detectors when ``evidence_detectors`` lists them (then this node signs
        nothing), else the development seeds signed for in-process."""
        listed = tuple(
            to_checksum_address(a.strip())
            for a in settings.evidence_detectors.split(",")
            if a.strip()
        )
        if not listed:
            return cls(quorum=min(settings.evidence_quorum, len(DETECTOR_SEEDS)))
        return cls(local_seeds=(), quorum=settings.evidence_quorum, detector_addresses=listed)


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
        self._traffic: deque[tuple[int, TrafficEvent]] = deque(maxlen=TRAFFIC_LOG_EVENTS)
        self._traffic_seq = 0
        self._queue: queue.Queue[TrafficAlert | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="security", daemon=True)

    # -- intake ----------------------------------------------------------------------------
    def observe(self, source: str, code: str) -> None:
        """One traffic event now; alerts are queued for the worker."""
        with self._lock:
            self._last_s = max(self._last_s, int(self._clock()))
            event = TrafficEvent(self._last_s, source, code)
            self._traffic_seq += 1
            self._traffic.append((self._traffic_seq, event))
            alerts = self._detector.observe(event)
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
    def traffic_since(self, after_id: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Traffic events with an id above ``after_id`` (oldest first) and the last id."""
        with self._lock:
            rows: list[dict[str, Any]] = [
                {"id": i, "time_s": e.time_s, "source": e.source, "code": e.code}
                for i, e in self._traffic
                if i > after_id
            ][:limit]
            last = rows[-1]["id"] if rows else max(after_id, 0)
        return rows, int(last)

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

    def evidence_of(self, subject: str, window_start_s: int, detector: str) -> str | None:
        """The on-chain evidence hash a detector committed (None: it did not)."""
        if self.contract is None:
            return None
        with self._chain_lock:
            digest = self.contract.evidence_of(subject, window_start_s, detector)
        return None if digest == b"\0" * 32 else "0x" + digest.hex()


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

    def observe_rejected(self, outcomes: Sequence[Outcome]) -> None:
        self.monitor.observe_outcomes(outcomes)  # unparseable items never reach ingest

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# mosquitto publishes its notices here with ``log_dest topic`` (and ``log_type notice``).
MQTT_LOG_TOPIC = "$SYS/broker/log/N"
_MQTT_CONNECTED = re.compile(r"New client connected from (\S+):\d+ as (\S+)")


class MqttConnectionWatcher:
    """Every client connection the MQTT broker logs becomes an ``mqtt_connect`` event of the
    client's address: the broker is the only party that sees reconnect storms. The client id
    proves nothing (MQTT clients choose it), so the address is the source."""

    def __init__(self, broker_url: str, monitor: SecurityMonitor) -> None:
        import os

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from gridledger.metering.mqtt import parse_broker_url

        self.monitor = monitor
        host, port = parse_broker_url(broker_url)
        # A clean session of its own id: notices missed while disconnected are not replayed
        # (the broker keeps none), and two nodes on one broker must not take over each other.
        client_id = f"gridledger-security-{os.getpid()}-{id(self):x}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect_async(host, port, keepalive=10)
        self.client.on_connect = lambda client, *_: client.subscribe(MQTT_LOG_TOPIC, qos=0)
        self.client.on_message = lambda _client, _user, message: self.line(message.payload)

    def start(self) -> MqttConnectionWatcher:
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def line(self, payload: bytes | bytearray) -> None:
        found = _MQTT_CONNECTED.search(payload.decode(errors="replace"))
        if found is not None:
            self.monitor.observe(client_subject(found.group(1)), "mqtt_connect")


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
        self.node: Node | None = None
        self.mqtt: MqttConnectionWatcher | None = None

    @classmethod
    def start(cls, node: Node, policy: SecurityPolicy | None = None) -> NodeSecurity:
        policy = policy or SecurityPolicy.from_settings(node.settings)
        market = node.market
        nodes = [
            DetectorNode(seed, key, node.ledger.domain)
            for seed, key in zip(policy.local_seeds, policy.keys(policy.local_seeds), strict=True)
        ]
        contract = _evidence_contract(node, policy)
        monitor = SecurityMonitor(policy, nodes, contract, market.chain_lock).start()
        market.gateway = ObservedGateway(market.gateway, monitor)  # type: ignore[assignment]
        security = cls(monitor)
        security.node = node
        if node.settings.mqtt_url:
            security.mqtt = MqttConnectionWatcher(node.settings.mqtt_url, monitor).start()
        return security

    def stop(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
        self.monitor.stop()

    def anomalies(self) -> list[dict[str, Any]]:
        return self.monitor.anomalies()

    def wrap(self, app: Any) -> Any:
        """Install the traffic middleware on the API application."""
        app.add_middleware(SecurityMiddleware, monitor=self.monitor)
        if self.node is not None:
            from gridledger.node.security_routes import add_detector_routes

            add_detector_routes(app, self.node, self.monitor)
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
        detectors = policy.detectors()
        contract = EvidenceContract.deploy(node.ledger, policy.quorum, detectors, artifact=artifact)
    meta.put(evidence_contract=contract.address)
    return contract
