"""From a detector's window flags to the findings a node signs as evidence: one per meter-day."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.iotools.simbench import PROFILE_INTERVAL_S, Int64Array
from gridledger.security.evidence import EVIDENCE_WINDOW_S, DetectorNode, SignedEvidence
from gridledger.security.features import window_ends
from gridledger.security.meter_detector import MeterDetector


@dataclass(frozen=True)
class Finding:
    """The highest-scoring flagged window of one meter in one evidence window (day)."""

    subject: str
    time_s: int  # end of the flagged window
    score: float
    features: dict[str, float]


def meter_findings(
    detector: MeterDetector,
    reported_wh: Int64Array,
    meters: tuple[str, ...],
    episode_start_s: int,
    feeder_wh: Int64Array | None = None,
) -> list[Finding]:
    """Findings over an episode whose first interval starts at ``episode_start_s``.

    ``feeder_wh`` (the feeder meter over the episode) is needed by models that read it.
    """
    features = detector.features(reported_wh, feeder_wh)
    names = detector.config.all_feature_names
    scores = detector.score_features(features)
    end_s = episode_start_s + window_ends() * PROFILE_INTERVAL_S
    # A window ending exactly at midnight belongs to the day it covers.
    day = (end_s - 1) // EVIDENCE_WINDOW_S
    best: dict[tuple[int, int], int] = {}
    for row, w in zip(*np.nonzero(scores >= detector.threshold), strict=True):
        key = (int(row), int(day[w]))
        if key not in best or scores[row, w] > scores[row, best[key]]:
            best[key] = int(w)
    return [
        Finding(
            subject=meters[row],
            time_s=int(end_s[w]) - 1,
            score=float(scores[row, w]),
            features=dict(zip(names, map(float, features[row, w]), strict=True)),
        )
        for (row, _), w in sorted(best.items())
    ]


def sign_findings(
    node: DetectorNode, findings: list[Finding], model_version: str
) -> list[SignedEvidence]:
    return [
        node.evidence(f.subject, f.time_s, "meter_stream", model_version, f.score, f.features)
        for f in findings
    ]
