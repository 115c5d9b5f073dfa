"""Simulated community: households on a real SimBench grid, their assets, bidding and scenarios."""

from gridledger.sim.assets import Battery, dispatch_battery
from gridledger.sim.community import Community, Household, build_community
from gridledger.sim.flexible import ShiftableLoad, schedule_days, schedule_shiftable
from gridledger.sim.kpis import EnergyTotals, Kpis, compute_kpis
from gridledger.sim.pv import pvlib_clear_sky_per_unit
from gridledger.sim.runner import IntervalRecorder, ScenarioResult, run_scenario
from gridledger.sim.scenario import Scenario, load_scenario
from gridledger.sim.strategies import (
    OrderIntent,
    Side,
    TariffBand,
    ZipTrader,
    truthful,
    zero_intelligence,
)

__all__ = [
    "Battery",
    "Community",
    "EnergyTotals",
    "Household",
    "IntervalRecorder",
    "Kpis",
    "OrderIntent",
    "Scenario",
    "ScenarioResult",
    "ShiftableLoad",
    "Side",
    "TariffBand",
    "ZipTrader",
    "build_community",
    "compute_kpis",
    "dispatch_battery",
    "load_scenario",
    "pvlib_clear_sky_per_unit",
    "run_scenario",
    "schedule_days",
    "schedule_shiftable",
    "truthful",
    "zero_intelligence",
]
