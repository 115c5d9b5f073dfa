"""The meter-stream detector: a scikit-learn model over window features, with a recorded version.

Two models share one interface (higher score = more anomalous; a window is flagged at or above
``threshold``):

* ``hgb``: a gradient-boosted tree classifier trained on clean windows and windows of synthetic
  attacks (:data:`~gridledger.security.attacks.TRAIN_ATTACKS`) on the training grids and
  episodes. This is the detector the nodes run.
* ``iforest``: an IsolationForest fitted on clean windows only, the unsupervised baseline the
  evaluation reports next to it.

The threshold is calibrated on an episode the model was not fitted on, as the score that
clean windows exceed with probability ``window_fpr``. The version string names the model kind,
its revision and a hash of everything that went into training (grids, episodes, attacks, seed,
hyper-parameters, feature names, scikit-learn version).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import Int64Array
from gridledger.security.attacks import TRAIN_ATTACKS, AttackSpec, inject
from gridledger.security.data import TRAIN_EPISODES, TRAIN_GRIDS, Episode, episodes
from gridledger.security.features import FEATURE_NAMES, attacked_share, window_features

FloatArray = npt.NDArray[np.float64]
ModelKind = Literal["hgb", "iforest"]
MODEL_REVISION = 1
ATTACKED_METER_SHARE = 0.25  # of each episode's meters; community features assume a minority
MIN_ATTACKED_SHARE = 0.25  # a window is a positive example once a quarter of it is attacked


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that determines a trained detector; its hash is part of the model version."""

    kind: ModelKind = "hgb"
    grids: tuple[str, ...] = TRAIN_GRIDS
    fit_episodes: tuple[int, ...] = TRAIN_EPISODES[:-1]
    calibration_episodes: tuple[int, ...] = TRAIN_EPISODES[-1:]
    attacks: tuple[AttackSpec, ...] = TRAIN_ATTACKS
    seed: int = 0
    window_fpr: float = 0.0015
    max_iter: int = 200
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    n_estimators: int = 200  # iforest only
    feature_names: tuple[str, ...] = FEATURE_NAMES
    sklearn_version: str = field(default=sklearn.__version__)

    def __post_init__(self) -> None:
        if not 0.0 < self.window_fpr < 0.5:
            raise ValidationError("window_fpr", f"must be in (0, 0.5), got {self.window_fpr}")
        if set(self.fit_episodes) & set(self.calibration_episodes):
            raise ValidationError("calibration_episodes", "must not overlap fit_episodes")
        if not self.grids or not self.fit_episodes or not self.calibration_episodes:
            raise ValidationError("grids", "need grids, fit and calibration episodes")

    def canonical_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def version(self) -> str:
        return f"meter-{self.kind}/{MODEL_REVISION}+{self.config_hash[:16]}"


@dataclass(frozen=True, eq=False)
class LabelledWindows:
    features: FloatArray  # (n_meters, n_windows, n_features)
    share: FloatArray  # attacked share of each window
    onset: npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class MeterDetector:
    """A fitted model, its calibrated threshold and its version; scores are pure functions."""

    config: TrainingConfig
    model: Any  # HistGradientBoostingClassifier or IsolationForest
    threshold: float

    @property
    def version(self) -> str:
        return self.config.version

    def score_features(self, features: FloatArray) -> FloatArray:
        """Anomaly score of each window of ``features`` (n_meters, n_windows, n_features)."""
        flat = features.reshape(-1, features.shape[-1])
        if self.config.kind == "hgb":
            raw = self.model.predict_proba(flat)[:, 1]
        else:
            raw = -self.model.score_samples(flat)
        scores: FloatArray = np.asarray(raw, dtype=np.float64).reshape(features.shape[:-1])
        return scores

    def score(self, reported_wh: Int64Array) -> FloatArray:
        """Scores of every judged window of an episode's reported streams."""
        return self.score_features(window_features(reported_wh))

    def flags(self, reported_wh: Int64Array) -> npt.NDArray[np.bool_]:
        flagged: npt.NDArray[np.bool_] = self.score(reported_wh) >= self.threshold
        return flagged


def attack_plan(
    n_meters: int, attacks: tuple[AttackSpec, ...], rng: np.random.Generator
) -> dict[int, AttackSpec]:
    """A quarter of the meters (at least one), each with an attack drawn from ``attacks``."""
    n_attacked = max(1, round(ATTACKED_METER_SHARE * n_meters))
    rows = rng.choice(n_meters, size=n_attacked, replace=False)
    return {int(row): attacks[int(rng.integers(len(attacks)))] for row in rows}


def labelled_windows(
    ep: Episode, attacks: tuple[AttackSpec, ...], rng: np.random.Generator
) -> LabelledWindows:
    injected = inject(ep.energy_wh, ep.profile, attack_plan(ep.n_meters, attacks, rng), rng)
    return LabelledWindows(
        window_features(injected.reported_wh), attacked_share(injected.onset), injected.onset
    )


def _training_set(
    config: TrainingConfig, rng: np.random.Generator
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    rows, labels = [], []
    for ep in episodes(config.grids, config.fit_episodes):
        windows = labelled_windows(ep, config.attacks, rng)
        keep = (windows.share == 0) | (windows.share >= MIN_ATTACKED_SHARE)
        rows.append(windows.features[keep])
        labels.append((windows.share[keep] > 0).astype(np.int64))
    return np.concatenate(rows), np.concatenate(labels)


def _fit(config: TrainingConfig, x: FloatArray, y: npt.NDArray[np.int64]) -> Any:
    if config.kind == "hgb":
        model = HistGradientBoostingClassifier(
            max_iter=config.max_iter,
            learning_rate=config.learning_rate,
            max_leaf_nodes=config.max_leaf_nodes,
            class_weight="balanced",
            early_stopping=False,
            random_state=config.seed,
        )
        return model.fit(x, y)
    forest = IsolationForest(n_estimators=config.n_estimators, random_state=config.seed)
    return forest.fit(x[y == 0])


def train_meter_detector(config: TrainingConfig | None = None) -> MeterDetector:
    """Fit on the training grids' fit episodes; calibrate the threshold on clean windows."""
    config = config or TrainingConfig()
    rng = np.random.default_rng(config.seed)
    x, y = _training_set(config, rng)
    model = _fit(config, x, y)
    unfitted = MeterDetector(config, model, threshold=float("inf"))
    clean_scores = []
    for ep in episodes(config.grids, config.calibration_episodes):
        windows = labelled_windows(ep, config.attacks, rng)
        scores = unfitted.score_features(windows.features)
        clean_scores.append(scores[windows.onset < 0].ravel())
    threshold = float(np.quantile(np.concatenate(clean_scores), 1.0 - config.window_fpr))
    if config.kind == "hgb":
        threshold = max(threshold, 0.5)  # never flag what the classifier calls more likely clean
    return MeterDetector(config, model, threshold)
