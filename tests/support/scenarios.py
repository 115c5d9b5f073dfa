"""Small scenario definitions the simulation, KPI and report tests share."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gridledger.sim.scenario import Scenario

SUNNY_JUNE_DAY = dt.date(2016, 6, 10)


def one_day(name: str, households: int, seed: int, **changes: Any) -> Scenario:
    """One sunny June day of ``households`` on the community feeder: the households alone (no
    background loads), truthful bids, half with PV, no batteries or flexible loads; ``changes``
    set any other field."""
    base = Scenario(
        name=name,
        households=households,
        seed=seed,
        pv_share=0.5,
        battery_share=0.0,
        flexible_share=0.0,
        background=False,
        strategy="truthful",
        start_date=SUNNY_JUNE_DAY,
        days=1,
    )
    return dataclasses.replace(base, **changes)
