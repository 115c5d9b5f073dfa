"""Anomaly and intrusion detection with evidence on-chain (pure; the chain edge is ``onchain``).

Meter streams: :func:`train_meter_detector` -> :class:`MeterDetector` (scikit-learn, versioned),
optionally reading the feeder meter; :class:`BalanceDetector`: the feeder's energy balance.
Node traffic: :func:`detect_traffic` / :class:`TrafficDetector` over reason-coded events.
Collaboration: :class:`DetectorNode` signs :class:`Evidence`; :class:`QuorumBook` applies the
k-of-n rule the ``Evidence`` contract enforces. Streaming (every interval):
:func:`baseline_of`, :func:`stream_features` / :func:`step` -> :class:`StreamDetector`.
Measurement: :func:`evaluate` on a train / validation / test :class:`Split`.
"""

from gridledger.security.balance import BalanceConfig, BalanceDetector, FeederModel
from gridledger.security.evaluation import Split, evaluate, format_report
from gridledger.security.evidence import (
    DetectorNode,
    Evidence,
    SignedEvidence,
    verify_evidence_file,
)
from gridledger.security.findings import Finding, meter_findings, sign_findings
from gridledger.security.meter_detector import MeterDetector, TrainingConfig, train_meter_detector
from gridledger.security.quorum import Confirmation, QuorumBook, QuorumRule, Submission
from gridledger.security.stream_detector import (
    StreamDetector,
    StreamTrainingConfig,
    train_stream_detector,
)
from gridledger.security.streaming import (
    MeterBaseline,
    StreamState,
    baseline_of,
    start_stream,
    step,
    stream_features,
)
from gridledger.security.traffic import (
    TrafficAlert,
    TrafficDetector,
    TrafficEvent,
    TrafficRule,
    detect_traffic,
)

__all__ = [
    "BalanceConfig",
    "BalanceDetector",
    "Confirmation",
    "DetectorNode",
    "Evidence",
    "FeederModel",
    "Finding",
    "MeterBaseline",
    "MeterDetector",
    "QuorumBook",
    "QuorumRule",
    "SignedEvidence",
    "Split",
    "StreamDetector",
    "StreamState",
    "StreamTrainingConfig",
    "Submission",
    "TrafficAlert",
    "TrafficDetector",
    "TrafficEvent",
    "TrafficRule",
    "TrainingConfig",
    "baseline_of",
    "detect_traffic",
    "evaluate",
    "format_report",
    "meter_findings",
    "sign_findings",
    "start_stream",
    "step",
    "stream_features",
    "train_meter_detector",
    "train_stream_detector",
    "verify_evidence_file",
]
