"""``gridledger security eval``: inject known attacks into held-out SimBench weeks and measure.

Held out means other grids (``HELD_OUT_GRIDS``) and other days (odd episodes) than training.
Per attack type, a quarter of each held-out episode's meters is attacked from an onset in the
first three judged days to the end of the week. The unit of precision and recall is the
meter-week: an attacked meter is a true positive when a window overlapping its attack is
flagged; a false positive is a clean meter flagged at all, or an attacked one flagged before
its onset. The delay is intervals from onset to the end of the first flagged window. The
false-positive rate per meter-day is measured on the held-out episodes left entirely clean.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from gridledger.iotools.simbench import INTERVALS_PER_DAY, Int64Array
from gridledger.security.attacks import EVAL_ATTACKS, AttackSpec, inject
from gridledger.security.auditor import AuditorDetector
from gridledger.security.balance import BalanceDetector, FeederModel
from gridledger.security.data import (
    HELD_OUT_EPISODES,
    HELD_OUT_GRIDS,
    HISTORY_INTERVALS,
    JUDGED_DAYS,
    Episode,
    episodes,
)
from gridledger.security.features import window_ends
from gridledger.security.meter_detector import (
    TrainingConfig,
    attack_plan,
    train_meter_detector,
)

BoolArray = npt.NDArray[np.bool_]
FEEDER = FeederModel()  # the simulated feeder meter of every held-out grid


class EpisodeDetector(Protocol):
    """What the evaluation runs: flags per meter and judged window of an episode."""

    @property
    def version(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    def flags(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> BoolArray: ...


def feeder_readings(ep: Episode, seed: int, model: FeederModel = FEEDER) -> Int64Array:
    """The feeder meter over a held-out episode: the true loads, losses and meter error."""
    noise_seed = zlib.crc32(f"{ep.grid_code}:{ep.episode}:{seed}".encode())
    return model.feeder_wh(ep.energy_wh, noise_seed)


@dataclass(frozen=True)
class AttackResult:
    """Meter-week counts and delays of one attack type."""

    attack: str
    true_positives: int
    false_negatives: int
    false_positives: int
    delays_intervals: tuple[int, ...]

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        attacked = self.true_positives + self.false_negatives
        return self.true_positives / attacked if attacked else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_json(self) -> dict[str, Any]:
        delays = np.asarray(self.delays_intervals or (0,), dtype=np.float64)
        return {
            "attack": self.attack,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
            "true_positives": self.true_positives,
            "false_negatives": self.false_negatives,
            "false_positives": self.false_positives,
            "delay_median_intervals": float(np.median(delays)) if self.delays_intervals else None,
            "delay_p90_intervals": float(np.quantile(delays, 0.9))
            if self.delays_intervals
            else None,
        }


def judge_episode(
    flags: BoolArray, onset: npt.NDArray[np.int64]
) -> tuple[int, int, int, list[int]]:
    """(TP, FN, FP, delays) of one episode's window flags, counted per meter."""
    ends = window_ends()
    tp = fn = fp = 0
    delays: list[int] = []
    for row in range(flags.shape[0]):
        flagged_ends = ends[flags[row]]
        if onset[row] < 0:
            fp += int(flagged_ends.size > 0)
            continue
        fp += int(bool((flagged_ends <= onset[row]).any()))
        after = flagged_ends[flagged_ends > onset[row]]
        if after.size:
            tp += 1
            delays.append(int(after[0] - onset[row]))
        else:
            fn += 1
    return tp, fn, fp, delays


def day_flags(flags: BoolArray) -> BoolArray:
    """Per meter and judged day: was any window ending in that day flagged?"""
    day = (window_ends() - HISTORY_INTERVALS - 1) // INTERVALS_PER_DAY
    out = np.zeros((flags.shape[0], JUDGED_DAYS), dtype=bool)
    for d in range(JUDGED_DAYS):
        out[:, d] = flags[:, day == d].any(axis=1)
    return out


def evaluate_attack(
    detector: EpisodeDetector, spec: AttackSpec, held_out: list[Episode], seed: int
) -> AttackResult:
    rng = np.random.default_rng(seed)
    tp = fn = fp = 0
    delays: list[int] = []
    for ep in held_out:
        injected = inject(ep.energy_wh, ep.profile, attack_plan(ep.n_meters, (spec,), rng), rng)
        flags = detector.flags(injected.reported_wh, feeder_readings(ep, seed))
        counts = judge_episode(flags, injected.onset)
        tp, fn, fp = tp + counts[0], fn + counts[1], fp + counts[2]
        delays.extend(counts[3])
    return AttackResult(spec.name, tp, fn, fp, tuple(delays))


def clean_false_positive_rate(
    detector: EpisodeDetector, held_out: list[Episode], seed: int = 0
) -> dict[str, Any]:
    """Share of clean held-out meter-days with a flagged window (and of meter-weeks)."""
    days = weeks = flagged_days = flagged_weeks = 0
    for ep in held_out:
        flags = day_flags(detector.flags(ep.energy_wh, feeder_readings(ep, seed)))
        days += flags.size
        weeks += flags.shape[0]
        flagged_days += int(flags.sum())
        flagged_weeks += int(flags.any(axis=1).sum())
    return {
        "meter_days": days,
        "flagged_meter_days": flagged_days,
        "fp_rate_per_meter_day": round(flagged_days / days, 5),
        "fp_rate_per_meter_week": round(flagged_weeks / weeks, 5),
    }


def _distinct_series(held_out: list[Episode]) -> int:
    return sum(len(np.unique(ep.energy_wh, axis=0)) for ep in held_out)


def evaluate_detector(
    detector: EpisodeDetector,
    held_out: list[Episode],
    attacks: tuple[AttackSpec, ...] = EVAL_ATTACKS,
    seed: int = 0,
) -> dict[str, Any]:
    results = [
        evaluate_attack(detector, spec, held_out, seed + i) for i, spec in enumerate(attacks)
    ]
    return {
        "model_version": detector.version,
        "threshold": round(detector.threshold, 6),
        "attacks": [r.to_json() for r in results],
        "clean": clean_false_positive_rate(detector, held_out, seed),
    }


def evaluate(
    seed: int = 0,
    grids: tuple[str, ...] = HELD_OUT_GRIDS,
    episode_indices: tuple[int, ...] = HELD_OUT_EPISODES,
    baseline: bool = True,
) -> dict[str, Any]:
    """Train the detectors, attack held-out weeks, report per-attack P/R/F1/delay and clean FP.

    ``detector`` is the auditor's (classifier and feeder balance together); with ``baseline``
    the grid operator's balance detector alone and the community operator's classifier alone
    (meter streams only) are measured on the same attacks.

    The result is JSON-ready; :func:`format_report` renders it as a table.
    """
    started = time.perf_counter()
    held_out = episodes(grids, episode_indices)
    classifier = train_meter_detector(TrainingConfig(kind="hgb", seed=seed))
    balance = BalanceDetector()
    models: list[EpisodeDetector] = [AuditorDetector(classifier, balance)]
    if baseline:
        models.extend([balance, classifier])
    reports = [evaluate_detector(model, held_out, seed=seed) for model in models]
    return {
        "seed": seed,
        "held_out": {
            "grids": list(grids),
            "episodes": list(episode_indices),
            "meters": sum(ep.n_meters for ep in held_out),
            "distinct_meter_series": _distinct_series(held_out),
        },
        "unit": "meter-week (precision, recall, F1); intervals of 15 min (delay)",
        "detector": reports[0],
        "baselines": reports[1:],
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate`'s result, one block per model."""
    lines = []
    for model in [report["detector"], *report["baselines"]]:
        lines.append(f"model {model['model_version']}  threshold {model['threshold']}")
        lines.append(
            f"{'attack':<26} {'precision':>9} {'recall':>7} {'F1':>6} {'delay med':>9} {'p90':>6}"
        )
        for row in model["attacks"]:
            median = row["delay_median_intervals"]
            p90 = row["delay_p90_intervals"]
            lines.append(
                f"{row['attack']:<26} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                f"{row['f1']:>6.3f} {_num(median):>9} {_num(p90):>6}"
            )
        clean = model["clean"]
        lines.append(
            f"clean: FP {clean['fp_rate_per_meter_day']:.4%} of {clean['meter_days']} meter-days, "
            f"{clean['fp_rate_per_meter_week']:.2%} of meter-weeks"
        )
        lines.append("")
    held = report["held_out"]
    lines.append(
        f"held out: {', '.join(held['grids'])}; episodes {held['episodes']}; "
        f"{held['meters']} meter-weeks ({held['distinct_meter_series']} distinct series); "
        f"{report['elapsed_s']} s"
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
