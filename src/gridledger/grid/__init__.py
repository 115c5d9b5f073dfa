"""The physical grid under the market: placing the community, power flows, grid-aware clearing."""

from gridledger.grid.confirm import ConfirmedClearing, clear_and_confirm, schedule_slot_p_mw
from gridledger.grid.constrained import (
    GridAwareClearing,
    Margins,
    clear_grid_aware,
    clear_reduced,
    count_changed_pairs,
)
from gridledger.grid.pgm import BatchFlows
from gridledger.grid.powerflow import (
    ENGINES,
    CommunityGrid,
    FlowClock,
    GridLimits,
    OperatingPoint,
    PowerFlowResult,
    flow_at,
    operating_point,
    p_mw_by_bus,
    place_on_grid,
    run_batch_power_flow,
    run_power_flow,
    run_slot_power_flow,
    wh_to_mw,
)
from gridledger.grid.sensitivity import GridSensitivities, compute_sensitivities

__all__ = [
    "ENGINES",
    "BatchFlows",
    "CommunityGrid",
    "ConfirmedClearing",
    "FlowClock",
    "GridAwareClearing",
    "GridLimits",
    "GridSensitivities",
    "Margins",
    "OperatingPoint",
    "PowerFlowResult",
    "clear_and_confirm",
    "clear_grid_aware",
    "clear_reduced",
    "compute_sensitivities",
    "count_changed_pairs",
    "flow_at",
    "operating_point",
    "p_mw_by_bus",
    "place_on_grid",
    "run_batch_power_flow",
    "run_power_flow",
    "run_slot_power_flow",
    "schedule_slot_p_mw",
    "wh_to_mw",
]
