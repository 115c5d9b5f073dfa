"""The live feeder-balance detector: one interval at a time, a few intervals after a meter lies.

The feeder (or transformer) meter measures what the households behind it really draw. After a
short trusted warm-up that fits the feeder's gain, losses and noise (:func:`fit_losses`), every
interval leaves a residual ``r(t) = feeder(t) - expected(sum of reported)`` in noise units. A
meter that reports ``s * true`` adds ``(1/s - 1) * reported(t)`` to it, so the residual follows
that meter's own reported profile. For each candidate onset (the last ``k`` intervals, ``k`` from
``min_span`` to ``window_intervals``) and each meter, a one-column least-squares fit of the
residual on the meter's whitened profile gives a t-statistic, the factor ``1/s - 1`` and what
is left unexplained. A meter is flagged when it explains the residual (large t, a factor beyond
the meter class's accuracy, only noise left) and no other meter explains it nearly as well:
households share a daily shape, so without the last condition an innocent neighbour could be
named. The flag must hold ``persist_intervals`` intervals in a row.

Pure: state in, numbers out; the node edge (``live``) feeds it signed readings.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.security.balance import LossFit, fit_losses

FloatArray = npt.NDArray[np.float64]
LIVE_BALANCE_REVISION = 1


@dataclass(frozen=True)
class LiveBalanceConfig:
    """The detector's parameters; their hash is part of the model version on the evidence."""

    warmup_intervals: int = 12  # trusted intervals that fit the feeder's gain, losses and noise
    window_intervals: int = 8  # the longest candidate span since an onset
    min_span: int = 3  # the shortest: fewer intervals cannot tell two households apart
    min_noise_share: float = 0.0015  # of the feeder reading: a short warm-up under-estimates noise
    t_enter: float = 6.0  # t-statistic the meter's column needs
    min_factor: float = 0.08  # |1/s - 1| within a meter's accuracy class is not an attack
    max_unexplained: float = 3.0  # mean squared residual (noise units) left after the fit
    ambiguity: float = 25.0  # the runner-up must leave this many noise units^2 more (in all)
    persist_intervals: int = 2

    def __post_init__(self) -> None:
        if self.warmup_intervals < 4:
            raise ValidationError("warmup_intervals", "need at least 4 intervals")
        if not 2 <= self.min_span <= self.window_intervals:
            raise ValidationError("min_span", "must be in 2..window_intervals")
        if self.persist_intervals < 1:
            raise ValidationError("persist_intervals", "must be at least 1")

    @property
    def version(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return f"live-balance/{LIVE_BALANCE_REVISION}+{digest}"


@dataclass(frozen=True)
class LiveFlag:
    """One meter flagged after one interval, with the numbers behind it."""

    meter: int  # row in the meter order the detector was built with
    interval_start_s: int
    t_stat: float
    factor: float  # estimated 1/s - 1: 0.33 for a meter reporting 75 %
    unexplained: float  # mean squared residual left, noise units
    runner_up_unexplained: float
    span_intervals: int
    gap_z: float  # the whole window's residual, in noise units

    def features(self) -> dict[str, float]:
        return {
            "t_stat": self.t_stat,
            "factor": self.factor,
            "unexplained": self.unexplained,
            "runner_up_unexplained": self.runner_up_unexplained,
            "span_intervals": float(self.span_intervals),
            "gap_z": self.gap_z,
            "interval_start_s": float(self.interval_start_s),
        }


@dataclass
class LiveBalanceDetector:
    """Streaming: :meth:`observe` each interval's reported energies (n,) and the feeder's."""

    n_meters: int
    config: LiveBalanceConfig = field(default_factory=LiveBalanceConfig)
    _warm_totals: list[float] = field(default_factory=list)
    _warm_feeder: list[float] = field(default_factory=list)
    _fit: LossFit | None = None
    _r: deque[float] = field(default_factory=deque)  # whitened residuals, newest last
    _x: deque[FloatArray] = field(default_factory=deque)  # whitened reported energies
    _streak: dict[int, int] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def warm(self) -> bool:
        return self._fit is not None

    def observe(
        self, interval_start_s: int, reported_wh: FloatArray, feeder_wh: float
    ) -> list[LiveFlag]:
        """One interval; the meters flagged after it (persisted), strongest first."""
        if reported_wh.shape != (self.n_meters,):
            raise ValidationError(
                "reported_wh", f"need ({self.n_meters},), got {reported_wh.shape}"
            )
        total = float(reported_wh.sum())
        if self._fit is None:
            self._warm_totals.append(total)
            self._warm_feeder.append(float(feeder_wh))
            if len(self._warm_totals) >= self.config.warmup_intervals:
                self._fit = fit_losses(np.array(self._warm_totals), np.array(self._warm_feeder))
            return []
        noise = max(self._fit.noise_share, self.config.min_noise_share)
        sigma = noise * max(float(feeder_wh), 1.0)
        expected = float(self._fit.expected(np.array([total]))[0])
        self._r.append((float(feeder_wh) - expected) / sigma)
        self._x.append(np.asarray(reported_wh, dtype=np.float64) / sigma)
        while len(self._r) > self.config.window_intervals:
            self._r.popleft()
            self._x.popleft()
        candidates = self._candidates(interval_start_s)
        flagged = {f.meter: f for f in candidates}
        self._streak = {m: self._streak.get(m, 0) + 1 for m in flagged}
        persisted = [
            f for m, f in flagged.items() if self._streak[m] >= self.config.persist_intervals
        ]
        return sorted(persisted, key=lambda f: -abs(f.t_stat))

    def _candidates(self, interval_start_s: int) -> list[LiveFlag]:
        c = self.config
        r_all = np.array(self._r)
        x_all = np.stack(list(self._x), axis=1)  # (n, T)
        best: dict[int, LiveFlag] = {}
        for span in range(c.min_span, len(r_all) + 1):
            r, x = r_all[-span:], x_all[:, -span:]
            xx = np.maximum((x * x).sum(axis=1), 1e-12)
            xr = x @ r
            factor = xr / xx
            t_stat = xr / np.sqrt(xx)
            left = np.maximum((r * r).sum() - t_stat * t_stat, 0.0) / span
            order = np.argsort(left)
            i = int(order[0])
            runner = float(left[order[1]]) if self.n_meters > 1 else float("inf")
            if (
                abs(t_stat[i]) >= c.t_enter
                and abs(factor[i]) >= c.min_factor
                and left[i] <= c.max_unexplained
                and (runner - float(left[i])) * span >= c.ambiguity
            ):
                flag = LiveFlag(
                    meter=i,
                    interval_start_s=interval_start_s,
                    t_stat=float(t_stat[i]),
                    factor=float(factor[i]),
                    unexplained=float(left[i]),
                    runner_up_unexplained=runner,
                    span_intervals=span,
                    gap_z=float(r.sum() / np.sqrt(span)),
                )
                if i not in best or abs(flag.t_stat) > abs(best[i].t_stat):
                    best[i] = flag
        return list(best.values())
