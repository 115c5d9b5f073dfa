"""What a scenario run returns: the per-interval series and the result the report draws.

Its own module, below :mod:`gridledger.sim.runner` (which fills them) and
:mod:`gridledger.sim.report` (which draws them), so that neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.sim.kpis import Kpis
from gridledger.sim.scenario import Scenario

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class IntervalSeries:
    """Per-interval results (NaN price: nothing cleared; NaN flow values: no convergence)."""

    clearing_price_micro_per_kwh: FloatArray
    demand_wh: Int64Array  # the households' consumption, flexible loads included
    pv_generated_wh: Int64Array
    local_traded_wh: Int64Array
    supplier_import_wh: Int64Array  # bought from the grid supplier (last resort)
    supplier_export_wh: Int64Array  # sold to the grid supplier (curtailed energy excluded)
    curtailed_wh: Int64Array
    trades: Int64Array
    trades_changed: Int64Array
    max_line_loading_percent: FloatArray
    max_trafo_loading_percent: FloatArray
    min_vm_pu: FloatArray
    max_vm_pu: FloatArray
    ext_grid_p_mw: FloatArray
    unconstrained_max_trafo_loading_percent: FloatArray
    unconstrained_over_limits: npt.NDArray[np.bool_]  # the plain market's flow breaks a limit

    @classmethod
    def empty(cls, n: int) -> IntervalSeries:
        def nan() -> FloatArray:
            return np.full(n, np.nan)

        def zeros() -> Int64Array:
            return np.zeros(n, dtype=np.int64)

        return cls(
            clearing_price_micro_per_kwh=nan(),
            demand_wh=zeros(),
            pv_generated_wh=zeros(),
            local_traded_wh=zeros(),
            supplier_import_wh=zeros(),
            supplier_export_wh=zeros(),
            curtailed_wh=zeros(),
            trades=zeros(),
            trades_changed=zeros(),
            max_line_loading_percent=nan(),
            max_trafo_loading_percent=nan(),
            min_vm_pu=nan(),
            max_vm_pu=nan(),
            ext_grid_p_mw=nan(),
            unconstrained_max_trafo_loading_percent=nan(),
            unconstrained_over_limits=np.zeros(n, dtype=np.bool_),
        )


@dataclass(frozen=True, eq=False)
class ScenarioResult:
    scenario: Scenario
    kpis: Kpis
    summary: dict[str, Any]
    series: IntervalSeries
    household_names: tuple[str, ...]
    baseline_bill_micro: Int64Array
    market_bill_micro: Int64Array
    soc_wh: Int64Array
    battery_capacity_wh: Int64Array
    json_path: Path | None = None
    html_path: Path | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
