"""The auditor's detector: the community operator's classifier and the grid operator's feeder
balance, each covering what the other cannot (pure).

A window is flagged when the balance names the meter (a scaled or under-reported profile), or
when the classifier flags it and the feeder does not vouch for it. The feeder vouches for a meter
when its residual was fully explained without that meter and a misreport of ``min_deviation``
of the meter's energy would have been visible (``vouch_t``): a level change the classifier sees
there is the household's own, not a lie. Shape attacks (replay, swap) leave a residual no
profile explains, so the feeder vouches for no one and the classifier decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.iotools.simbench import Int64Array
from gridledger.security.balance import BalanceDetector
from gridledger.security.meter_detector import MeterDetector

AUDITOR_REVISION = 1


@dataclass(frozen=True)
class AuditorDetector:
    classifier: MeterDetector
    balance: BalanceDetector

    @property
    def version(self) -> str:
        return f"auditor/{AUDITOR_REVISION}[{self.classifier.version},{self.balance.version}]"

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def flags(self, reported_wh: Int64Array, feeder_wh: Int64Array) -> npt.NDArray[np.bool_]:
        named = self.balance.flags(reported_wh, feeder_wh)
        classified = self.classifier.flags(reported_wh, feeder_wh)
        vouched = self.balance.vouches(reported_wh, feeder_wh)
        flagged: npt.NDArray[np.bool_] = named | (classified & ~vouched)
        return flagged
