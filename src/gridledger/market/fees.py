"""Grid fees: what a buyer of local energy pays the grid operator per kWh on top of the price.

A flat fee applies to every trade; an optional zone matrix adds ``matrix[buyer zone, seller
zone]`` when energy crosses feeders (a zero diagonal means no surcharge inside a feeder).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridledger.errors import ValidationError

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class GridFees:
    flat_micro_per_kwh: int = 0
    zone_matrix_micro_per_kwh: Int64Array | None = None

    @classmethod
    def build(
        cls, flat_micro_per_kwh: int = 0, zone_matrix_micro_per_kwh: npt.ArrayLike | None = None
    ) -> GridFees:
        if isinstance(flat_micro_per_kwh, bool) or not isinstance(flat_micro_per_kwh, int):
            raise ValidationError("grid_fee_micro_per_kwh", "must be an integer")
        if flat_micro_per_kwh < 0:
            raise ValidationError(
                "grid_fee_micro_per_kwh", f"must not be negative, got {flat_micro_per_kwh}"
            )
        if zone_matrix_micro_per_kwh is None:
            return cls(flat_micro_per_kwh, None)
        matrix = np.asarray(zone_matrix_micro_per_kwh)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise ValidationError(
                "zone_fee_micro_per_kwh", f"must be a square matrix, got shape {matrix.shape}"
            )
        if not np.issubdtype(matrix.dtype, np.integer) or bool((matrix < 0).any()):
            raise ValidationError("zone_fee_micro_per_kwh", "must hold non-negative integers")
        return cls(flat_micro_per_kwh, np.ascontiguousarray(matrix, dtype=np.int64))

    @property
    def n_zones(self) -> int | None:
        m = self.zone_matrix_micro_per_kwh
        return None if m is None else int(m.shape[0])

    def check_zones(self, zone: Int64Array) -> None:
        n = self.n_zones
        if n is not None and zone.size and int(zone.max()) >= n:
            raise ValidationError(
                "zone", f"zone {int(zone.max())} is outside the {n}x{n} fee matrix"
            )

    def pair_fee(self, buyer_zone: Int64Array, seller_zone: Int64Array) -> Int64Array:
        """Fee per kWh for each (buyer zone, seller zone) pair."""
        m = self.zone_matrix_micro_per_kwh
        if m is None:
            return np.full(buyer_zone.shape, self.flat_micro_per_kwh, dtype=np.int64)
        fee: Int64Array = m[buyer_zone, seller_zone] + self.flat_micro_per_kwh
        return fee

    def worst_fee(self, buyer_zone: Int64Array) -> Int64Array | int:
        """The highest fee a buyer in each zone could face: its bid is ranked net of this."""
        m = self.zone_matrix_micro_per_kwh
        if m is None:
            return self.flat_micro_per_kwh
        worst: Int64Array = m.max(axis=1)[buyer_zone] + self.flat_micro_per_kwh
        return worst
