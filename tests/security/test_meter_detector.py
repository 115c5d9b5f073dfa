"""The meter-stream detector on held-out SimBench weeks: each attack caught at the reported level.

Bounds sit a little below what ``gridledger security eval`` reports on all held-out data, since
this runs one held-out grid and two episodes (46 attacked meter-weeks per attack type).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridledger.security.attacks import EVAL_ATTACKS, AttackSpec, inject
from gridledger.security.data import HISTORY_INTERVALS, Episode, grid_meters
from gridledger.security.evaluation import clean_false_positive_rate, evaluate_attack
from gridledger.security.features import FEATURE_NAMES, window_ends, window_features
from gridledger.security.meter_detector import MeterDetector, TrainingConfig

# attack -> (minimum recall, minimum precision, maximum median delay in intervals)
BOUNDS = {
    "scaling 20-50% down": (0.5, 0.6, 288),
    "scaling 20-50% up": (0.1, 0.4, 480),
    "offset 30-60%": (0.85, 0.7, 192),
    "replay 1-7 days": (0.95, 0.7, 192),
    "swap (level-matched)": (0.3, 0.6, 384),
    "theft bypass 4-8 h/day": (0.95, 0.7, 96),
    "theft random 0.4-1.0": (0.8, 0.7, 288),
    "theft cap q50-q70": (0.9, 0.7, 192),
}


@pytest.mark.parametrize(
    "spec", [s for s in EVAL_ATTACKS if s.name in BOUNDS], ids=lambda s: s.name
)
def test_each_attack_is_caught_on_held_out_weeks(
    detector: MeterDetector, held_out: list[Episode], spec: AttackSpec
) -> None:
    result = evaluate_attack(detector, spec, held_out, seed=1)
    min_recall, min_precision, max_median_delay = BOUNDS[spec.name]
    assert result.recall >= min_recall, result
    assert result.precision >= min_precision, result
    assert 0 < np.median(result.delays_intervals) <= max_median_delay, result


def test_clean_held_out_meter_days_are_rarely_flagged(
    detector: MeterDetector, held_out: list[Episode]
) -> None:
    clean = clean_false_positive_rate(detector, held_out)
    assert clean["meter_days"] == sum(ep.n_meters for ep in held_out) * 7
    assert clean["fp_rate_per_meter_day"] <= 0.02


def test_small_scaling_is_caught_less_often_than_large(
    detector: MeterDetector, held_out: list[Episode]
) -> None:
    small = evaluate_attack(detector, AttackSpec("10%", "scaling", 0.9, 0.9), held_out, seed=2)
    large = evaluate_attack(detector, AttackSpec("40%", "scaling", 0.6, 0.6), held_out, seed=2)
    assert small.recall < large.recall


def test_model_version_names_kind_and_hashes_the_training_config(detector: MeterDetector) -> None:
    assert detector.version.startswith("meter-hgb/2+")
    assert detector.version == TrainingConfig(kind="hgb", seed=0).version
    assert TrainingConfig(kind="hgb", seed=1).version != detector.version
    other_grids = dataclasses.replace(detector.config, grids=("1-LV-rural2--0-sw",))
    assert other_grids.config_hash != detector.config.config_hash
    assert 0.5 <= detector.threshold < 1.0


def test_attacks_leave_the_stream_untouched_before_onset(held_out: list[Episode]) -> None:
    ep = held_out[0]
    rng = np.random.default_rng(3)
    plan = {row: EVAL_ATTACKS[row % len(EVAL_ATTACKS)] for row in range(ep.n_meters)}
    injected = inject(ep.energy_wh, ep.profile, plan, rng)
    for row in range(ep.n_meters):
        onset = int(injected.onset[row])
        assert HISTORY_INTERVALS <= onset < HISTORY_INTERVALS + 3 * 96
        assert np.array_equal(injected.reported_wh[row, :onset], ep.energy_wh[row, :onset])
        assert not np.array_equal(injected.reported_wh[row, onset:], ep.energy_wh[row, onset:])


def test_replayed_days_correlate_perfectly_with_an_earlier_day(held_out: list[Episode]) -> None:
    ep = held_out[0]
    replay = AttackSpec("replay", "replay", 2, 2)
    injected = inject(ep.energy_wh, ep.profile, {0: replay}, np.random.default_rng(4))
    features = window_features(injected.reported_wh)
    late = window_ends() >= int(injected.onset[0]) + 96
    corr = features[0, late, FEATURE_NAMES.index("replay_corr")]
    assert np.allclose(corr, 1.0)
    clean_corr = window_features(ep.energy_wh)[0, :, FEATURE_NAMES.index("replay_corr")]
    assert clean_corr.max() < 0.999


def test_meters_are_desynchronised_copies_of_real_simbench_profiles() -> None:
    meters = grid_meters("1-LV-semiurb5--0-sw")
    assert meters.n_meters == 92 and meters.energy_wh.dtype == np.int64
    assert all(p.startswith("H0") for p in meters.profile)
    assert len(set(meters.week_offset)) > 30
    # SimBench itself gives these 92 households a dozen distinct series; shifted, twins are rare.
    assert len(np.unique(meters.energy_wh, axis=0)) >= 0.95 * meters.n_meters
