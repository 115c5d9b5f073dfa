"""The streaming meter detector: a scikit-learn model over :mod:`streaming` features (pure).

Two models share one interface (higher score = more anomalous):

* ``hgb``: gradient-boosted trees trained on clean and attacked intervals
  (:data:`~gridledger.security.attacks.TRAIN_ATTACKS`) of the training split. The one nodes run.
* ``iforest``: an IsolationForest on the clean intervals only: the unsupervised baseline from
  the literature, on the same features.

With ``relative_to_median_meter`` (the default, and what ``hgb`` is evaluated with) a meter's score
is the model's output minus the median output of all the feeder's meters at the same interval:
with many meters lying at once the feeder balance says that someone lies, and the trees then
raise every meter of the feeder; the median meter is honest while fewer than half lie, so what is
left is what singles the meter out. It needs every meter of the feeder at once (one meter alone
always scores 0); a live node has them, since it judges an interval when all readings are in.

A meter is flagged at interval ``t`` when its score stayed at or above ``threshold`` for the last
``persist_intervals`` intervals. Both numbers are the operating point, chosen on the validation
split (:mod:`evaluation`), never on the data the figures are reported on. The version names the
model kind, a hash of everything that went into training, and the operating point.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.security.attacks import TRAIN_ATTACKS, AttackSpec, inject
from gridledger.security.data import HISTORY_INTERVALS, Episode
from gridledger.security.meter_detector import attack_plan
from gridledger.security.streaming import (
    STREAM_FEATURE_NAMES,
    baseline_of,
    simulated_feeder,
    stream_features,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StreamModelKind = Literal["hgb", "iforest"]
STREAM_REVISION = 2  # 2: scores relative to the median meter


@dataclass(frozen=True)
class StreamTrainingConfig:
    """Everything that determines a trained model; its hash is part of the version."""

    kind: StreamModelKind = "hgb"
    attacks: tuple[AttackSpec, ...] = TRAIN_ATTACKS
    seed: int = 0
    row_stride: int = 2  # train on every second interval: neighbours are near copies
    sparse_share: float = 0.05  # of the meters attacked in each episode's second training run
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    n_estimators: int = 200  # iforest only
    relative_to_median_meter: bool = True  # score minus the median meter's, per interval
    feature_names: tuple[str, ...] = STREAM_FEATURE_NAMES
    sklearn_version: str = field(default=version("scikit-learn"))

    def __post_init__(self) -> None:
        if self.row_stride < 1:
            raise ValidationError("row_stride", f"must be at least 1, got {self.row_stride}")

    @property
    def config_hash(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class StreamRun:
    """The stream features of one episode's judged week, with the attacks injected into it."""

    grid_code: str
    episode: int
    attack: str  # "" for a clean run
    features: FloatArray  # (n_meters, n_intervals, n_features)
    onset: npt.NDArray[np.int64]  # judged-week interval of each meter's onset, -1 when clean
    energy_change: FloatArray  # |reported - true| / true energy after the onset (0 when clean)


def stream_run(
    ep: Episode, plan: dict[int, AttackSpec], rng: np.random.Generator, attack: str = ""
) -> StreamRun:
    """Inject ``plan`` into the episode's judged week and compute its stream features."""
    injected = inject(ep.energy_wh, ep.profile, plan, rng)
    feeder = simulated_feeder(ep.energy_wh, int(rng.integers(2**31)))
    history = injected.reported_wh[:, :HISTORY_INTERVALS]
    base = baseline_of(history, feeder[:HISTORY_INTERVALS])
    judged = injected.reported_wh[:, HISTORY_INTERVALS:]
    features = stream_features(base, history, judged, feeder)
    onset = np.where(injected.onset >= 0, injected.onset - HISTORY_INTERVALS, -1)
    true = ep.energy_wh[:, HISTORY_INTERVALS:].astype(np.float64)
    after = (
        np.arange(judged.shape[1])[None, :] >= np.where(onset >= 0, onset, judged.shape[1])[:, None]
    )
    change = (np.abs(judged - true) * after).sum(axis=1) / np.maximum(
        (true * after).sum(axis=1), 1.0
    )
    return StreamRun(ep.grid_code, ep.episode, attack, features, onset.astype(np.int64), change)


def training_runs(
    train: list[Episode], config: StreamTrainingConfig, rng: np.random.Generator
) -> list[StreamRun]:
    """Two runs per training episode: a quarter of its meters attacked with training attacks,
    then a few (``sparse_share``): with one thief the feeder balance names the meter, with many
    it mostly says that someone lies, and the model must learn both."""
    runs = []
    for ep in train:
        runs.append(stream_run(ep, attack_plan(ep.n_meters, config.attacks, rng), rng))
        rows = rng.choice(ep.n_meters, max(1, round(config.sparse_share * ep.n_meters)), False)
        sparse = {int(r): config.attacks[int(rng.integers(len(config.attacks)))] for r in rows}
        runs.append(stream_run(ep, sparse, rng))
    return runs


def _labelled(runs: list[StreamRun], stride: int) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    rows, labels = [], []
    for run in runs:
        t = np.arange(0, run.features.shape[1], stride)
        rows.append(run.features[:, t].reshape(-1, run.features.shape[-1]))
        attacked = (run.onset[:, None] >= 0) & (t[None, :] >= run.onset[:, None])
        labels.append(attacked.ravel().astype(np.int64))
    return np.concatenate(rows), np.concatenate(labels)


@dataclass(frozen=True, eq=False)
class StreamDetector:
    """A fitted model and its operating point; scoring is a pure function of the features."""

    config: StreamTrainingConfig
    model: Any  # HistGradientBoostingClassifier or IsolationForest
    threshold: float = float("inf")
    persist_intervals: int = 1

    @property
    def version(self) -> str:
        point = f"{self.threshold:.6g}x{self.persist_intervals}"
        return f"stream-{self.config.kind}/{STREAM_REVISION}+{self.config.config_hash[:16]}@{point}"

    def at(self, threshold: float, persist_intervals: int) -> StreamDetector:
        """The same model at another operating point."""
        if persist_intervals < 1:
            raise ValidationError("persist_intervals", f"must be >= 1, got {persist_intervals}")
        return replace(self, threshold=threshold, persist_intervals=persist_intervals)

    def score_features(self, features: FloatArray) -> FloatArray:
        """Score of each meter and interval of ``features``: (n_meters, n_features) for one
        interval (what :func:`~gridledger.security.streaming.step` gives) or (n_meters,
        n_intervals, n_features); axis 0 must be every meter of one feeder."""
        if features.ndim not in (2, 3):
            raise ValidationError("features", f"need (n_meters, [T,] F), got {features.shape}")
        flat = features.reshape(-1, features.shape[-1])
        if self.config.kind == "hgb":
            raw = self.model.decision_function(flat)
        else:
            raw = -self.model.score_samples(flat)
        scores: FloatArray = np.asarray(raw, dtype=np.float64).reshape(features.shape[:-1])
        if self.config.relative_to_median_meter:
            scores = scores - np.median(scores, axis=0, keepdims=True)
        return scores

    def flags(self, scores: FloatArray) -> BoolArray:
        """Per meter and interval of ``scores`` (n, T): flagged at the operating point."""
        flagged: BoolArray = persistent_min(scores, self.persist_intervals) >= self.threshold
        return flagged


def persistent_min(scores: FloatArray, intervals: int) -> FloatArray:
    """min of each score and the ``intervals - 1`` before it (-inf before the stream has them)."""
    out = scores.copy()
    for lag in range(1, intervals):
        earlier = np.full_like(scores, -np.inf)
        earlier[:, lag:] = scores[:, :-lag]
        out = np.minimum(out, earlier)
    return out


def train_stream_detector(config: StreamTrainingConfig, runs: list[StreamRun]) -> StreamDetector:
    """Fit on ``runs`` (the training split); the operating point is chosen elsewhere."""
    x, y = _labelled(runs, config.row_stride)
    # scikit-learn takes seconds to import: only where a model is trained
    from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

    if config.kind == "hgb":
        model: Any = HistGradientBoostingClassifier(
            max_iter=config.max_iter,
            learning_rate=config.learning_rate,
            max_leaf_nodes=config.max_leaf_nodes,
            class_weight="balanced",
            early_stopping=False,
            random_state=config.seed,
        ).fit(x, y)
    else:
        model = IsolationForest(n_estimators=config.n_estimators, random_state=config.seed).fit(
            x[y == 0]
        )
    return StreamDetector(config, model)
