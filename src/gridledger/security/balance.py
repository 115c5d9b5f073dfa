"""Energy-balance detector: the feeder meter against the sum of the meters behind it (pure).

The grid operator measures each LV feeder (or its transformer) on its own meter. Without
attacks, ``feeder(t) = sum_i true_i(t) + losses(t) + noise(t)``. A meter that reports
``s * true_i`` leaves a residual ``r(t) = feeder(t) - losses(t) - sum_i reported_i(t)`` equal to
``(1/s - 1) * reported_i(t)`` plus noise: a regression of the residual on the reported profiles
names the meter and estimates its factor. Under-reporting theft shows up the same way.

Per judged window (the classifier's windows: one day, every 6 hours) the residual is explained
greedily (orthogonal matching pursuit): the meter whose profile, orthogonalised against those
already chosen, best explains what is left enters while its t-statistic exceeds
``BalanceConfig.z_enter``. The t-statistics of the final least-squares fit are the scores; the
noise scale is the larger of the history's calibrated noise and the residual's own spread, so an
unexplained residual (a replay, a swap) does not make innocent meters look guilty.

:class:`FeederModel` simulates the feeder meter for SimBench episodes (the simulation knows the
true consumption); a live node reads a real feeder meter instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import Int64Array
from gridledger.security.data import EPISODE_INTERVALS, HISTORY_INTERVALS
from gridledger.security.features import WINDOW_INTERVALS, trailing_mean, window_ends

FloatArray = npt.NDArray[np.float64]
BALANCE_REVISION = 1
MAX_SELECTED_SHARE = 0.4  # of the window's intervals: keep the fit over-determined
BALANCE_FEATURE_NAMES = (
    "balance_t",  # t-statistic of the meter in the feeder residual's explanation (0: not in it)
    "balance_log_factor",  # log of the estimated reporting factor (0: honest)
    "balance_t_3d",  # balance_t averaged over the last three days of windows
    "feeder_gap_z",  # the feeder's unexplained energy in the window, in noise units
)
ONSET_STEP = 24  # intervals: a meter's misreporting may start at any 6-hour step of the span
COLLINEAR_SHARE = 1e-3  # a column this much explained by those chosen adds nothing


@dataclass(frozen=True)
class FeederModel:
    """How the simulated feeder meter differs from the sum of true household consumption.

    Technical losses grow with the square of the load (``loss_share`` of the energy at the
    mean load); the feeder meter has a gain error and a random error per interval
    (``noise_share`` of the reading, one standard deviation).
    """

    loss_share: float = 0.03
    gain_error: float = 0.002
    noise_share: float = 0.002  # IEC 62053-22 class 0.2S transformer metering

    def feeder_wh(self, clean_wh: Int64Array, seed: int) -> Int64Array:
        """The feeder meter's readings over an episode whose true loads are ``clean_wh``."""
        total = clean_wh.sum(axis=0).astype(np.float64)
        mean = max(float(total.mean()), 1.0)
        losses = self.loss_share * total * total / mean
        rng = np.random.default_rng(seed)
        noise = rng.normal(0.0, self.noise_share, total.shape)
        measured = (total + losses) * (1.0 + self.gain_error + noise)
        out: Int64Array = np.clip(np.rint(measured), 0, None).astype(np.int64)
        return out


@dataclass(frozen=True)
class BalanceConfig:
    """Everything that determines the balance detector's answers; hashed into its version."""

    z_enter: float = 3.5  # t-statistic a meter needs to enter the explanation
    threshold: float = 4.0  # |t| at which a window is flagged
    min_deviation: float = 0.08  # |1/s - 1| below this is within the meter class, not an attack
    window_intervals: int = 2 * WINDOW_INTERVALS
    # Left-over residual spread (in calibrated noise units) above which the explanation failed
    # and its t-statistics prove nothing: many meters misreporting at once in other ways.
    max_unexplained: float = 1.3
    persist_windows: int = 2  # a meter must stand out in this many consecutive windows
    vouch_t: float = 2.0  # |t| a min_deviation misreport must reach for the feeder to vouch
    copy_cosine: float = 0.95  # profiles this alike in the window: the feeder cannot tell apart

    def __post_init__(self) -> None:
        if not 0 < self.z_enter <= self.threshold:
            raise ValidationError("z_enter", "must be positive and at most the threshold")
        if self.window_intervals < 8:
            raise ValidationError("window_intervals", "need at least 8 intervals")

    @property
    def version(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return f"feeder-balance/{BALANCE_REVISION}+{digest}"


@dataclass(frozen=True, eq=False)
class BalanceResult:
    """Per meter and judged window: t-statistic and estimated reporting factor (1 = honest)."""

    t_stat: FloatArray  # (n_meters, n_windows); 0 where the meter did not enter the fit
    factor: FloatArray  # (n_meters, n_windows); 1 where the meter did not enter the fit
    gap_z: FloatArray  # (n_windows,): the feeder's whole unexplained energy, in noise units
    explained: npt.NDArray[np.bool_]  # (n_windows,): the fit left only noise behind
    reach_t: FloatArray  # (n_meters, n_windows): |t| a ``min_deviation`` misreport would reach

    def features(self) -> FloatArray:
        """The columns of :data:`BALANCE_FEATURE_NAMES`, shape (n_meters, n_windows, 4)."""
        log_factor = np.log(self.factor)
        gap = np.broadcast_to(self.gap_z[None, :], self.t_stat.shape)
        columns = (self.t_stat, log_factor, trailing_mean(self.t_stat), gap)
        return np.stack(columns, axis=-1)


@dataclass(frozen=True, eq=False)
class LossFit:
    coefficients: FloatArray  # feeder ~ c0 * S + c1 * S^2 / mean(S)
    mean_total: float
    noise_share: float  # robust relative spread of the history's residual

    def expected(self, total: FloatArray) -> FloatArray:
        design = np.stack([total, total * total / self.mean_total], axis=-1)
        out: FloatArray = design @ self.coefficients
        return out


def fit_losses(total: FloatArray, feeder: FloatArray) -> LossFit:
    """Gain and losses from the trusted history: feeder = c0 S + c1 S^2 / mean(S)."""
    mean = max(float(total.mean()), 1.0)
    design = np.stack([total, total * total / mean], axis=-1)
    coefficients, *_ = np.linalg.lstsq(design, feeder, rcond=None)
    relative = (feeder - design @ coefficients) / np.maximum(feeder, 1.0)
    spread = 1.4826 * float(np.median(np.abs(relative - np.median(relative))))
    return LossFit(np.asarray(coefficients, dtype=np.float64), mean, max(spread, 1e-4))


class BalanceDetector:
    """The grid operator's detector; pure: answers depend only on the inputs and the config."""

    def __init__(self, config: BalanceConfig | None = None) -> None:
        self.config = config or BalanceConfig()

    @property
    def version(self) -> str:
        return self.config.version

    @property
    def threshold(self) -> float:
        return self.config.threshold

    def analyse(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> BalanceResult:
        """t-statistics and factors of every judged window of an episode."""
        _check(reported_wh, feeder_wh)
        reported = reported_wh.astype(np.float64)
        feeder = feeder_wh.astype(np.float64)
        total = reported.sum(axis=0)
        fit = fit_losses(total[:HISTORY_INTERVALS], feeder[:HISTORY_INTERVALS])
        residual = feeder - fit.expected(total)
        sigma = fit.noise_share * np.maximum(feeder, 1.0)
        ends = window_ends()
        level = _level_log(reported, ends, self.config.window_intervals)
        t_stat = np.zeros((reported.shape[0], len(ends)))
        beta = np.zeros_like(t_stat)
        gap_z = np.zeros(len(ends))
        explained = np.zeros(len(ends), dtype=bool)
        reach_t = np.zeros_like(t_stat)
        for w, end in enumerate(ends):
            span = slice(int(end) - self.config.window_intervals, int(end))
            whitened = residual[span] / sigma[span]
            gap_z[w] = whitened.sum() / np.sqrt(len(whitened))
            columns = _step_columns(reported[:, span].T / sigma[span, None], ONSET_STEP)
            steps = columns.shape[1] // len(reported)
            chosen, t, b, explained[w] = explain(
                columns, whitened, self.config, np.tile(level[:, w], steps)
            )
            reach_t[:, w] = self.config.min_deviation * np.linalg.norm(
                columns[:, : len(reported)], axis=0
            )
            _keep_strongest(chosen % len(reported), t, b, t_stat[:, w], beta[:, w])
        factor = np.where(t_stat != 0, 1.0 / np.maximum(1.0 + beta, 1e-3), 1.0)
        return BalanceResult(t_stat, factor, gap_z, explained, reach_t)

    def score(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> FloatArray:
        """Per meter and window, the smallest |t| over the last ``persist_windows`` windows
        (0 unless the meter was material and of one sign in all of them)."""
        result = self.analyse(reported_wh, feeder_wh)
        material = np.abs(1.0 / result.factor - 1.0) >= self.config.min_deviation
        signed = np.where(material, result.t_stat, 0.0)
        return persistent(signed, self.config.persist_windows)

    def vouches(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> npt.NDArray[np.bool_]:
        """Per meter and window: the feeder balance shows this meter reported honestly.

        True when the residual was fully explained without the meter and a misreport of
        ``min_deviation`` of its energy would have reached ``vouch_t``.
        """
        r = self.analyse(reported_wh, feeder_wh)
        vouched: npt.NDArray[np.bool_] = (
            r.explained[None, :] & (r.t_stat == 0) & (r.reach_t >= self.config.vouch_t)
        )
        return vouched

    def flags(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> npt.NDArray[np.bool_]:
        flagged: npt.NDArray[np.bool_] = self.score(reported_wh, feeder_wh) >= self.threshold
        return flagged


def explain(
    x: FloatArray, y: FloatArray, config: BalanceConfig, level: FloatArray | None = None
) -> tuple[npt.NDArray[np.intp], FloatArray, FloatArray, bool]:
    """Greedy least squares of ``y`` (n,) on columns of ``x`` (n, p), both noise-whitened.

    Columns that are (scaled) copies of the best one in what is left to explain cannot be told
    apart by the feeder; among them the one whose ``level`` (window energy against its own
    history) moved the way the residual says wins. Returns the chosen columns, their
    t-statistics and coefficients in the final fit.
    """
    n, p = x.shape
    chosen: list[int] = []
    left = y.copy()
    original = np.linalg.norm(x, axis=0)
    limit = min(p, int(MAX_SELECTED_SHARE * n))
    orthogonal = x.copy()
    while len(chosen) < limit:
        norms = np.linalg.norm(orthogonal, axis=0)
        usable = norms > COLLINEAR_SHARE * np.maximum(original, 1e-12)
        usable[chosen] = False
        safe = np.where(usable, norms, 1.0)
        scale = _noise_scale(left, n - len(chosen))
        z = np.where(usable, orthogonal.T @ left / safe, 0.0) / scale
        best = int(np.argmax(np.abs(z)))
        if abs(z[best]) < config.z_enter:
            break
        if level is not None:
            copies = usable & (
                np.abs((orthogonal / safe).T @ (orthogonal[:, best] / safe[best]))
                >= config.copy_cosine
            )
            best = _among_copies(copies, best, z[best] > 0, level)
        chosen.append(best)
        direction = orthogonal[:, best] / norms[best]
        orthogonal = orthogonal - np.outer(direction, direction @ orthogonal)
        left = left - direction * (direction @ left)
    if not chosen:
        empty = np.zeros(0)
        return (
            np.zeros(0, dtype=np.intp),
            empty,
            empty,
            _noise_scale(y, n) <= config.max_unexplained,
        )
    columns = x[:, chosen]
    solution, *_ = np.linalg.lstsq(columns, y, rcond=None)
    coefficients = np.asarray(solution, dtype=np.float64)
    scale = _noise_scale(y - columns @ coefficients, n - len(chosen))
    covariance = np.linalg.pinv(columns.T @ columns)
    t = coefficients / (np.sqrt(np.maximum(np.diag(covariance), 1e-18)) * scale)
    explained = scale <= config.max_unexplained
    if not explained:  # the explanation failed: its t-statistics prove nothing
        t = t * 0.0
    return np.asarray(chosen, dtype=np.intp), t, coefficients, explained


def _among_copies(is_copy: npt.NDArray[np.bool_], best: int, under: bool, level: FloatArray) -> int:
    """The copy of column ``best`` whose level fell most (``under``) or rose most."""
    copies = np.nonzero(is_copy)[0]
    if len(copies) < 2:
        return best
    pick = np.argmin(level[copies]) if under else np.argmax(level[copies])
    return int(copies[pick])


def _noise_scale(left: FloatArray, dof: int) -> float:
    """Residual spread in noise units, never below 1 (the calibrated noise)."""
    return max(1.0, float(np.sqrt(left @ left / max(dof, 1))))


def persistent(signed: FloatArray, windows: int) -> FloatArray:
    """min |value| over each window and the ``windows - 1`` before it, 0 on a sign change."""
    out: FloatArray = np.abs(signed)
    for lag in range(1, windows):
        earlier = np.zeros_like(signed)
        earlier[:, lag:] = signed[:, :-lag]
        same_sign = np.sign(earlier) == np.sign(signed)
        out = np.where(same_sign, np.minimum(out, np.abs(earlier)), 0.0)
    return out


def _step_columns(x: FloatArray, step: int) -> FloatArray:
    """Each meter's profile from each ``step``-th interval on (0 before): attacks have onsets.

    Column ``k * p + i`` is meter ``i`` from interval ``k * step`` of the span.
    """
    n = x.shape[0]
    starts = np.arange(0, n, step)
    masks = (np.arange(n)[None, :] >= starts[:, None]).astype(np.float64)  # (k, n)
    stacked: FloatArray = (masks[:, :, None] * x[None, :, :]).transpose(1, 0, 2)
    return stacked.reshape(n, -1)


def _keep_strongest(
    meters: npt.NDArray[np.intp], t: FloatArray, b: FloatArray, t_out: FloatArray, b_out: FloatArray
) -> None:
    """Per meter, the column with the largest |t| (a meter may enter at several onsets)."""
    for meter, t_value, b_value in zip(meters, t, b, strict=True):
        if abs(t_value) > abs(t_out[meter]):
            t_out[meter], b_out[meter] = t_value, b_value


def _level_log(reported: FloatArray, ends: npt.NDArray[np.int64], length: int) -> FloatArray:
    """Log of each window's mean interval energy over the history's (n_meters, n_windows)."""
    history = reported[:, :HISTORY_INTERVALS].mean(axis=1)
    cumulative = np.concatenate([np.zeros((len(reported), 1)), np.cumsum(reported, axis=1)], 1)
    window = (cumulative[:, ends] - cumulative[:, ends - length]) / length
    out: FloatArray = np.log((window + 1.0) / (history[:, None] + 1.0))
    return out


def _check(reported_wh: Int64Array, feeder_wh: Int64Array) -> None:
    if reported_wh.ndim != 2 or reported_wh.shape[1] != EPISODE_INTERVALS:
        raise ValidationError(
            "reported_wh", f"need (n_meters, {EPISODE_INTERVALS}), got {reported_wh.shape}"
        )
    if feeder_wh.shape != (EPISODE_INTERVALS,):
        raise ValidationError("feeder_wh", f"need ({EPISODE_INTERVALS},), got {feeder_wh.shape}")
