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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, Int64Array
from gridledger.security.attacks import EVAL_ATTACKS, AttackSpec, inject
from gridledger.security.balance import FeederModel
from gridledger.security.data import (
    HELD_OUT_GRIDS,
    HISTORY_INTERVALS,
    JUDGED_DAYS,
    Episode,
    GridMeters,
    episode,
    grid_meters,
)
from gridledger.security.features import window_ends
from gridledger.security.meter_detector import attack_plan
from gridledger.security.stream_detector import (
    StreamDetector,
    StreamRun,
    StreamTrainingConfig,
    persistent_min,
    stream_run,
    train_stream_detector,
    training_runs,
)

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
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


def _distinct_series(eps: list[Episode]) -> int:
    return sum(len(np.unique(ep.energy_wh, axis=0)) for ep in eps)


# -- the streaming detectors, on a train / validation / test split -------------------------


@dataclass(frozen=True)
class Split:
    """Which grids and which weeks (episodes) train, choose the operating point, and report.

    No grid and no episode is in two parts, so the test figures are about households and weeks
    the model and its operating point never saw.
    """

    train_grids: tuple[str, ...] = ("1-LV-rural2--0-sw", "1-LV-semiurb4--0-sw")
    train_episodes: tuple[int, ...] = (0, 2, 4, 6)
    validation_grids: tuple[str, ...] = ("1-LV-rural3--0-sw",)
    validation_episodes: tuple[int, ...] = (1, 8)
    test_grids: tuple[str, ...] = HELD_OUT_GRIDS
    test_episodes: tuple[int, ...] = (3, 5, 7, 9)

    def __post_init__(self) -> None:
        parts = (
            (self.train_grids, self.validation_grids, self.test_grids),
            (self.train_episodes, self.validation_episodes, self.test_episodes),
        )
        for name, (a, b, c) in zip(("grids", "episodes"), parts, strict=True):
            if set(a) & set(b) or set(a) & set(c) or set(b) & set(c):
                raise ValidationError(name, "train, validation and test must not share any")
            if not (a and b and c):
                raise ValidationError(name, "train, validation and test each need at least one")

    def steps(self, n_attacks: int) -> int:
        """How many progress steps :func:`evaluate` reports with this split."""
        grids = len(self.train_grids) + len(self.validation_grids) + len(self.test_grids)
        judged = len(self.validation_grids) * len(self.validation_episodes) + len(
            self.test_grids
        ) * len(self.test_episodes)
        return (
            grids + len(self.train_grids) * len(self.train_episodes) + 2 + judged * (n_attacks + 1)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            part: {
                "grids": list(getattr(self, f"{part}_grids")),
                "episodes": list(getattr(self, f"{part}_episodes")),
            }
            for part in ("train", "validation", "test")
        } | {"unit": "episode = 28 trusted days + 1 judged week of every residential meter"}


TARGET_F1 = 0.9
TARGET_DELAY_INTERVALS = 8.0  # for attack classes that change energy by >= 20%
TARGET_FP_PER_METER_DAY = 0.001
FP_BUDGET_PER_METER_DAY = 0.0005  # what validation may spend: half the target, for margin
LARGE_CHANGE = 0.2
PERSIST_CHOICES = (1, 2, 3, 4, 6, 8)
Progress = Callable[[int, int, str], None]  # (done, total, what is being done)


@dataclass(frozen=True, eq=False)
class _Scored:
    """A run's scores at one persistence: per meter, the highest score before/after onset."""

    attack: str
    onset: npt.NDArray[np.int64]
    energy_change: FloatArray
    persisted: FloatArray  # (n, T) persistent_min of the scores
    before: FloatArray  # (n,) max persisted before the onset (whole week when clean)
    after: FloatArray  # (n,) max persisted from the onset on (-inf when clean)
    day_max: FloatArray  # (n_clean_meters, days) for the meters left clean


def _scored(run: StreamRun, scores: FloatArray, persist: int) -> _Scored:
    m = persistent_min(scores, persist)
    t = np.arange(m.shape[1])[None, :]
    onset = np.where(run.onset >= 0, run.onset, m.shape[1])[:, None]
    before = np.where(t < onset, m, -np.inf).max(axis=1)
    after = np.where(t >= onset, m, -np.inf).max(axis=1)
    clean = m[run.onset < 0]
    day_max = clean.reshape(len(clean), -1, INTERVALS_PER_DAY).max(axis=2)
    return _Scored(run.attack, run.onset, run.energy_change, m, before, after, day_max)


def _f1_at(scored: list[_Scored], attack: str, threshold: float) -> float:
    tp = fn = fp = 0
    for s in scored:
        if s.attack != attack:
            continue
        attacked = s.onset >= 0
        hit = s.after >= threshold
        tp += int((attacked & hit).sum())
        fn += int((attacked & ~hit).sum())
        fp += int((s.before >= threshold).sum())
    return 2 * tp / (2 * tp + fn + fp) if tp else 0.0


def _day_fp_rate(scored: list[_Scored], threshold: float, clean_runs_only: bool) -> float:
    days = [s.day_max for s in scored if s.attack == "" or not clean_runs_only]
    pooled = np.concatenate([d.ravel() for d in days])
    return float((pooled >= threshold).mean()) if pooled.size else 0.0


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    persist_intervals: int
    validation_mean_f1: float
    validation_fp_per_meter_day: float


def choose_operating_point(
    runs: list[StreamRun], scores: list[FloatArray], attacks: tuple[str, ...]
) -> OperatingPoint:
    """The threshold and persistence with the best mean F1 over ``attacks`` whose false
    positives on the meter-days of the clean runs stay within the budget (innocent meters of
    attacked runs count against precision, hence F1)."""
    best: OperatingPoint | None = None
    for persist in PERSIST_CHOICES:
        scored = [_scored(r, s, persist) for r, s in zip(runs, scores, strict=True)]
        pooled = np.sort(np.concatenate([s.day_max.ravel() for s in scored if s.attack == ""]))
        allowed = int(FP_BUDGET_PER_METER_DAY * pooled.size)
        lowest = float(np.nextafter(pooled[-1 - allowed], np.inf))
        candidates = np.unique(np.concatenate([[lowest], pooled[pooled > lowest]]))
        candidates = candidates[:: max(1, len(candidates) // 64)]
        for threshold in candidates:
            f1 = float(np.mean([_f1_at(scored, a, float(threshold)) for a in attacks]))
            if best is None or f1 > best.validation_mean_f1:
                fp = _day_fp_rate(scored, float(threshold), clean_runs_only=True)
                best = OperatingPoint(float(threshold), persist, f1, fp)
    assert best is not None  # PERSIST_CHOICES is not empty
    return best


def _attack_report(scored: list[_Scored], attack: str, threshold: float) -> dict[str, Any]:
    tp = fn = fp = 0
    delays: list[int] = []
    changes: list[float] = []
    for s in scored:
        if s.attack != attack:
            continue
        fp += int((s.before >= threshold).sum())
        for row in np.nonzero(s.onset >= 0)[0]:
            changes.append(float(s.energy_change[row]))
            flagged = np.nonzero(s.persisted[row, s.onset[row] :] >= threshold)[0]
            if flagged.size:
                tp += 1
                delays.append(int(flagged[0]) + 1)
            else:
                fn += 1
    result = AttackResult(attack, tp, fn, fp, tuple(delays)).to_json()
    result["energy_change_median"] = round(float(np.median(changes)), 4) if changes else 0.0
    return result


def _model_report(
    name: str,
    detector: StreamDetector,
    point: OperatingPoint,
    runs: list[StreamRun],
    scores: list[FloatArray],
    attacks: tuple[str, ...],
) -> dict[str, Any]:
    scored = [_scored(r, s, point.persist_intervals) for r, s in zip(runs, scores, strict=True)]
    rows = [_attack_report(scored, a, point.threshold) for a in attacks]
    clean_days = sum(s.day_max.size for s in scored if s.attack == "")
    return {
        "model": name,
        "model_version": detector.at(point.threshold, point.persist_intervals).version,
        "operating_point": asdict(point),
        "attacks": rows,
        "clean": {
            "meter_days": clean_days,
            "fp_rate_per_meter_day": round(_day_fp_rate(scored, point.threshold, True), 5),
            "fp_rate_per_meter_day_all_clean_meters": round(
                _day_fp_rate(scored, point.threshold, False), 5
            ),
        },
    }


def _targets(report: dict[str, Any]) -> dict[str, Any]:
    rows = report["attacks"]
    large = [r for r in rows if r["energy_change_median"] >= LARGE_CHANGE]
    return {
        "f1_min": min(r["f1"] for r in rows),
        "f1_target": TARGET_F1,
        "f1_met": all(r["f1"] >= TARGET_F1 for r in rows),
        "delay_classes": [r["attack"] for r in large],
        "delay_median_max_intervals": max(
            (r["delay_median_intervals"] or float("inf") for r in large), default=None
        ),
        "delay_target_intervals": TARGET_DELAY_INTERVALS,
        "delay_met": all(
            (r["delay_median_intervals"] or float("inf")) <= TARGET_DELAY_INTERVALS for r in large
        ),
        "fp_per_meter_day": report["clean"]["fp_rate_per_meter_day"],
        "fp_target_per_meter_day": TARGET_FP_PER_METER_DAY,
        "fp_met": report["clean"]["fp_rate_per_meter_day"] <= TARGET_FP_PER_METER_DAY,
    }


def _runs(
    eps: list[Episode], attacks: tuple[AttackSpec, ...], seed: int, step: Callable[[str], None]
) -> list[StreamRun]:
    """Per episode: one clean run, then one run per attack (a quarter of the meters)."""
    runs = []
    for i, ep in enumerate(eps):
        rng = np.random.default_rng(zlib.crc32(f"{seed}:{ep.grid_code}:{ep.episode}".encode()))
        runs.append(stream_run(ep, {}, rng))
        step(f"{ep.grid_code} week {ep.episode}: clean")
        for spec in attacks:
            runs.append(stream_run(ep, attack_plan(ep.n_meters, (spec,), rng), rng, spec.name))
            step(f"{ep.grid_code} week {ep.episode}: {spec.name} ({i + 1}/{len(eps)})")
    return runs


def evaluate(
    seed: int = 0,
    split: Split | None = None,
    attacks: tuple[AttackSpec, ...] = EVAL_ATTACKS,
    max_iter: int = 200,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on the split's train part, choose each model's operating point on validation,
    report the test part once: per attack P/R/F1/delay, clean FP, and ours / baseline ratios."""
    started = time.perf_counter()
    split = split or Split()
    names = tuple(spec.name for spec in attacks)
    total = split.steps(len(attacks))
    done = 0

    def step(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, what)

    loaded: dict[str, GridMeters] = {}
    for code in (*split.train_grids, *split.validation_grids, *split.test_grids):
        loaded[code] = grid_meters(code)
        step(f"loaded grid {code}")

    def eps(grids: tuple[str, ...], indices: tuple[int, ...]) -> list[Episode]:
        return [episode(loaded[code], i) for code in grids for i in indices]

    train_eps = eps(split.train_grids, split.train_episodes)
    validation_eps = eps(split.validation_grids, split.validation_episodes)
    test_eps = eps(split.test_grids, split.test_episodes)

    rng = np.random.default_rng(seed)
    configs = {
        "ours": StreamTrainingConfig(kind="hgb", seed=seed, max_iter=max_iter),
        # the baseline from the literature as it is: raw isolation scores, nothing relative
        "baseline": StreamTrainingConfig(kind="iforest", seed=seed, relative_to_median_meter=False),
    }
    train_runs = []
    for ep in train_eps:
        train_runs.extend(training_runs([ep], configs["ours"], rng))
        step(f"training features {ep.grid_code} week {ep.episode}")
    models = {}
    for name, config in configs.items():
        models[name] = train_stream_detector(config, train_runs)
        step(f"fitted {name} ({config.kind})")
    validation = _runs(validation_eps, attacks, seed, step)
    points = {
        name: choose_operating_point(
            validation, [m.score_features(r.features) for r in validation], names
        )
        for name, m in models.items()
    }
    test = _runs(test_eps, attacks, seed + 1, step)
    reports = {
        name: _model_report(
            name, m, points[name], test, [m.score_features(r.features) for r in test], names
        )
        for name, m in models.items()
    }
    return {
        "seed": seed,
        "split": split.to_json(),
        "test": {
            "meters": sum(ep.n_meters for ep in test_eps),
            "meter_weeks_per_attack": sum(ep.n_meters for ep in test_eps),
            "attacked_share_per_run": 0.25,
            "distinct_meter_series": _distinct_series(test_eps),
        },
        "unit": "meter-week (precision, recall, F1); 15-min intervals from onset (delay)",
        "detector": reports["ours"] | {"targets": _targets(reports["ours"])},
        "baseline": reports["baseline"] | {"targets": _targets(reports["baseline"])},
        "ratios_ours_over_baseline": _ratios(reports["ours"], reports["baseline"]),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _ratios(ours: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else round(a / b, 3)

    return {
        row["attack"]: {
            "f1": ratio(row["f1"], base["f1"]),
            "delay_median": ratio(row["delay_median_intervals"], base["delay_median_intervals"]),
        }
        for row, base in zip(ours["attacks"], baseline["attacks"], strict=True)
    } | {
        "fp_per_meter_day": ratio(
            ours["clean"]["fp_rate_per_meter_day"], baseline["clean"]["fp_rate_per_meter_day"]
        )
    }


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`evaluate`'s result, one block per model."""
    lines = []
    for model in (report["detector"], report["baseline"]):
        point = model["operating_point"]
        lines.append(
            f"{model['model']}: {model['model_version']}  (threshold {point['threshold']:.4g}, "
            f"persist {point['persist_intervals']} intervals, chosen on validation)"
        )
        lines.append(
            f"{'attack':<26} {'energy':>7} {'precision':>9} {'recall':>7} {'F1':>6} "
            f"{'delay med':>9} {'p90':>6}"
        )
        for row in model["attacks"]:
            lines.append(
                f"{row['attack']:<26} {row['energy_change_median']:>7.1%} {row['precision']:>9.3f} "
                f"{row['recall']:>7.3f} {row['f1']:>6.3f} {_num(row['delay_median_intervals']):>9} "
                f"{_num(row['delay_p90_intervals']):>6}"
            )
        clean = model["clean"]
        lines.append(
            f"clean: FP {clean['fp_rate_per_meter_day']:.4%} of {clean['meter_days']} meter-days"
        )
        lines.append("")
    split = report["split"]
    for part in ("train", "validation", "test"):
        lines.append(f"{part}: {', '.join(split[part]['grids'])}; weeks {split[part]['episodes']}")
    lines.append(f"{report['elapsed_s']} s")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"
