"""The physical grid under the market: placing the community and checking power flows."""

from gridledger.grid.powerflow import (
    CommunityGrid,
    GridLimits,
    PowerFlowResult,
    p_mw_by_bus,
    place_on_grid,
    run_power_flow,
    wh_to_mw,
)

__all__ = [
    "CommunityGrid",
    "GridLimits",
    "PowerFlowResult",
    "p_mw_by_bus",
    "place_on_grid",
    "run_power_flow",
    "wh_to_mw",
]
