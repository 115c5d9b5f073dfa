"""Streaming detection features: every meter's features after every interval (pure).

Each feature at interval ``t`` depends only on readings up to ``t`` and on a
:class:`MeterBaseline` taken from the trusted history before the stream, so the detector can
score each meter as soon as its reading (and the feeder meter's) for an interval arrives. All
windowed quantities are rolling sums (O(1) per interval and meter); the signed evidence that
accumulates across windows is a CUSUM carried in :class:`StreamState`.

Four references judge a meter: its own history (typical energy by time of day, level,
zero share, roughness), its peers (the households whose daily level moved most like its own;
their median removes weather and weekdays), the community's normalised load (neighbour
correlation) and the feeder meter's energy balance (the feeder's unexplained energy per
interval and its projection on the meter's profile and on the meter's deviation from its
typical day). :func:`stream_features` computes a whole stream at once; :func:`step` does the
same one interval at a time, for a live node; both give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, Int64Array
from gridledger.security.balance import FeederModel, LossFit, fit_losses
from gridledger.security.features import peers_of

FloatArray = npt.NDArray[np.float64]
SHORT, MID, LONG = 4, 16, INTERVALS_PER_DAY  # rolling windows, in intervals
WEEK = 7 * LONG
LEVEL_WINDOWS = (SHORT, MID, LONG, 3 * LONG, WEEK)  # long windows: evidence accumulates
PARTIAL_WINDOWS = (MID, LONG, 3 * LONG, WEEK)
REPLAY_LAG_DAYS = 26
MEMORY_INTERVALS = REPLAY_LAG_DAYS * INTERVALS_PER_DAY + LONG + 1  # what step() must keep
MIN_HISTORY_INTERVALS = MEMORY_INTERVALS
CUSUM_SLACK = 1.0  # robust-z units per interval: drifts smaller than this are ignored
CUSUM_CLIP = 3.0  # one spike adds at most this much: a kettle is not a persistent shift
MIN_SPREAD = 0.05  # log units: no meter repeats its level closer than 5%
STREAM_FEATURE_NAMES = (
    "level_z_1h",  # log energy of the last hour vs typical, minus the peers', in history's spread
    "level_z_4h",
    "level_z_1d",
    "level_z_3d",
    "level_z_7d",
    "level_cusum_low",  # one-sided CUSUMs of level_z_1h since the stream began: signed history
    "level_cusum_high",
    "feeder_gap_z_1h",  # the feeder's unexplained energy, in noise units
    "feeder_gap_z_4h",
    "feeder_gap_z_1d",
    "feeder_gap_cusum_low",
    "feeder_gap_cusum_high",
    "balance_profile_z_1h",  # projection of the feeder gap on the meter's reported profile
    "balance_profile_z_4h",
    "balance_profile_z_1d",
    "balance_partial_z_4h",  # partial correlation of gap and meter given the feeder total, as z
    "balance_partial_z_1d",
    "balance_partial_z_3d",
    "balance_partial_z_7d",
    "balance_partial_vs_others_1d",  # ... minus the median meter's: who stands out
    "balance_partial_vs_others_7d",
    "balance_factor_1d",  # gap / reported energy: the under-reported share if this meter alone
    "shape_drop_1d",  # how much less the last day follows the meter's typical day than usual
    "community_drop_1d",  # ... the community's normalised load (neighbour correlation)
    "replay_corr_1d",  # best correlation of the last day with the same hours 1..26 days before
    "replay_vs_community",
    "zero_excess_4h",  # share of zero readings above history's share
    "rough_log_1d",  # interval-to-interval roughness vs history's
    "balance_filter_t",  # the meter's coefficient in the feeder balance filter, over its sd
    "balance_filter_coefficient",  # ... the coefficient itself: 1/s - 1 for a meter reporting s
    "balance_filter_t_vs_others",  # ... minus the median meter's t
)
N_CUSUMS = 4  # level low/high (per meter), feeder gap low/high (shared)
# The balance filter: a Kalman filter of the feeder gap on every meter's reading at once.
BALANCE_PRIOR_SD = 0.5  # of a coefficient 1/s - 1 before any reading
BALANCE_DRIFT = 1e-4  # variance per interval a coefficient may move by: onsets happen
BALANCE_WARMUP_INTERVALS = WEEK  # trusted intervals the filter runs before the stream
MIN_LOSS_SLOPE = 0.5  # d(expected feeder)/d(sum reported) below this is a broken loss fit


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class MeterBaseline:
    """What the trusted history says about each meter and the feeder (rows = meters)."""

    first_phase: int  # time-of-day index (0..95) of the history's first interval
    typical_wh: FloatArray  # (n, 96) mean energy by time of day
    zero_share: FloatArray  # (n,)
    rough: FloatArray  # (n,) mean |step| over mean energy
    peers: npt.NDArray[np.intp]  # (n, P)
    level_centre: FloatArray  # (n, windows) history median of the peer-relative level
    level_spread: FloatArray  # (n, windows)
    shape_usual: FloatArray  # (n,) history median of the correlation with the typical day
    community_usual: FloatArray  # (n,)
    community_scale: FloatArray  # (n,) mean interval energy, to normalise the community load
    losses: LossFit

    @property
    def n_meters(self) -> int:
        return len(self.typical_wh)


@dataclass(frozen=True, eq=False)
class BalanceFilter:
    """Every meter's coefficient in ``gap(t) = sum_i c_i reported_i(t) + noise`` (Kalman).

    A meter reporting ``s * true`` has ``c = 1/s - 1``; an honest one 0. Fitting all meters at
    once (rather than each alone) lets many simultaneous under-reporters share the gap instead
    of every meter with a household's daily shape taking the blame; the random-walk drift lets a
    coefficient leave 0 at an onset without a window or an onset guess.
    """

    coefficient: FloatArray  # (n,)
    covariance: FloatArray  # (n, n)


@dataclass(frozen=True, eq=False)
class StreamState:
    """What :func:`step` carries between intervals."""

    baseline: MeterBaseline
    reported_wh: Int64Array  # (n, MEMORY_INTERVALS) the latest readings
    feeder_wh: Int64Array  # (MEMORY_INTERVALS,)
    cusum: FloatArray  # (n, N_CUSUMS)
    phase: int  # time-of-day index of the next interval
    balance: BalanceFilter


def _rolling(a: FloatArray, length: int) -> FloatArray:
    """Causal rolling sum along the last axis (partial at the start)."""
    c = np.cumsum(a, axis=-1)
    out = c.copy()
    out[..., length:] = c[..., length:] - c[..., :-length]
    return out


def _rolling_corr(a: FloatArray, b: FloatArray, length: int) -> FloatArray:
    n = float(length)
    sa, sb = _rolling(a, length), _rolling(b, length)
    sab, saa, sbb = _rolling(a * b, length), _rolling(a * a, length), _rolling(b * b, length)
    cov = sab - sa * sb / n
    var = np.maximum(saa - sa * sa / n, 0.0) * np.maximum(sbb - sb * sb / n, 0.0)
    safe = np.where(var > 0, np.sqrt(var), 1.0)
    corr: FloatArray = np.where(var > 0, cov / safe, 0.0)
    return corr


def _partial_z(x: FloatArray, gap: FloatArray, total: FloatArray, length: int) -> FloatArray:
    """Correlation of each meter's readings with the feeder gap once the feeder total is taken
    out of both, times sqrt(window): households share a daily shape, so a raw projection
    blames everyone; what is left after the total is each household's own."""
    n = float(length)

    def cov(a: FloatArray, b: FloatArray) -> FloatArray:
        out: FloatArray = _rolling(a * b, length) - _rolling(a, length) * _rolling(b, length) / n
        return out

    var_total = np.maximum(cov(total, total), 1e-9)
    x_total = cov(x, total)
    gap_total = cov(gap, total)
    partial_xg = cov(x, gap) - x_total * gap_total / var_total
    partial_xx = np.maximum(cov(x, x) - x_total * x_total / var_total, 0.0)
    partial_gg = np.maximum(cov(gap, gap) - gap_total * gap_total / var_total, 0.0)
    den = np.sqrt(partial_xx * partial_gg)
    corr = np.where(den > 0, partial_xg / np.where(den > 0, den, 1.0), 0.0)
    z: FloatArray = corr * np.sqrt(n)
    return z


def _typical_series(typical: FloatArray, first_phase: int, length: int) -> FloatArray:
    phase = (first_phase + np.arange(length)) % INTERVALS_PER_DAY
    series: FloatArray = typical[:, phase]
    return series


def _peer_levels(
    x: FloatArray, typical: FloatArray, peers: npt.NDArray[np.intp]
) -> list[FloatArray]:
    """Per window length: log(energy / typical) minus the peers' median of the same."""
    out = []
    for length in LEVEL_WINDOWS:
        ratio = np.log((_rolling(x, length) + length) / (_rolling(typical, length) + length))
        out.append(ratio - np.median(ratio[peers], axis=1))
    return out


def _community(x: FloatArray, scale: FloatArray) -> FloatArray:
    community: FloatArray = (x / (scale[:, None] + 1.0)).mean(axis=0)
    return community


def baseline_of(
    history_wh: Int64Array, feeder_wh: Int64Array, first_phase: int = 0
) -> MeterBaseline:
    """The baseline of meters whose trusted readings (and the feeder's) are ``history_wh``."""
    if history_wh.ndim != 2 or history_wh.shape[1] < MIN_HISTORY_INTERVALS:
        raise ValidationError(
            "history_wh", f"need (n_meters, >= {MIN_HISTORY_INTERVALS}), got {history_wh.shape}"
        )
    if feeder_wh.shape != (history_wh.shape[1],):
        raise ValidationError("feeder_wh", f"need ({history_wh.shape[1]},), got {feeder_wh.shape}")
    x = history_wh.astype(np.float64)
    n, length = x.shape
    phase = (first_phase + np.arange(length)) % INTERVALS_PER_DAY
    typical = np.stack([x[:, phase == p].mean(axis=1) for p in range(INTERVALS_PER_DAY)], axis=1)
    whole_days = (length // INTERVALS_PER_DAY) * INTERVALS_PER_DAY
    daily = x[:, :whole_days].reshape(n, -1, INTERVALS_PER_DAY).sum(axis=-1)
    median_day = np.median(daily, axis=1)
    peers = peers_of(np.log((daily + LONG) / (median_day[:, None] + LONG)), x)
    typical_x = _typical_series(typical, first_phase, length)
    judged = slice(WEEK, length)  # points with a full week behind them
    levels = np.stack([lv[:, judged] for lv in _peer_levels(x, typical_x, peers)], axis=1)
    centre = np.median(levels, axis=2)
    spread = np.maximum(1.4826 * np.median(np.abs(levels - centre[:, :, None]), axis=2), MIN_SPREAD)
    scale = x.mean(axis=1)
    community = _community(x, scale)
    return MeterBaseline(
        first_phase=first_phase,
        typical_wh=typical,
        zero_share=(x == 0).mean(axis=1),
        rough=np.abs(np.diff(x, axis=1)).mean(axis=1) / (scale + 1.0),
        peers=peers,
        level_centre=centre,
        level_spread=spread,
        shape_usual=np.median(_rolling_corr(x, typical_x, LONG)[:, judged], axis=1),
        community_usual=np.median(
            _rolling_corr(x, np.broadcast_to(community, x.shape), LONG)[:, judged], axis=1
        ),
        community_scale=scale,
        losses=fit_losses(x.sum(axis=0), feeder_wh.astype(np.float64)),
    )


def _instant_features(
    base: MeterBaseline, x: FloatArray, feeder: FloatArray, first_phase: int, start: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Features without the CUSUMs at points ``start..`` of ``x`` (n, T), plus the CUSUM
    inputs: the meters' level_z_1h (n, T') and the feeder's per-interval gap z (T')."""
    n, length = x.shape
    typical = _typical_series(base.typical_wh, first_phase, length)
    levels = _peer_levels(x, typical, base.peers)
    level_z = [
        (lv[:, start:] - base.level_centre[:, k, None]) / base.level_spread[:, k, None]
        for k, lv in enumerate(levels)
    ]
    sigma = base.losses.noise_share * np.maximum(feeder, 1.0)
    gap = (feeder - base.losses.expected(x.sum(axis=0))) / sigma
    xs = x / sigma
    total = x.sum(axis=0)
    partial = [_partial_z(x, gap, total, w)[:, start:] for w in PARTIAL_WINDOWS]
    gap_z = [_rolling(gap, w)[start:] / np.sqrt(w) for w in (SHORT, MID, LONG)]

    def projection(series: FloatArray, w: int) -> FloatArray:
        num = _rolling(series * gap, w)[:, start:]
        den = np.sqrt(_rolling(series * series, w)[:, start:] + 1e-9)
        out: FloatArray = num / den
        return out

    factor = _rolling(gap * sigma, LONG)[start:] / (_rolling(x, LONG)[:, start:] + LONG)
    community = np.broadcast_to(_community(x, base.community_scale), x.shape)
    replay = np.full((n, length - start), -1.0)
    for lag in range(1, REPLAY_LAG_DAYS + 1):
        shift = lag * INTERVALS_PER_DAY
        earlier = np.zeros_like(x)
        earlier[:, shift:] = x[:, :-shift]
        replay = np.maximum(replay, _rolling_corr(x, earlier, LONG)[:, start:])
    steps = np.zeros_like(x)
    steps[:, 1:] = np.abs(np.diff(x, axis=1))
    rough = (_rolling(steps, LONG) / (_rolling(x, LONG) + LONG))[:, start:]
    shared = np.ones((n, 1))
    columns = (
        *level_z,
        *(shared * g for g in gap_z),
        projection(xs, SHORT),
        projection(xs, MID),
        projection(xs, LONG),
        *partial,
        partial[1] - np.median(partial[1], axis=0, keepdims=True),
        partial[3] - np.median(partial[3], axis=0, keepdims=True),
        factor,
        base.shape_usual[:, None] - _rolling_corr(x, typical, LONG)[:, start:],
        base.community_usual[:, None] - _rolling_corr(x, community, LONG)[:, start:],
        replay,
        replay - np.median(replay, axis=0, keepdims=True),
        _rolling((x == 0).astype(np.float64), MID)[:, start:] / MID - base.zero_share[:, None],
        np.log((rough + 0.01) / (base.rough[:, None] + 0.01)),
    )
    return np.stack(columns, axis=-1), level_z[0], gap[start:]


def cusum_update(cusum: FloatArray, level_z: FloatArray, gap_z: float) -> FloatArray:
    """One interval of the four one-sided CUSUMs (level low/high per meter, gap low/high)."""
    level = np.clip(level_z, -CUSUM_CLIP, CUSUM_CLIP)
    gap = float(np.clip(gap_z, -CUSUM_CLIP, CUSUM_CLIP))
    inputs = np.stack([-level, level, np.full_like(level, -gap), np.full_like(level, gap)], axis=1)
    updated: FloatArray = np.maximum(0.0, cusum + inputs - CUSUM_SLACK)
    return updated


def _balance_inputs(
    base: MeterBaseline, x: FloatArray, feeder: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per interval of ``x`` (n, T): each reading and the feeder's unexplained energy, in
    noise units; the gap is divided by the losses' slope at the reported total, so that a
    meter reporting ``s * true`` adds ``(1/s - 1) * reading`` to it (losses grow with load²)."""
    total = x.sum(axis=0)
    sigma = base.losses.noise_share * np.maximum(feeder, 1.0)
    c0, c1 = base.losses.coefficients
    slope = np.maximum(c0 + 2.0 * c1 * total / base.losses.mean_total, MIN_LOSS_SLOPE)
    gap: FloatArray = (feeder - base.losses.expected(total)) / sigma / slope
    readings: FloatArray = x / sigma
    return readings, gap


def balance_filter_update(
    state: BalanceFilter, readings: FloatArray, gap: float
) -> tuple[BalanceFilter, FloatArray]:
    """One interval of the balance filter -> the new filter and its features (n, 3)."""
    covariance = state.covariance + BALANCE_DRIFT * np.eye(len(readings))
    spread = covariance @ readings
    gain = spread / (float(readings @ spread) + 1.0)
    coefficient = state.coefficient + gain * (gap - float(readings @ state.coefficient))
    covariance = covariance - np.outer(gain, spread)
    t_stat = coefficient / np.sqrt(np.maximum(np.diag(covariance), 1e-12))
    features = np.stack([t_stat, coefficient, t_stat - np.median(t_stat)], axis=-1)
    return BalanceFilter(coefficient, covariance), features


def balance_filter_start(
    base: MeterBaseline, history_wh: Int64Array, feeder_wh: Int64Array
) -> BalanceFilter:
    """The filter after the last :data:`BALANCE_WARMUP_INTERVALS` of the trusted history."""
    n = history_wh.shape[0]
    state = BalanceFilter(np.zeros(n), BALANCE_PRIOR_SD**2 * np.eye(n))
    readings, gap = _balance_inputs(
        base,
        history_wh[:, -BALANCE_WARMUP_INTERVALS:].astype(np.float64),
        feeder_wh[-BALANCE_WARMUP_INTERVALS:].astype(np.float64),
    )
    for t in range(readings.shape[1]):
        state, _ = balance_filter_update(state, readings[:, t], float(gap[t]))
    return state


def _assemble(instant: FloatArray, cusums: FloatArray, balance: FloatArray) -> FloatArray:
    """Insert the CUSUM columns where :data:`STREAM_FEATURE_NAMES` has them, the balance
    filter's last."""
    levels, gaps = len(LEVEL_WINDOWS), len(LEVEL_WINDOWS) + 3
    return np.concatenate(
        [
            instant[..., :levels],
            cusums[..., :2],
            instant[..., levels:gaps],
            cusums[..., 2:],
            instant[..., gaps:],
            balance,
        ],
        axis=-1,
    )


def stream_features(
    base: MeterBaseline, history_wh: Int64Array, stream_wh: Int64Array, feeder_wh: Int64Array
) -> FloatArray:
    """Features after every interval of ``stream_wh`` (n, T): shape (n, T, n_features).

    ``history_wh`` is what the baseline was taken from, immediately before the stream (its last
    :data:`MEMORY_INTERVALS` are what the rolling windows look back on); ``feeder_wh`` covers
    history and stream.
    """
    x = np.concatenate([history_wh, stream_wh], axis=1).astype(np.float64)
    if feeder_wh.shape != (x.shape[1],):
        raise ValidationError("feeder_wh", f"need ({x.shape[1]},), got {feeder_wh.shape}")
    start = history_wh.shape[1]
    keep = max(0, start - MEMORY_INTERVALS)  # nothing further back changes a feature
    phase = (base.first_phase + keep) % INTERVALS_PER_DAY
    instant, level_z, gap = _instant_features(
        base, x[:, keep:], feeder_wh[keep:].astype(np.float64), phase, start - keep
    )
    cusums = np.zeros((x.shape[0], stream_wh.shape[1], N_CUSUMS))
    cusum = np.zeros((x.shape[0], N_CUSUMS))
    balances = np.zeros((x.shape[0], stream_wh.shape[1], 3))
    balance = balance_filter_start(base, history_wh, feeder_wh[:start])
    readings, balance_gap = _balance_inputs(
        base, x[:, start:], feeder_wh[start:].astype(np.float64)
    )
    for t in range(stream_wh.shape[1]):
        cusum = cusum_update(cusum, level_z[:, t], float(gap[t]))
        cusums[:, t] = cusum
        balance, balances[:, t] = balance_filter_update(
            balance, readings[:, t], float(balance_gap[t])
        )
    return _assemble(instant, cusums, balances)


def start_stream(base: MeterBaseline, history_wh: Int64Array, feeder_wh: Int64Array) -> StreamState:
    """The state before the first streamed interval, after the trusted history."""
    length = history_wh.shape[1]
    return StreamState(
        baseline=base,
        reported_wh=np.array(history_wh[:, -MEMORY_INTERVALS:], dtype=np.int64),
        feeder_wh=np.array(feeder_wh[-MEMORY_INTERVALS:], dtype=np.int64),
        cusum=np.zeros((base.n_meters, N_CUSUMS)),
        phase=(base.first_phase + length) % INTERVALS_PER_DAY,
        balance=balance_filter_start(base, history_wh, feeder_wh),
    )


def step(
    state: StreamState, reported_wh: Int64Array, feeder_wh: int
) -> tuple[StreamState, FloatArray]:
    """One interval's readings (n,) and the feeder's -> the new state and the features (n, F)."""
    if reported_wh.shape != (state.baseline.n_meters,):
        raise ValidationError(
            "reported_wh", f"need ({state.baseline.n_meters},), got {reported_wh.shape}"
        )
    x = np.concatenate([state.reported_wh[:, 1:], reported_wh[:, None]], axis=1)
    feeder = np.append(state.feeder_wh[1:], np.int64(feeder_wh))
    first_phase = (state.phase - MEMORY_INTERVALS + 1) % INTERVALS_PER_DAY
    instant, level_z, gap = _instant_features(
        state.baseline, x.astype(np.float64), feeder.astype(np.float64), first_phase, x.shape[1] - 1
    )
    cusum = cusum_update(state.cusum, level_z[:, 0], float(gap[0]))
    readings, balance_gap = _balance_inputs(
        state.baseline, x[:, -1:].astype(np.float64), feeder[-1:].astype(np.float64)
    )
    balance, balance_features = balance_filter_update(
        state.balance, readings[:, 0], float(balance_gap[0])
    )
    features = _assemble(instant[:, 0], cusum, balance_features)
    new_state = replace(
        state,
        reported_wh=x,
        feeder_wh=feeder,
        cusum=cusum,
        phase=(state.phase + 1) % INTERVALS_PER_DAY,
        balance=balance,
    )
    return new_state, features


def simulated_feeder(
    clean_wh: Int64Array, seed: int, model: FeederModel | None = None
) -> Int64Array:
    """The feeder meter of a simulated grid whose true loads are ``clean_wh``."""
    return (model or FeederModel()).feeder_wh(clean_wh, seed)
