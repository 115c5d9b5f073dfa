"""Flexibility: the DSO's requests, households' offers, baselines and what is paid for delivery.

Pure domain code (no ledger, api or cli): :mod:`.forecast` (requests from the forecast power
flow), :mod:`.planning` (batteries and shiftable loads around events, as arrays),
:mod:`.market` (merit order, pay-as-cleared), :mod:`.baseline` (delivered flexibility) and
:mod:`.commitments` (signed offers and the Merkle leaves of offers and awards).
"""

from gridledger.flex._types import Direction, FlexAward, FlexOffer, FlexRequest
from gridledger.flex.baseline import delivered_flexibility_wh, high_x_of_y_wh
from gridledger.flex.forecast import Limits, ZoneForecast, requests_from_forecast
from gridledger.flex.market import clear_flex

__all__ = [
    "Direction",
    "FlexAward",
    "FlexOffer",
    "FlexRequest",
    "Limits",
    "ZoneForecast",
    "clear_flex",
    "delivered_flexibility_wh",
    "high_x_of_y_wh",
    "requests_from_forecast",
]
