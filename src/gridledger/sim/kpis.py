"""Key performance indicators of a community run: pure arithmetic over the run's totals.

Definitions (energy in Wh over the whole run, all households):

* ``self_sufficiency`` = 1 - (energy bought from the grid supplier) / demand. Demand is every
  household's consumption, flexible loads included; what PV, batteries and neighbours cover
  is not bought from the supplier.
* ``self_consumption`` = 1 - (PV energy sold to the supplier + PV curtailed) / PV generated:
  the share of PV used inside the community (at home, in batteries or by neighbours).
* ``local_share_of_demand`` = energy traded locally / energy households needed from outside
  their own home (their buy orders): how much of the residual demand neighbours supplied.
* ``community_savings_micro`` = sum of bills without a market (import tariff for every Wh
  imported, feed-in tariff for every Wh exported) - sum of bills with it (local trades with
  their grid fees, the rest with the supplier). Positive: the market saved money.
* ``peak_import_kw`` = the highest transformer import (mean power of one interval) seen by
  the AC power flow; ``minutes_outside_voltage_band`` counts intervals whose lowest or highest
  bus voltage leaves the band, times the interval length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EnergyTotals:
    """Whole-run energy of the community, in Wh."""

    demand_wh: int
    pv_generated_wh: int
    buy_orders_wh: int  # households' needs after their own PV and battery
    local_traded_wh: int
    supplier_import_wh: int
    supplier_export_wh: int
    curtailed_wh: int


@dataclass(frozen=True)
class Kpis:
    self_sufficiency: float
    self_consumption: float
    local_share_of_demand: float
    community_savings_micro: int
    baseline_cost_micro: int
    market_cost_micro: int
    peak_import_kw: float
    max_line_loading_percent: float
    max_trafo_loading_percent: float
    minutes_outside_voltage_band: int
    curtailed_wh: int
    gas_used: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def compute_kpis(
    energy: EnergyTotals,
    baseline_cost_micro: int,
    market_cost_micro: int,
    ext_grid_p_mw: FloatArray,
    max_line_loading_percent: FloatArray,
    max_trafo_loading_percent: FloatArray,
    outside_band: npt.NDArray[np.bool_],
    interval_length_s: int,
    gas_used: int = 0,
) -> Kpis:
    """KPIs from the run's totals and its per-interval power-flow extremes (NaN: no flow)."""
    import_mw = np.nan_to_num(ext_grid_p_mw, nan=0.0)
    return Kpis(
        self_sufficiency=1.0 - _ratio(energy.supplier_import_wh, energy.demand_wh),
        self_consumption=1.0
        - _ratio(energy.supplier_export_wh + energy.curtailed_wh, energy.pv_generated_wh)
        if energy.pv_generated_wh
        else 0.0,
        local_share_of_demand=_ratio(energy.local_traded_wh, energy.buy_orders_wh),
        community_savings_micro=baseline_cost_micro - market_cost_micro,
        baseline_cost_micro=baseline_cost_micro,
        market_cost_micro=market_cost_micro,
        peak_import_kw=max(float(import_mw.max(initial=0.0)) * 1000.0, 0.0),
        max_line_loading_percent=float(np.nanmax(max_line_loading_percent, initial=0.0)),
        max_trafo_loading_percent=float(np.nanmax(max_trafo_loading_percent, initial=0.0)),
        minutes_outside_voltage_band=int(np.count_nonzero(outside_band)) * interval_length_s // 60,
        curtailed_wh=energy.curtailed_wh,
        gas_used=gas_used,
    )
