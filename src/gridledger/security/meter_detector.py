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
from importlib.metadata import version
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import Int64Array
from gridledger.security.attacks import TRAIN_ATTACKS, AttackSpec, inject
from gridledger.security.balance import (
    BALANCE_FEATURE_NAMES,
    BalanceConfig,
    BalanceDetector,
    FeederModel,
)
from gridledger.security.data import TRAIN_EPISODES, TRAIN_GRIDS, Episode, episodes
from gridledger.security.features import FEATURE_NAMES, attacked_share, window_features

FloatArray = npt.NDArray[np.float64]
ModelKind = Literal["hgb", "iforest"]
MODEL_REVISION = 2  # 2: optional feeder-balance features (revision 1 had none)
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
    sklearn_version: str = field(default=version("scikit-learn"))
    # With a feeder model the detector also reads the feeder meter (the grid operator's data):
    # the balance detector's answers become features. None: the meter streams alone.
    feeder: FeederModel | None = None
    balance: BalanceConfig = field(default_factory=BalanceConfig)

    def __post_init__(self) -> None:
        if not 0.0 < self.window_fpr < 0.5:
            raise ValidationError("window_fpr", f"must be in (0, 0.5), got {self.window_fpr}")
        if set(self.fit_episodes) & set(self.calibration_episodes):
            raise ValidationError("calibration_episodes", "must not overlap fit_episodes")
        if not self.grids or not self.fit_episodes or not self.calibration_episodes:
            raise ValidationError("grids", "need grids, fit and calibration episodes")

    @property
    def all_feature_names(self) -> tuple[str, ...]:
        return self.feature_names + (BALANCE_FEATURE_NAMES if self.feeder else ())

    def canonical_json(self) -> str:
        content = asdict(self) | {"all_feature_names": self.all_feature_names}
        return json.dumps(content, sort_keys=True, separators=(",", ":"))

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def version(self) -> str:
        name = f"meter-{self.kind}" + ("-feeder" if self.feeder else "")
        return f"{name}/{MODEL_REVISION}+{self.config_hash[:16]}"


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

    def features(self, reported_wh: Int64Array, feeder_wh: Int64Array | None = None) -> FloatArray:
        """Window features (plus the balance features when the model reads the feeder)."""
        return episode_features(self.config, reported_wh, feeder_wh)

    def score(self, reported_wh: Int64Array, feeder_wh: Int64Array | None = None) -> FloatArray:
        """Scores of every judged window of an episode's reported streams."""
        return self.score_features(self.features(reported_wh, feeder_wh))

    def flags(
        self, reported_wh: Int64Array, feeder_wh: Int64Array | None = None
    ) -> npt.NDArray[np.bool_]:
        flagged: npt.NDArray[np.bool_] = self.score(reported_wh, feeder_wh) >= self.threshold
        return flagged


def episode_features(
    config: TrainingConfig, reported_wh: Int64Array, feeder_wh: Int64Array | None
) -> FloatArray:
    """The features ``config`` names for an episode (the feeder is needed when it names it)."""
    features = window_features(reported_wh)
    if config.feeder is None:
        return features
    if feeder_wh is None:
        raise ValidationError("feeder_wh", "this model reads the feeder meter: pass its readings")
    balance = BalanceDetector(config.balance).analyse(reported_wh, feeder_wh).features()
    return np.concatenate([features, balance], axis=-1)


def attack_plan(
    n_meters: int, attacks: tuple[AttackSpec, ...], rng: np.random.Generator
) -> dict[int, AttackSpec]:
    """A quarter of the meters (at least one), each with an attack drawn from ``attacks``."""
    n_attacked = max(1, round(ATTACKED_METER_SHARE * n_meters))
    rows = rng.choice(n_meters, size=n_attacked, replace=False)
    return {int(row): attacks[int(rng.integers(len(attacks)))] for row in rows}


def labelled_windows(
    ep: Episode, config: TrainingConfig, rng: np.random.Generator
) -> LabelledWindows:
    injected = inject(ep.energy_wh, ep.profile, attack_plan(ep.n_meters, config.attacks, rng), rng)
    feeder = None
    if config.feeder is not None:
        feeder = config.feeder.feeder_wh(ep.energy_wh, int(rng.integers(2**31)))
    features = episode_features(config, injected.reported_wh, feeder)
    return LabelledWindows(features, attacked_share(injected.onset), injected.onset)


def _training_set(
    config: TrainingConfig, rng: np.random.Generator
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    rows, labels = [], []
    for ep in episodes(config.grids, config.fit_episodes):
        windows = labelled_windows(ep, config, rng)
        keep = (windows.share == 0) | (windows.share >= MIN_ATTACKED_SHARE)
        rows.append(windows.features[keep])
        labels.append((windows.share[keep] > 0).astype(np.int64))
    return np.concatenate(rows), np.concatenate(labels)


def _fit(config: TrainingConfig, x: FloatArray, y: npt.NDArray[np.int64]) -> Any:
    # scikit-learn takes seconds to import: only where a model is trained
    from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest

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
        windows = labelled_windows(ep, config, rng)
        scores = unfitted.score_features(windows.features)
        clean_scores.append(scores[windows.onset < 0].ravel())
    threshold = float(np.quantile(np.concatenate(clean_scores), 1.0 - config.window_fpr))
    if config.kind == "hgb":
        threshold = max(threshold, 0.5)  # never flag what the classifier calls more likely clean
    return MeterDetector(config, model, threshold)
