"""Grid-aware clearing confirmed by the AC power flow (the edge that runs pandapower).

:func:`clear_and_confirm` runs the interval's AC flow with every order in full; if it breaks
a limit, it asks the pure :func:`~gridledger.grid.constrained.clear_grid_aware` for the
curtailment, reruns the AC flow on the curtailed schedule and, when the linearisation was
optimistic, retries with margins twice as wide (at most ``max_attempts`` times).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.grid.constrained import (
    GridAwareClearing,
    Margins,
    clear_grid_aware,
    count_changed_pairs,
    mw_per_wh,
    tightened,
)
from gridledger.grid.powerflow import (
    CommunityGrid,
    FloatArray,
    GridLimits,
    PowerFlowResult,
    operating_point,
    run_slot_power_flow,
)
from gridledger.grid.sensitivity import GridSensitivities
from gridledger.market import Book, clear
from gridledger.market.orders import SELL

DEFAULT_MAX_ATTEMPTS = 4


@dataclass(frozen=True, eq=False)
class ConfirmedClearing:
    """The clearing, the AC flow without grid awareness, and the AC flow of the schedule run."""

    clearing: GridAwareClearing
    unconstrained_flow: PowerFlowResult
    flow: PowerFlowResult
    attempts: int  # linear programs solved (0: the plain auction already fitted)


def schedule_slot_p_mw(
    grid: CommunityGrid,
    slot_p_mw: FloatArray,
    book: Book,
    row_slot: npt.ArrayLike,
    withheld_wh: npt.NDArray[np.int64],
    interval_length_s: int,
) -> FloatArray:
    """Slot consumption once ``withheld_wh`` is taken off each row (full schedule + changes)."""
    rows = np.asarray(row_slot, dtype=np.int64)
    # withholding a sell leaves more consumption at its bus; withholding a buy leaves less
    sign = np.where(book.side == SELL, 1.0, -1.0)
    change = np.zeros(len(grid.buses), dtype=np.float64)
    np.add.at(change, rows, sign * withheld_wh * mw_per_wh(interval_length_s))
    adjusted: FloatArray = np.asarray(slot_p_mw, dtype=np.float64) + change
    return adjusted


def clear_and_confirm(
    grid: CommunityGrid,
    sensitivities: GridSensitivities,
    book: Book,
    row_bus: npt.ArrayLike,
    curtailable: npt.ArrayLike,
    slot_p_mw: FloatArray,
    *,
    limits: GridLimits = GridLimits(),
    interval_length_s: int = 900,
    mechanism: str = "uniform",
    grid_fee_micro_per_kwh: int = 0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base_flow: PowerFlowResult | None = None,
) -> ConfirmedClearing:
    """Clear ``book`` so that the AC flow of the resulting schedule respects ``limits``.

    ``slot_p_mw`` is every slot's consumption with all orders in full (background included);
    ``row_bus`` is the grid bus of each book row. ``base_flow``, when the caller has already
    solved that schedule (a batch over the run), saves the flow in intervals within limits.
    """
    plain = clear(book, mechanism, grid_fee_micro_per_kwh)
    if base_flow is None or (base_flow.converged and base_flow.violations(limits)):
        base_flow = run_slot_power_flow(grid, slot_p_mw)  # the curtailment needs its state
    nothing = np.zeros(len(book), dtype=np.int64)
    if not base_flow.violations(limits) or not base_flow.converged:
        return ConfirmedClearing(
            GridAwareClearing(plain, plain, nothing, 0, 0.0), base_flow, base_flow, 0
        )
    point = operating_point(grid)
    buses = np.asarray(row_bus, dtype=np.int64)
    row_slot = np.array([grid.position_of_bus(int(b)) for b in buses], dtype=np.int64)
    row_column = np.array([sensitivities.column_of_bus(int(b)) for b in buses], dtype=np.int64)
    best = GridAwareClearing(plain, plain, nothing, 0, float("inf"))
    flow = base_flow
    attempts = 0
    for attempt in range(max_attempts):
        attempts = attempt + 1
        candidate = clear_grid_aware(
            book,
            row_column,
            curtailable,
            sensitivities,
            point,
            limits=limits,
            interval_length_s=interval_length_s,
            mechanism=mechanism,
            grid_fee_micro_per_kwh=grid_fee_micro_per_kwh,
            margins=tightened(Margins(), attempt),
        )
        flow = run_slot_power_flow(
            grid,
            schedule_slot_p_mw(
                grid, slot_p_mw, book, row_slot, candidate.curtailed_wh, interval_length_s
            ),
        )
        best = candidate
        if not flow.violations(limits) or candidate.residual_violation > 0:
            break
    return ConfirmedClearing(best, base_flow, flow, attempts)


__all__ = ["ConfirmedClearing", "clear_and_confirm", "count_changed_pairs", "schedule_slot_p_mw"]
