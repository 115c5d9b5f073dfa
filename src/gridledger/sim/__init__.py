"""Simulated community: households on a real SimBench grid, their batteries and bidding."""

from gridledger.sim.assets import Battery, dispatch_battery
from gridledger.sim.community import Community, Household, build_community
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
    "Household",
    "OrderIntent",
    "Side",
    "TariffBand",
    "ZipTrader",
    "build_community",
    "dispatch_battery",
    "truthful",
    "zero_intelligence",
]
