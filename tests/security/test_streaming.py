"""Streaming detection: per-interval features, the small model, and the honest split."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import ValidationError
from gridledger.security.attacks import AttackSpec
from gridledger.security.data import HISTORY_INTERVALS, Episode
from gridledger.security.evaluation import Split, choose_operating_point
from gridledger.security.stream_detector import (
    StreamRun,
    StreamTrainingConfig,
    stream_run,
    train_stream_detector,
    training_runs,
)
from gridledger.security.streaming import (
    STREAM_FEATURE_NAMES,
    baseline_of,
    simulated_feeder,
    start_stream,
    step,
    stream_features,
)

UNDER_25 = AttackSpec("scaling 25% down", "scaling", 0.75, 0.75)
BYPASS = AttackSpec("theft bypass 6 h/day", "theft_bypass", 6, 6)
COLUMN = {name: i for i, name in enumerate(STREAM_FEATURE_NAMES)}


def _features(ep: Episode, reported: np.ndarray) -> np.ndarray:
    feeder = simulated_feeder(ep.energy_wh, 7)
    history = reported[:, :HISTORY_INTERVALS]
    base = baseline_of(history, feeder[:HISTORY_INTERVALS])
    return stream_features(base, history, reported[:, HISTORY_INTERVALS:], feeder)


def test_step_by_step_equals_the_whole_stream(held_out: list[Episode]) -> None:
    ep = held_out[0]
    feeder = simulated_feeder(ep.energy_wh, 3)
    history = ep.energy_wh[:, :HISTORY_INTERVALS]
    base = baseline_of(history, feeder[:HISTORY_INTERVALS])
    whole = stream_features(base, history, ep.energy_wh[:, HISTORY_INTERVALS:], feeder)
    state = start_stream(base, history, feeder[:HISTORY_INTERVALS])
    for t in range(24):  # the balance filter carries state: errors must not grow
        state, features = step(
            state, ep.energy_wh[:, HISTORY_INTERVALS + t], int(feeder[HISTORY_INTERVALS + t])
        )
        np.testing.assert_allclose(features, whole[:, t], rtol=1e-9, atol=1e-9)


def test_under_reporting_shows_in_the_balance_and_the_signed_history(
    held_out: list[Episode],
) -> None:
    ep = held_out[0]
    onset = HISTORY_INTERVALS + 40
    reported = ep.energy_wh.copy()
    reported[5, onset:] = np.rint(reported[5, onset:] * 0.75)
    features = _features(ep, reported)
    week_end = features[:, -1]
    partial = week_end[:, COLUMN["balance_partial_z_7d"]]
    # the feeder saw more than the meters said, in the shape of meter 5's own fluctuations
    assert partial[5] > 3 * np.delete(np.abs(partial), 5).max()
    cusum = features[5, :, COLUMN["level_cusum_low"]]
    assert cusum[-1] > cusum[39]


def test_baseline_needs_enough_history(held_out: list[Episode]) -> None:
    ep = held_out[0]
    with pytest.raises(ValidationError, match="history_wh"):
        baseline_of(ep.energy_wh[:, :100], ep.energy_wh[0, :100])


def test_a_small_model_flags_a_bypass_on_another_week_and_no_clean_meter(
    held_out: list[Episode],
) -> None:
    train_ep, judged_ep = held_out
    config = StreamTrainingConfig(max_iter=40, row_stride=4)
    rng = np.random.default_rng(0)
    model = train_stream_detector(config, training_runs([train_ep], config, rng))
    plan = {3: BYPASS, 11: BYPASS}
    validation = [stream_run(train_ep, {}, rng), stream_run(train_ep, plan, rng, BYPASS.name)]
    point = choose_operating_point(
        validation, [model.score_features(r.features) for r in validation], (BYPASS.name,)
    )
    detector = model.at(point.threshold, point.persist_intervals)
    clean = stream_run(judged_ep, {}, rng)
    attacked = stream_run(judged_ep, plan, rng, BYPASS.name)
    flags = detector.flags(detector.score_features(attacked.features))
    for row in plan:
        assert flags[row, attacked.onset[row] :].any()
        assert not flags[row, : attacked.onset[row]].any()
    assert not detector.flags(detector.score_features(clean.features)).any()


def _run(attack: str, onset: list[int], scores: np.ndarray) -> tuple[StreamRun, np.ndarray]:
    n, t = scores.shape
    run = StreamRun("g", 1, attack, np.zeros((n, t, 1)), np.asarray(onset), np.zeros(n))
    return run, scores


def test_operating_point_keeps_clean_days_within_the_budget() -> None:
    rng = np.random.default_rng(1)
    clean_scores = rng.normal(0.0, 1.0, (40, 7 * 96))
    attacked_scores = rng.normal(0.0, 1.0, (4, 7 * 96))
    attacked_scores[:2, 300:] += 8.0
    runs = [_run("", [-1] * 40, clean_scores), _run("a", [300, 300, -1, -1], attacked_scores)]
    point = choose_operating_point([r for r, _ in runs], [s for _, s in runs], ("a",))
    assert point.threshold > clean_scores.max() or point.persist_intervals > 1
    assert point.validation_fp_per_meter_day <= 0.0005
    assert point.validation_mean_f1 == 1.0


def test_split_parts_share_no_grid_and_no_week() -> None:
    with pytest.raises(ValidationError, match="episodes"):
        Split(validation_episodes=(1, 2))
    with pytest.raises(ValidationError, match="grids"):
        Split(test_grids=("1-LV-rural3--0-sw",))


def test_the_balance_filter_shares_the_gap_among_many_under_reporters(
    held_out: list[Episode],
) -> None:
    ep = held_out[0]
    thieves = [2, 9, 17, 30, 44, 61]
    reported = ep.energy_wh.copy()
    reported[thieves, HISTORY_INTERVALS + 40 :] = np.rint(
        reported[thieves, HISTORY_INTERVALS + 40 :] * 0.6
    )
    week_end = _features(ep, reported)[:, -1]
    t_stat = week_end[:, COLUMN["balance_filter_t"]]
    coefficient = week_end[:, COLUMN["balance_filter_coefficient"]]
    honest = np.delete(np.arange(ep.n_meters), thieves)
    # six meters lie at once: most stand above every honest one, at about 1/0.6 - 1
    assert (t_stat[thieves] > t_stat[honest].max()).sum() >= 5
    assert abs(float(np.median(coefficient[thieves])) - (1 / 0.6 - 1)) < 0.1
    assert abs(float(np.median(coefficient[honest]))) < 0.05
