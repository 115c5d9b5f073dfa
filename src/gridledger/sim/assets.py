"""Household assets of the simulated community: a home battery with a pure dispatch step.

Sign convention: a household's net energy is positive when it needs energy (load exceeds PV)
and negative when it has surplus. ``battery_flow_wh`` is seen from the household bus:
positive charges the battery (it absorbs energy), negative discharges it (it delivers energy),
so the net after the battery is ``net_wh_before_battery + battery_flow_wh``.

:class:`BatteryFleet` holds many batteries as arrays and dispatches them all at once, with the
same rule and rounding as :meth:`Battery.dispatch`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Battery:
    """A home battery run for self-consumption. Energy in whole Wh, power in W."""

    capacity_wh: int
    max_power_w: int
    round_trip_efficiency: float = 0.9
    soc_wh: int = 0

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0:
            raise ValidationError("capacity_wh", f"must be positive, got {self.capacity_wh}")
        if self.max_power_w <= 0:
            raise ValidationError("max_power_w", f"must be positive, got {self.max_power_w}")
        if not 0.0 < self.round_trip_efficiency <= 1.0:
            raise ValidationError(
                "round_trip_efficiency", f"must be in (0, 1], got {self.round_trip_efficiency}"
            )
        if not 0 <= self.soc_wh <= self.capacity_wh:
            raise ValidationError(
                "soc_wh", f"must be within 0..{self.capacity_wh}, got {self.soc_wh}"
            )

    @property
    def one_way_efficiency(self) -> float:
        return math.sqrt(self.round_trip_efficiency)

    def max_energy_wh(self, interval_length_s: int) -> int:
        """Energy the power limit allows through the inverter in one interval."""
        if interval_length_s <= 0:
            raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
        return self.max_power_w * interval_length_s // _SECONDS_PER_HOUR

    def dispatch(self, net_wh_before_battery: int, interval_length_s: int) -> tuple[int, Battery]:
        """Charge from surplus, discharge to cover deficit; return (battery_flow_wh, new state).

        Losses are split evenly: ``sqrt(round_trip_efficiency)`` on the way in and on the way
        out. Rounding always favours the state of charge staying in bounds (energy stored is
        floored, energy drawn is ceiled).
        """
        limit_wh = self.max_energy_wh(interval_length_s)
        net_wh = int(net_wh_before_battery)  # numpy scalars in, plain ints out
        if net_wh < 0:
            return self._charge(min(-net_wh, limit_wh))
        if net_wh > 0:
            return self._discharge(min(net_wh, limit_wh))
        return 0, self

    def _charge(self, offered_wh: int) -> tuple[int, Battery]:
        efficiency = self.one_way_efficiency
        headroom_wh = self.capacity_wh - self.soc_wh
        taken_wh = min(offered_wh, math.floor(headroom_wh / efficiency))
        stored_wh = min(math.floor(taken_wh * efficiency), headroom_wh)
        return taken_wh, dataclasses.replace(self, soc_wh=self.soc_wh + stored_wh)

    def _discharge(self, wanted_wh: int) -> tuple[int, Battery]:
        efficiency = self.one_way_efficiency
        delivered_wh = min(wanted_wh, math.floor(self.soc_wh * efficiency))
        drawn_wh = min(math.ceil(delivered_wh / efficiency), self.soc_wh)
        return -delivered_wh, dataclasses.replace(self, soc_wh=self.soc_wh - drawn_wh)


def dispatch_battery(
    battery: Battery, net_wh_before_battery: int, interval_length_s: int
) -> tuple[int, Battery]:
    """Function form of :meth:`Battery.dispatch`, for pipelines over many households."""
    return battery.dispatch(net_wh_before_battery, interval_length_s)


@dataclass(frozen=True, eq=False)
class BatteryFleet:
    """Many batteries as arrays (one row each), dispatched together with :meth:`dispatch`.

    ``owner`` is the household row of each battery; the other arrays follow :class:`Battery`.
    """

    owner: Int64Array
    capacity_wh: Int64Array
    max_power_w: Int64Array
    round_trip_efficiency: FloatArray
    soc_wh: Int64Array

    @classmethod
    def of(cls, batteries: Sequence[tuple[int, Battery]]) -> BatteryFleet:
        """A fleet from ``(owner row, battery)`` pairs."""
        return cls(
            np.array([o for o, _ in batteries], dtype=np.int64),
            np.array([b.capacity_wh for _, b in batteries], dtype=np.int64),
            np.array([b.max_power_w for _, b in batteries], dtype=np.int64),
            np.array([b.round_trip_efficiency for _, b in batteries], dtype=np.float64),
            np.array([b.soc_wh for _, b in batteries], dtype=np.int64),
        )

    def __len__(self) -> int:
        return int(self.owner.shape[0])

    def dispatch(
        self, net_wh_before_battery: Int64Array, interval_length_s: int
    ) -> tuple[Int64Array, Int64Array]:
        """Self-consumption dispatch over many intervals: (battery_flow_wh, soc_wh) per step.

        ``net_wh_before_battery`` is (batteries, intervals); the rule and its rounding are
        :meth:`Battery.dispatch`'s, applied to every battery at once, interval by interval.
        """
        need = np.asarray(net_wh_before_battery, dtype=np.int64)
        if need.shape[0] != len(self):
            raise ValidationError(
                "net_wh_before_battery", f"need one row per battery ({len(self)})"
            )
        if interval_length_s <= 0:
            raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
        limit = self.max_power_w * interval_length_s // _SECONDS_PER_HOUR
        efficiency = np.sqrt(self.round_trip_efficiency)
        capacity = self.capacity_wh
        soc = self.soc_wh.copy()
        flow = np.zeros_like(need)
        socs = np.zeros_like(need)
        for step in range(need.shape[1]):
            net = need[:, step]
            offered = np.minimum(-net, limit)
            taken = np.minimum(offered, np.floor((capacity - soc) / efficiency).astype(np.int64))
            stored = np.minimum(np.floor(taken * efficiency).astype(np.int64), capacity - soc)
            wanted = np.minimum(net, limit)
            delivered = np.minimum(wanted, np.floor(soc * efficiency).astype(np.int64))
            drawn = np.minimum(np.ceil(delivered / efficiency).astype(np.int64), soc)
            charging, discharging = net < 0, net > 0
            flow[:, step] = np.where(charging, taken, np.where(discharging, -delivered, 0))
            soc = soc + np.where(charging, stored, 0) - np.where(discharging, drawn, 0)
            socs[:, step] = soc
        return flow, socs
