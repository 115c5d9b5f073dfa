"""Known attacks on meter streams, injected into clean data to train and to measure detectors.

Each attack starts at an ``onset`` interval inside the judged week and lasts to its end; the
reported stream equals the true one before the onset. False data injection (FDI): scaling,
offset, replay (a recorded stretch looped), swap (another household's profile, level-matched so
only its shape betrays it). Energy theft by under-reporting, after Jokar et al. (2016): a daily
bypass band, a random per-interval factor, peak capping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, Int64Array
from gridledger.security.data import HISTORY_INTERVALS

AttackKind = Literal[
    "scaling", "offset", "replay", "swap", "theft_bypass", "theft_random", "theft_cap"
]
FloatArray = npt.NDArray[np.float64]
ONSET_DAYS = 3  # onsets fall in the first three judged days, so every attack has 4+ days


@dataclass(frozen=True)
class AttackSpec:
    """One attack type and the range its strength is drawn from.

    ``low``/``high`` mean: a factor for scaling (both below and above 1 are drawn when
    ``two_sided``), the offset as a share of the meter's mean interval energy, the looped days
    for replay, the bypass hours for theft_bypass, the lowest factor for theft_random (upper is
    1), the capping quantile for theft_cap. Unused for swap.
    """

    name: str
    kind: AttackKind
    low: float = 0.0
    high: float = 0.0
    two_sided: bool = False


# What `gridledger security eval` reports, one row each.
EVAL_ATTACKS: tuple[AttackSpec, ...] = (
    AttackSpec("scaling 20-50% down", "scaling", 0.5, 0.8),
    AttackSpec("scaling 20-50% up", "scaling", 1.2, 1.5),
    AttackSpec("scaling 10-15%", "scaling", 0.85, 0.9, two_sided=True),
    AttackSpec("offset 30-60%", "offset", 0.3, 0.6, two_sided=True),
    AttackSpec("replay 1-7 days", "replay", 1, 7),
    AttackSpec("swap (level-matched)", "swap"),
    AttackSpec("theft bypass 4-8 h/day", "theft_bypass", 4, 8),
    AttackSpec("theft random 0.4-1.0", "theft_random", 0.4),
    AttackSpec("theft cap q50-q70", "theft_cap", 0.5, 0.7),
)

# What the supervised model is trained on: the same families, scaling from 10% up.
TRAIN_ATTACKS: tuple[AttackSpec, ...] = (
    AttackSpec("scaling down", "scaling", 0.5, 0.9),
    AttackSpec("scaling up", "scaling", 1.1, 1.5),
    AttackSpec("offset", "offset", 0.2, 0.7, two_sided=True),
    AttackSpec("replay", "replay", 1, 7),
    AttackSpec("swap", "swap"),
    AttackSpec("theft bypass", "theft_bypass", 3, 9),
    AttackSpec("theft random", "theft_random", 0.3),
    AttackSpec("theft cap", "theft_cap", 0.4, 0.8),
)


@dataclass(frozen=True, eq=False)
class Injected:
    """Reported streams after injection; ``onset[m]`` is -1 for a meter left clean."""

    reported_wh: Int64Array
    onset: npt.NDArray[np.int64]
    attack: tuple[str, ...]  # spec name per meter, "" when clean


@dataclass(frozen=True, eq=False)
class _Target:
    row: int
    onset: int
    clean_wh: Int64Array  # every meter of the episode, for swaps
    profile: tuple[str, ...]


def _draw(spec: AttackSpec, rng: np.random.Generator) -> float:
    value = float(rng.uniform(spec.low, spec.high))
    if spec.two_sided and rng.random() < 0.5:
        return 2.0 - value if spec.kind == "scaling" else -value
    return value


def _scaling(
    true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator
) -> FloatArray:
    out = true.copy()
    out[t.onset :] *= _draw(spec, rng)
    return out


def _offset(true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator) -> FloatArray:
    out = true.copy()
    out[t.onset :] += _draw(spec, rng) * true[:HISTORY_INTERVALS].mean()
    return out


def _replay(true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator) -> FloatArray:
    period = int(rng.integers(int(spec.low), int(spec.high) + 1)) * INTERVALS_PER_DAY
    recorded = true[t.onset - period : t.onset]
    out = true.copy()
    length = len(out) - t.onset
    out[t.onset :] = np.resize(recorded, length)
    return out


def _swap(true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator) -> FloatArray:
    others = [i for i, p in enumerate(t.profile) if p != t.profile[t.row]]
    if not others:
        raise ValidationError("profile", "swap needs a household with another profile")
    partner = t.clean_wh[int(rng.choice(others))].astype(np.float64)
    level = true[:HISTORY_INTERVALS].mean() / max(partner[:HISTORY_INTERVALS].mean(), 1.0)
    out = true.copy()
    out[t.onset :] = partner[t.onset :] * level
    return out


def _theft_bypass(
    true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator
) -> FloatArray:
    hours = int(rng.integers(int(spec.low), int(spec.high) + 1))
    first = int(rng.integers(6, 23 - hours + 1)) * 4
    in_band = (np.arange(len(true)) % INTERVALS_PER_DAY >= first) & (
        np.arange(len(true)) % INTERVALS_PER_DAY < first + hours * 4
    )
    out = true.copy()
    out[in_band & (np.arange(len(true)) >= t.onset)] = 0.0
    return out


def _theft_random(
    true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator
) -> FloatArray:
    out = true.copy()
    out[t.onset :] *= rng.uniform(spec.low, 1.0, len(out) - t.onset)
    return out


def _theft_cap(
    true: FloatArray, t: _Target, spec: AttackSpec, rng: np.random.Generator
) -> FloatArray:
    cap = float(np.quantile(true[:HISTORY_INTERVALS], _draw(spec, rng)))
    out = true.copy()
    out[t.onset :] = np.minimum(out[t.onset :], cap)
    return out


_ATTACKS: dict[
    str, Callable[[FloatArray, _Target, AttackSpec, np.random.Generator], FloatArray]
] = {
    "scaling": _scaling,
    "offset": _offset,
    "replay": _replay,
    "swap": _swap,
    "theft_bypass": _theft_bypass,
    "theft_random": _theft_random,
    "theft_cap": _theft_cap,
}


def inject(
    clean_wh: Int64Array,
    profile: tuple[str, ...],
    plan: dict[int, AttackSpec],
    rng: np.random.Generator,
) -> Injected:
    """Apply ``plan`` (meter row -> attack) to an episode; onsets drawn in the first days."""
    reported = np.array(clean_wh, dtype=np.int64, copy=True)
    onset = np.full(clean_wh.shape[0], -1, dtype=np.int64)
    names = [""] * clean_wh.shape[0]
    for row in sorted(plan):
        spec = plan[row]
        start = HISTORY_INTERVALS + int(rng.integers(0, ONSET_DAYS * INTERVALS_PER_DAY))
        target = _Target(row, start, clean_wh, profile)
        attacked = _ATTACKS[spec.kind](clean_wh[row].astype(np.float64), target, spec, rng)
        reported[row] = np.clip(np.rint(attacked), 0, None).astype(np.int64)
        onset[row] = start
        names[row] = spec.name
    return Injected(reported, onset, tuple(names))
