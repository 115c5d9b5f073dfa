"""The feeder balance names scaled meters, estimates their factor, and vouches for honest ones.

Bounds sit a little below what ``gridledger security eval`` reports on all held-out data (one
held-out grid, two episodes here).
"""

from __future__ import annotations

import numpy as np

from gridledger.security.attacks import EVAL_ATTACKS, AttackSpec, inject
from gridledger.security.auditor import AuditorDetector
from gridledger.security.balance import BalanceConfig, BalanceDetector, FeederModel, persistent
from gridledger.security.data import Episode
from gridledger.security.evaluation import (
    clean_false_positive_rate,
    evaluate_attack,
    feeder_readings,
)
from gridledger.security.features import window_ends
from gridledger.security.meter_detector import MeterDetector

SCALING = {s.name: s for s in EVAL_ATTACKS if s.kind == "scaling"}


def test_one_scaled_meter_is_named_with_its_factor(held_out: list[Episode]) -> None:
    ep = held_out[0]
    row = int(np.argmax(ep.energy_wh.mean(axis=1)))  # a large meter: well above the noise
    spec = AttackSpec("x0.7", "scaling", 0.7, 0.7)
    injected = inject(ep.energy_wh, ep.profile, {row: spec}, np.random.default_rng(5))
    result = BalanceDetector().analyse(injected.reported_wh, feeder_readings(ep, 0))
    late = window_ends() >= int(injected.onset[row]) + 192  # whole span after the onset
    assert np.all(result.t_stat[row, late] > 4)
    assert np.allclose(result.factor[row, late], 0.7, atol=0.05)
    others = np.delete(np.arange(ep.n_meters), row)
    assert not result.t_stat[others][:, late].any()
    assert result.explained[late].all()


def test_a_balanced_feeder_flags_no_one(held_out: list[Episode]) -> None:
    for ep in held_out:
        detector = BalanceDetector()
        assert not detector.flags(ep.energy_wh, feeder_readings(ep, 0)).any()


def test_scaling_of_20_percent_or_more_is_caught(held_out: list[Episode]) -> None:
    for name in ("scaling 20-50% down", "scaling 20-50% up"):
        result = evaluate_attack(BalanceDetector(), SCALING[name], held_out, seed=1)
        assert result.recall >= 0.8 and result.precision >= 0.85, result


def test_the_auditor_keeps_both_detectors_strengths_with_fewer_false_alarms(
    detector: MeterDetector, held_out: list[Episode]
) -> None:
    auditor = AuditorDetector(detector, BalanceDetector())
    scaling = evaluate_attack(auditor, SCALING["scaling 20-50% up"], held_out, seed=1)
    alone = evaluate_attack(detector, SCALING["scaling 20-50% up"], held_out, seed=1)
    assert scaling.f1 >= 0.8 and scaling.f1 > alone.f1 + 0.3, (scaling, alone)
    theft = next(s for s in EVAL_ATTACKS if s.kind == "theft_bypass")
    assert evaluate_attack(auditor, theft, held_out, seed=1).recall >= 0.95
    auditor_fp = clean_false_positive_rate(auditor, held_out)["flagged_meter_days"]
    alone_fp = clean_false_positive_rate(detector, held_out)["flagged_meter_days"]
    assert auditor_fp <= alone_fp


def test_a_noisier_feeder_meter_hides_more() -> None:
    clean = np.full((3, 3360), 100, dtype=np.int64)
    quiet = FeederModel(noise_share=0.001).feeder_wh(clean, 1)
    noisy = FeederModel(noise_share=0.01).feeder_wh(clean, 1)
    assert np.std(noisy) > 5 * np.std(quiet)
    assert abs(np.mean(quiet) / 300 - 1.032) < 0.01  # 3 % losses at the mean load, 0.2 % gain


def test_persistence_needs_consecutive_windows_of_one_sign() -> None:
    signed = np.array([[5.0, 6.0, -7.0, -8.0, 0.0, 9.0]])
    assert persistent(signed, 2).tolist() == [[0.0, 5.0, 0.0, 7.0, 0.0, 0.0]]
    assert persistent(signed, 1).tolist() == [[5.0, 6.0, 7.0, 8.0, 0.0, 9.0]]


def test_balance_version_hashes_its_config() -> None:
    assert BalanceDetector().version.startswith("feeder-balance/1+")
    assert BalanceConfig(threshold=5.0).version != BalanceConfig().version
