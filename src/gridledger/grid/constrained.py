"""Grid-aware clearing: the market clears only what the feeder can physically carry.

The rule (see docs/grid-aware-clearing.md):

1. Physics first. Every order is a physical schedule: a sell is energy its owner exports, a buy
   is energy its owner consumes. Without limits every order runs in full (what the market does
   not match locally, the grid supplier buys at the feed-in tariff or sells at the import
   tariff), and the AC power flow of that schedule is the interval's operating point.
2. When that point breaks a limit (line or transformer loading, voltage band), a linear program
   chooses how much of each *curtailable* order to withhold: sells can be curtailed (PV
   curtailment, a battery that holds back), buys only when the household marks them flexible.
   With the linearised AC model of :mod:`gridledger.grid.sensitivity`::

       minimise   sum_r w_r c_r  +  M sum_k s_k
       subject to f0 + S A c  <=  cap + s         (lines, transformers: both directions)
                  vmin <= vm0 + V A c  <= vmax  (+/- s)
                  0 <= c_r <= q_r,  s >= 0

   ``c_r`` is the energy withheld from order r (kWh), ``A`` maps it to bus injections (a
   withheld sell injects less, a withheld buy consumes less), ``w_r = 1 + 0.01 * merit_r``:
   lose as little energy as possible (PV has no fuel cost and every Wh is worth at least the
   feed-in tariff, so this maximises welfare), and among equal losses withhold the orders the
   auction would accept last (highest asks, lowest bids). ``s`` are slack variables with a
   large cost ``M``: the program is always feasible, and positive slack reports a violation
   the offered flexibility cannot remove. Solved by HiGHS (``scipy.optimize.linprog``).
3. Withheld energy is rounded *up* to whole Wh, and the ordinary auction (uniform price,
   pay-as-bid or CDA) clears the book with the reduced quantities. The result is an ordinary
   :class:`~gridledger.market.ClearingResult` over the *original* book rows (integer Wh), so
   commitments and settlement work unchanged.

The caller confirms the new schedule with a full AC power flow (:func:`clear_and_confirm` does
that and tightens the margins if the linearisation was optimistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

from gridledger.errors import ValidationError
from gridledger.grid.powerflow import FloatArray, GridLimits, OperatingPoint
from gridledger.grid.sensitivity import GridSensitivities, line_limit_mw, trafo_limit_mw
from gridledger.market import Book, ClearingResult, Trades, clear
from gridledger.market.orders import BUY, SELL

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SLACK_COST = 1e6  # per unit of violation (MW or pu): far above any energy weight (~1 per kWh)
_MERIT_WEIGHT = 0.01
_SLACK_TOLERANCE = 1e-7
_WH_PER_KWH = 1000
_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Margins:
    """How far inside the limits the linear model aims (covers linearisation error)."""

    loading_percent: float = 2.0
    vm_pu: float = 0.002


@dataclass(frozen=True, eq=False)
class GridAwareClearing:
    """A clearing that respects the grid, and what it cost.

    ``curtailed_wh`` is withheld energy per book row; ``unconstrained`` is what the plain
    auction would have done; ``trades_changed`` counts (buyer, seller) pairs whose energy or
    price differs between the two; ``residual_violation`` > 0 means the limits could not be
    met with the flexibility offered (the worst slack, in MW or pu).
    """

    result: ClearingResult
    unconstrained: ClearingResult
    curtailed_wh: Int64Array
    trades_changed: int
    residual_violation: float

    @property
    def curtailed_total_wh(self) -> int:
        return int(self.curtailed_wh.sum())


def mw_per_wh(interval_length_s: int) -> float:
    """Mean power (MW) of one Wh delivered over one interval."""
    if interval_length_s <= 0:
        raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
    return _SECONDS_PER_HOUR / interval_length_s / 1_000_000


def clear_grid_aware(
    book: Book,
    row_column: npt.ArrayLike,
    curtailable: npt.ArrayLike,
    sensitivities: GridSensitivities,
    point: OperatingPoint,
    *,
    limits: GridLimits = GridLimits(),
    interval_length_s: int = 900,
    mechanism: str = "uniform",
    grid_fee_micro_per_kwh: int = 0,
    margins: Margins = Margins(),
) -> GridAwareClearing:
    """Clear ``book`` within the limits; ``point`` is the AC state with every order in full.

    ``row_column[r]`` is the sensitivity column (bus) of book row r; ``curtailable[r]`` says
    whether row r may be withheld.
    """
    columns, may_curtail = _check_rows(book, row_column, curtailable, sensitivities)
    unconstrained = clear(book, mechanism, grid_fee_micro_per_kwh)
    curtailed_kwh, residual = _solve_curtailment(
        book, columns, may_curtail, sensitivities, point, limits, interval_length_s, margins
    )
    curtailed_wh = np.zeros(len(book), dtype=np.int64)
    rows = np.flatnonzero(may_curtail)
    curtailed_wh[rows] = np.minimum(
        np.ceil(curtailed_kwh * _WH_PER_KWH - 1e-6).clip(0).astype(np.int64), book.energy_wh[rows]
    )
    result = clear_reduced(book, curtailed_wh, mechanism, grid_fee_micro_per_kwh)
    return GridAwareClearing(
        result=result,
        unconstrained=unconstrained,
        curtailed_wh=curtailed_wh,
        trades_changed=count_changed_pairs(unconstrained, result),
        residual_violation=residual,
    )


def _check_rows(
    book: Book,
    row_column: npt.ArrayLike,
    curtailable: npt.ArrayLike,
    sensitivities: GridSensitivities,
) -> tuple[Int64Array, BoolArray]:
    columns = np.asarray(row_column, dtype=np.int64)
    may_curtail = np.asarray(curtailable, dtype=np.bool_)
    n = len(book)
    if columns.shape != (n,) or may_curtail.shape != (n,):
        raise ValidationError("row_column", f"need one column and one flag per book row ({n})")
    n_columns = len(sensitivities.buses)
    if n and (int(columns.min()) < 0 or int(columns.max()) >= n_columns):
        raise ValidationError("row_column", f"columns must be in 0..{n_columns - 1}")
    return columns, may_curtail


def _solve_curtailment(
    book: Book,
    columns: Int64Array,
    may_curtail: BoolArray,
    sens: GridSensitivities,
    point: OperatingPoint,
    limits: GridLimits,
    interval_length_s: int,
    margins: Margins,
) -> tuple[FloatArray, float]:
    rows = np.flatnonzero(may_curtail)
    n_vars = int(rows.size)
    # injection change (MW) at each sensitivity column per kWh withheld from each variable
    sign = np.where(book.side[rows] == SELL, -1.0, 1.0)
    injection = np.zeros((len(sens.buses), n_vars), dtype=np.float64)
    injection[columns[rows], np.arange(n_vars)] = sign * mw_per_wh(interval_length_s) * 1000
    loading_scale = 1.0 - margins.loading_percent / 100.0
    blocks = (
        (sens.line_p_per_mw @ injection, point.line_p_mw, line_limit_mw(sens, point, limits)),
        (sens.trafo_p_per_mw @ injection, point.trafo_p_mw, trafo_limit_mw(sens, point, limits)),
    )
    a_rows: list[FloatArray] = []
    b_rows: list[FloatArray] = []
    for gain, flow, cap in blocks:
        a_rows += [gain, -gain]
        b_rows += [cap * loading_scale - flow, cap * loading_scale + flow]
    v_gain = sens.vm_pu_per_mw @ injection
    a_rows += [v_gain, -v_gain]
    b_rows += [
        (limits.max_vm_pu - margins.vm_pu) - point.vm_pu,
        point.vm_pu - (limits.min_vm_pu + margins.vm_pu),
    ]
    a_energy = np.vstack(a_rows)
    b = np.concatenate(b_rows)
    n_slack = int(b.shape[0])
    a_ub = csr_matrix(np.hstack([a_energy, -np.eye(n_slack)]))
    cost = np.concatenate((_energy_weights(book, rows), np.full(n_slack, SLACK_COST)))
    upper = np.concatenate((book.energy_wh[rows] / _WH_PER_KWH, np.full(n_slack, np.inf)))
    solved = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b,
        bounds=np.column_stack((np.zeros(n_vars + n_slack), upper)),
        method="highs",
    )
    if solved.status != 0:  # pragma: no cover - slack keeps the program feasible and bounded
        raise ValidationError("book", f"grid-aware clearing failed: {solved.message}")
    x = np.asarray(solved.x, dtype=np.float64)
    slack = x[n_vars:]
    residual = float(slack.max()) if slack.size else 0.0
    return x[:n_vars], residual if residual > _SLACK_TOLERANCE else 0.0


def _energy_weights(book: Book, rows: Int64Array) -> FloatArray:
    """1 per kWh withheld, plus a small merit term: keep the orders the auction wants most."""
    price = book.price_micro_per_kwh[rows].astype(np.float64)
    top = float(book.price_micro_per_kwh.max()) + 1.0 if len(book) else 1.0
    merit = np.where(book.side[rows] == BUY, price / top, (top - price) / top)
    weights: FloatArray = 1.0 + _MERIT_WEIGHT * merit
    return weights


def clear_reduced(
    book: Book, withheld_wh: Int64Array, mechanism: str, grid_fee_micro_per_kwh: int
) -> ClearingResult:
    """Clear ``book`` with ``withheld_wh`` taken off each row; rows index the original book."""
    remaining = book.energy_wh - withheld_wh
    keep = np.flatnonzero(remaining > 0)
    reduced = Book.from_arrays(
        ids=book.ids[keep],
        side=book.side[keep],
        energy_wh=remaining[keep],
        price_micro_per_kwh=book.price_micro_per_kwh[keep],
        zone=book.zone[keep],
        sequence=book.sequence[keep],
    )
    inner = clear(reduced, mechanism, grid_fee_micro_per_kwh)
    filled = np.zeros(len(book), dtype=np.int64)
    filled[keep] = inner.filled_wh
    t = inner.trades
    return ClearingResult(
        mechanism=inner.mechanism,
        clearing_price_micro_per_kwh=inner.clearing_price_micro_per_kwh,
        cleared_energy_wh=inner.cleared_energy_wh,
        trades=Trades(
            keep[t.buy_row].astype(np.int64),
            keep[t.sell_row].astype(np.int64),
            t.energy_wh,
            t.price_micro_per_kwh,
            t.fee_micro_per_kwh,
        ),
        filled_wh=filled,
        book=book,
    )


def count_changed_pairs(before: ClearingResult, after: ClearingResult) -> int:
    """(buy id, sell id) pairs whose total energy or price differs between two clearings."""

    def pairs(result: ClearingResult) -> dict[tuple[int, int], tuple[int, int]]:
        ids, t = result.book.ids, result.trades
        out: dict[tuple[int, int], tuple[int, int]] = {}
        for b, s, e, p in zip(
            ids[t.buy_row].tolist(),
            ids[t.sell_row].tolist(),
            t.energy_wh.tolist(),
            t.price_micro_per_kwh.tolist(),
            strict=True,
        ):
            energy, _ = out.get((b, s), (0, p))
            out[(b, s)] = (energy + e, p)
        return out

    mine, theirs = pairs(before), pairs(after)
    return sum(1 for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key))


def tightened(margins: Margins, attempt: int) -> Margins:
    """Margins for retry ``attempt`` (0 = first try): each retry aims further inside."""
    factor = float(math.pow(2.0, attempt))
    return Margins(margins.loading_percent * factor, margins.vm_pu * factor)
