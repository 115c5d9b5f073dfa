"""Measuring delivered flexibility against a baseline (see docs/flexibility.md).

**Baseline: the signed day-ahead schedule.** Before the day, each participating household
commits its planned net import per interval *without* any event (its self-consumption plan:
PV, batteries and shiftable loads as it would run them anyway); the operator commits it with
the award. Delivered flexibility per interval and household is then

* "down" (less net import): ``baseline - metered``;
* "up" (more net import, soaking up an export peak): ``metered - baseline - curtailed``,
  where ``curtailed`` is the export the DSO's own grid-aware clearing withheld from that
  household in that interval (it raises the metered net import, but it is the DSO's doing,
  not the household's flexibility);

each clipped to ``[0, awarded]``: nothing is paid for doing the opposite, nor for more than
was awarded. A household that does not respond delivers 0 and is paid 0.

"High 5 of 10" (the mean of the 5 highest of the last 10 comparable days) suits loads with
a history; a household with a battery changes its own pattern day to day, so a schedule it
signed ahead is the fairer and checkable baseline here. :func:`high_x_of_y_wh` is provided for
loads where a history exists.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError
from gridledger.flex._types import Direction

Int64Array = npt.NDArray[np.int64]


def delivered_flexibility_wh(
    direction: Direction,
    baseline_net_import_wh: int,
    metered_net_import_wh: int,
    awarded_wh: int,
    curtailed_wh: int = 0,
) -> int:
    """Energy delivered against one award (the rule in the module docstring)."""
    if direction == "down":
        change = baseline_net_import_wh - metered_net_import_wh
    elif direction == "up":
        change = metered_net_import_wh - baseline_net_import_wh - curtailed_wh
    else:
        raise ValidationError("direction", f"must be 'up' or 'down', got {direction!r}")
    if awarded_wh < 0 or curtailed_wh < 0:
        raise ValidationError("awarded_wh", "awarded and curtailed energy must not be negative")
    return max(0, min(change, awarded_wh))


def delivered_up_wh(
    baseline_net_import_wh: Int64Array,
    metered_net_import_wh: Int64Array,
    awarded_wh: Int64Array,
    curtailed_wh: Int64Array,
) -> Int64Array:
    """:func:`delivered_flexibility_wh` for "up" over arrays (households x intervals)."""
    change = metered_net_import_wh - baseline_net_import_wh - curtailed_wh
    delivered: Int64Array = np.clip(change, 0, awarded_wh)
    return delivered


def high_x_of_y_wh(history_wh: Int64Array, x: int = 5, y: int = 10) -> Int64Array:
    """ "High x of y": per interval of the day, the mean of the x highest of the last y days.

    ``history_wh`` is (days, intervals of a day), oldest first; the result is floored to Wh.
    """
    days = np.asarray(history_wh, dtype=np.int64)
    if days.ndim != 2 or days.shape[0] < y:
        raise ValidationError("history_wh", f"need at least {y} days of history (days, intervals)")
    if not 0 < x <= y:
        raise ValidationError("x", f"need 0 < x <= y, got x={x}, y={y}")
    highest = np.sort(days[-y:], axis=0)[-x:]
    baseline: Int64Array = highest.sum(axis=0) // x
    return baseline
