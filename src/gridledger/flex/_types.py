"""The flexibility vocabulary shared by the DSO side, the households and the OpenADR edge.

A *request* is what the distribution grid operator asks for in one grid zone (a transformer or
a feeder): ``direction`` "down" means less net import (or more export curtailment avoided: the
zone needs less load / more absorption), "up" means more net import (soak up a midday export
peak). Power is in W and prices in micro-units per kWh, like everything else inside; kW and
EUR per kWh appear only at the edges (OpenADR payloads, reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class FlexRequest:
    """The DSO asks for ``power_w`` of flexibility in ``zone`` over ``intervals`` intervals."""

    request_id: str
    zone: str
    direction: Direction
    power_w: int
    start: int  # unix seconds, the first interval's start
    intervals: int
    price_micro_per_kwh: int


@dataclass(frozen=True)
class FlexOffer:
    """A household offers ``power_w`` in ``direction`` for one interval at a price.

    It is a signed order of its own kind (gridledger.flex.commitments).
    """

    participant: str
    zone: str
    direction: Direction
    power_w: int
    interval_start: int
    price_micro_per_kwh: int


@dataclass(frozen=True)
class FlexAward:
    """Cleared flexibility: the household delivers ``energy_wh`` against ``request_id``."""

    request_id: str
    participant: str
    zone: str
    direction: Direction
    interval_start: int
    energy_wh: int
    price_micro_per_kwh: int
