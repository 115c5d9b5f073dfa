"""The streaming detector's scores: relative to the feeder's median meter, interval by interval."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from gridledger.errors import ValidationError
from gridledger.security.stream_detector import StreamDetector, StreamTrainingConfig


def _detector(relative: bool) -> StreamDetector:
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, (400, 3))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0.5).astype(np.int64)
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    config = StreamTrainingConfig(relative_to_median_meter=relative, feature_names=("a", "b", "c"))
    return StreamDetector(config, model)


def test_what_moves_every_meter_at_once_singles_out_no_one() -> None:
    features = np.zeros((9, 5, 3))
    features[:, :, 0] = -1.5
    features[:, 3:, 0] += 1.5  # interval 3 on, every meter looks somewhat suspicious
    features[4, 3:, 0] += 1.5  # ... and meter 4 clearly
    raw = _detector(relative=False).score_features(features)
    relative = _detector(relative=True).score_features(features)
    assert raw[:, 3:].min() > raw[:, :3].max()  # the raw model raises the whole feeder
    np.testing.assert_allclose(relative, raw - np.median(raw, axis=0))
    others = np.delete(relative[:, 3:], 4, axis=0)
    assert relative[4, 3:].min() > np.abs(others).max()


def test_one_interval_scores_as_in_the_whole_stream() -> None:
    detector = _detector(relative=True)
    features = np.random.default_rng(2).normal(0.0, 1.0, (7, 6, 3))
    whole = detector.score_features(features)
    for t in range(features.shape[1]):
        np.testing.assert_allclose(detector.score_features(features[:, t]), whole[:, t])


def test_scores_need_meters_on_the_first_axis() -> None:
    with pytest.raises(ValidationError, match="features"):
        _detector(relative=True).score_features(np.zeros(3))
