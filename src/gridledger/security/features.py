"""Features of sliding one-day windows of meter streams, against the meter's own trusted history.

A window is 96 intervals (one day) ending every ``WINDOW_STRIDE`` intervals (6 h) of the judged
week. The 28 history days before it are the meter's baseline; the community (every meter of the
episode, attacked or not) is the common-mode reference, so a cold day that raises every load
does not look like an attack on one of them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.iotools.simbench import INTERVALS_PER_DAY, Int64Array
from gridledger.security.data import EPISODE_INTERVALS, HISTORY_DAYS, HISTORY_INTERVALS

FloatArray = npt.NDArray[np.float64]
WINDOW_INTERVALS = INTERVALS_PER_DAY
WINDOW_STRIDE = 24  # a window ends every 6 hours
REPLAY_LAGS_DAYS = HISTORY_DAYS - 1  # lags 1..27 days stay inside the episode
FEATURE_NAMES = (
    "level_log",  # log of window energy over the median history day
    "level_z",  # the same as a robust z-score (median, MAD of history days)
    "level_vs_community",  # level_log minus the community's median level_log
    "peer_level_z",  # level_log minus the peers' median level_log, in history's robust spread
    "floor_log",  # 10th-percentile interval vs history's: offsets lift the floor
    "peak_log",  # highest interval vs the 90th percentile of daily peaks
    "shape_drop",  # how much less the window follows the meter's typical day than usual
    "peer_drop",  # how much less it follows the community's normalised load than usual
    "replay_corr",  # best correlation with the same window 1..27 days earlier
    "replay_l1",  # smallest relative L1 distance to those earlier windows
    "replay_vs_community",  # replay_l1 vs the community's median (holidays repeat for all)
    "zero_excess",  # share of zero intervals above history's share
    "rough_log",  # interval-to-interval roughness vs history's
    "level_cusum_low",  # one-sided CUSUM of peer_level_z since the judged week began
    "level_cusum_high",
    "shape_drop_3d",  # shape_drop averaged over the last three days of windows
    "peer_drop_3d",
)
CUSUM_SLACK = 0.5  # in robust-z units per window: ignore drifts smaller than this
TRAILING_WINDOWS = 3 * INTERVALS_PER_DAY // WINDOW_STRIDE
N_PEERS = 8
TWIN_CORRELATION = 0.999  # history series this alike are copies of one profile, not peers
MIN_LEVEL_SPREAD = 0.05  # log units: no meter is trusted to repeat its level closer than 5%


def window_ends() -> npt.NDArray[np.int64]:
    """Exclusive end interval of every judged window of an episode."""
    return np.arange(
        HISTORY_INTERVALS + WINDOW_STRIDE, EPISODE_INTERVALS + 1, WINDOW_STRIDE, dtype=np.int64
    )


def _corr(a: FloatArray, b: FloatArray) -> FloatArray:
    """Pearson correlation along the last axis; 0 where either side is constant."""
    ac = a - a.mean(axis=-1, keepdims=True)
    bc = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((ac * ac).sum(axis=-1) * (bc * bc).sum(axis=-1))
    safe = np.where(denominator > 0, denominator, 1.0)
    corr: FloatArray = np.where(denominator > 0, (ac * bc).sum(axis=-1) / safe, 0.0)
    return corr


def _windows(series: FloatArray, ends: npt.NDArray[np.int64]) -> FloatArray:
    """``series[..., e - 96 : e]`` for each end, stacked on a new second-to-last axis."""
    view = np.lib.stride_tricks.sliding_window_view(series, WINDOW_INTERVALS, axis=-1)
    windows: FloatArray = view[..., ends - WINDOW_INTERVALS, :]
    return windows


def _roughness(x: FloatArray) -> FloatArray:
    rough: FloatArray = np.abs(np.diff(x, axis=-1)).mean(axis=-1) / (x.mean(axis=-1) + 1.0)
    return rough


def _replay_features(
    series: FloatArray, x: FloatArray, ends: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    best_corr = np.full(x.shape[:2], -1.0)
    best_l1 = np.full(x.shape[:2], np.inf)
    total = x.sum(axis=-1) + WINDOW_INTERVALS
    for lag_days in range(1, REPLAY_LAGS_DAYS + 1):
        earlier = _windows(series, ends - lag_days * INTERVALS_PER_DAY)
        best_corr = np.maximum(best_corr, _corr(x, earlier))
        best_l1 = np.minimum(best_l1, np.abs(x - earlier).sum(axis=-1) / total)
    return best_corr, best_l1


def peers_of(history_level: FloatArray, history_wh: FloatArray) -> npt.NDArray[np.intp]:
    """Per meter, the ``N_PEERS`` others whose daily level moved most like its own in history.

    Exact (scaled) copies are skipped: a twin is not a peer, it would hide every deviation.
    """

    def unit_rows(a: FloatArray) -> FloatArray:
        centred = a - a.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(centred, axis=1, keepdims=True)
        unit: FloatArray = centred / np.where(norm > 0, norm, 1.0)
        return unit

    levels = unit_rows(history_level)
    similarity = levels @ levels.T
    shapes = unit_rows(history_wh)
    similarity[shapes @ shapes.T > TWIN_CORRELATION] = -np.inf
    np.fill_diagonal(similarity, -np.inf)
    count = max(1, min(N_PEERS, len(similarity) - 1))
    peers: npt.NDArray[np.intp] = np.argsort(-similarity, axis=1, kind="stable")[:, :count]
    return peers


def _peer_level_z(
    daily: FloatArray, median_day: FloatArray, level_log: FloatArray, history_wh: FloatArray
) -> FloatArray:
    """Robust z of each window's level against its peers' level, scaled by history's spread.

    Weather, weekdays and seasons move similar households together; what is left after
    subtracting the peers' median level is the meter's own deviation.
    """
    history_level = np.log((daily + WINDOW_INTERVALS) / (median_day[:, None] + WINDOW_INTERVALS))
    peers = peers_of(history_level, history_wh)
    history_residual = history_level - np.median(history_level[peers], axis=1)
    centre = np.median(history_residual, axis=1)
    spread = np.maximum(
        1.4826 * np.median(np.abs(history_residual - centre[:, None]), axis=1), MIN_LEVEL_SPREAD
    )
    residual = level_log - np.median(level_log[peers], axis=1) - centre[:, None]
    z: FloatArray = residual / spread[:, None]
    return z


def _cusum(z: FloatArray) -> FloatArray:
    """One-sided CUSUM along the windows axis: evidence of a persistent upward shift."""
    total = np.zeros(z.shape[0])
    out = np.empty_like(z)
    for w in range(z.shape[1]):
        total = np.maximum(0.0, total + z[:, w] - CUSUM_SLACK)
        out[:, w] = total
    return out


def trailing_mean(values: FloatArray) -> FloatArray:
    """Mean over the last ``TRAILING_WINDOWS`` windows (fewer at the start of the week)."""
    cumulative = np.cumsum(values, axis=1)
    shifted = np.zeros_like(cumulative)
    shifted[:, TRAILING_WINDOWS:] = cumulative[:, :-TRAILING_WINDOWS]
    count = np.minimum(np.arange(1, values.shape[1] + 1), TRAILING_WINDOWS)
    mean: FloatArray = (cumulative - shifted) / count[None, :]
    return mean


def window_features(reported_wh: Int64Array) -> FloatArray:
    """Features of every judged window: shape (n_meters, n_windows, len(FEATURE_NAMES))."""
    if reported_wh.ndim != 2 or reported_wh.shape[1] != EPISODE_INTERVALS:
        raise ValidationError(
            "reported_wh", f"need (n_meters, {EPISODE_INTERVALS}), got {reported_wh.shape}"
        )
    series = reported_wh.astype(np.float64)
    ends = window_ends()
    x = _windows(series, ends)  # (n, w, 96)
    days = series[:, :HISTORY_INTERVALS].reshape(len(series), HISTORY_DAYS, INTERVALS_PER_DAY)
    daily = days.sum(axis=-1)
    median_day = np.median(daily, axis=1)
    mad_day = 1.4826 * np.median(np.abs(daily - median_day[:, None]), axis=1) + 1.0
    typical = np.median(days, axis=1)  # (n, 96) by time of day
    phase = (ends[:, None] + np.arange(WINDOW_INTERVALS)[None, :]) % INTERVALS_PER_DAY
    typical_windows = typical[:, phase]  # (n, w, 96): window i starts at time of day e % 96

    normalised = series / (median_day[:, None] + WINDOW_INTERVALS)
    community = normalised.mean(axis=0)
    community_days = community[:HISTORY_INTERVALS].reshape(HISTORY_DAYS, INTERVALS_PER_DAY)

    energy = x.sum(axis=-1)
    level_log = np.log((energy + WINDOW_INTERVALS) / (median_day[:, None] + WINDOW_INTERVALS))
    history_q10 = np.quantile(series[:, :HISTORY_INTERVALS], 0.1, axis=1)
    peak_q90 = np.quantile(days.max(axis=-1), 0.9, axis=1)
    zero_share = (series[:, :HISTORY_INTERVALS] == 0).mean(axis=1)
    shape_usual = _corr(days, typical[:, None, :]).mean(axis=1)
    peer_usual = _corr(days, community_days[None, :, :]).mean(axis=1)
    replay_corr, replay_l1 = _replay_features(series, x, ends)
    rough_history = _roughness(series[:, :HISTORY_INTERVALS])

    columns = (
        level_log,
        (energy - median_day[:, None]) / mad_day[:, None],
        level_log - np.median(level_log, axis=0, keepdims=True),
        _peer_level_z(daily, median_day, level_log, series[:, :HISTORY_INTERVALS]),
        np.log((np.quantile(x, 0.1, axis=-1) + 1.0) / (history_q10[:, None] + 1.0)),
        np.log((x.max(axis=-1) + 1.0) / (peak_q90[:, None] + 1.0)),
        shape_usual[:, None] - _corr(x, typical_windows),
        peer_usual[:, None] - _corr(x, _windows(community, ends)[None, :, :]),
        replay_corr,
        replay_l1,
        np.log((replay_l1 + 0.01) / (np.median(replay_l1, axis=0, keepdims=True) + 0.01)),
        (x == 0).mean(axis=-1) - zero_share[:, None],
        np.log((_roughness(x) + 0.01) / (rough_history[:, None] + 0.01)),
    )
    residual, shape_drop, peer_drop = columns[3], columns[6], columns[7]
    trailing = (
        _cusum(-residual),
        _cusum(residual),
        trailing_mean(shape_drop),
        trailing_mean(peer_drop),
    )
    return np.stack(columns + trailing, axis=-1)


def attacked_share(onset: npt.NDArray[np.int64]) -> FloatArray:
    """Per meter and judged window, the share of the window's intervals under attack."""
    ends = window_ends()[None, :]
    start = np.maximum(onset[:, None], ends - WINDOW_INTERVALS)
    share = np.clip(ends - start, 0, WINDOW_INTERVALS) / WINDOW_INTERVALS
    result: FloatArray = np.where(onset[:, None] >= 0, share, 0.0)
    return result
