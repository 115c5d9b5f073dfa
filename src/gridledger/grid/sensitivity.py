"""Linear sensitivities of branch flows and voltages to bus injections, from the AC power flow.

For a grid-aware clearing the market needs to know what one more MW injected at a bus does to
every line, transformer and bus voltage. We measure it on the real (AC, pandapower) model by
finite differences around an operating point: inject ``delta_mw`` at one bus, rerun the flow,
and divide the change by ``delta_mw``. This is the linearised AC model (a PTDF for active
power plus voltage sensitivities), valid near the operating point; LV feeders are mildly
non-linear, so the grid-aware clearing confirms its result with a full AC flow afterwards.

Costs one power flow per bus, once per scenario; nothing here runs per interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridledger.errors import ValidationError
from gridledger.grid.powerflow import (
    CommunityGrid,
    FloatArray,
    GridLimits,
    OperatingPoint,
    operating_point,
    run_slot_power_flow,
)

DEFAULT_DELTA_MW = 0.001  # 1 kW: big enough to beat solver tolerance, small enough to be linear
_SQRT3 = float(np.sqrt(3.0))


@dataclass(frozen=True, eq=False)
class GridSensitivities:
    """d(observable)/d(injection at bus) in per-MW units; columns follow ``buses``.

    Injection is generation convention: +1 MW at a bus means the bus exports 1 MW more.
    ``line_p_cap_mw`` / ``trafo_p_cap_mw`` are the active-power flows at 100 % loading at
    nominal voltage (the clearing scales them by the limit and the voltage it sees).
    """

    buses: tuple[int, ...]
    line_p_per_mw: FloatArray  # (n_lines, n_buses)
    trafo_p_per_mw: FloatArray  # (n_trafos, n_buses)
    vm_pu_per_mw: FloatArray  # (n_all_buses, n_buses)
    line_p_cap_mw: FloatArray  # (n_lines,)
    trafo_p_cap_mw: FloatArray  # (n_trafos,)
    line_from_bus_position: tuple[int, ...]  # row of net.bus of each line's from bus
    trafo_lv_bus_position: tuple[int, ...]

    def column_of_bus(self, bus: int) -> int:
        try:
            return self.buses.index(bus)
        except ValueError:
            raise ValidationError("bus", f"bus {bus} has no sensitivity column") from None


def compute_sensitivities(
    grid: CommunityGrid,
    buses: Sequence[int],
    base_slot_p_mw: FloatArray | None = None,
    delta_mw: float = DEFAULT_DELTA_MW,
) -> GridSensitivities:
    """Finite-difference sensitivities at ``base_slot_p_mw`` (default: nobody consumes).

    ``base_slot_p_mw`` holds each slot's consumption (one value per ``grid.buses``).
    """
    if delta_mw <= 0:
        raise ValidationError("delta_mw", f"must be positive, got {delta_mw}")
    wanted = tuple(dict.fromkeys(int(b) for b in buses))
    base = (
        np.zeros(len(grid.buses), dtype=np.float64)
        if base_slot_p_mw is None
        else np.asarray(base_slot_p_mw, dtype=np.float64)
    )
    reference = _flow_state(grid, base)
    columns = []
    for bus in wanted:
        shifted = base.copy()
        shifted[grid.position_of_bus(bus)] -= delta_mw  # less consumption = more injection
        columns.append(_difference(_flow_state(grid, shifted), reference, delta_mw))
    _flow_state(grid, base)  # leave the net at its reference state for warm starts
    net = grid.net
    bus_position = {int(b): row for row, b in enumerate(net.bus.index)}
    line_cap = (
        _SQRT3
        * net.bus.vn_kv.loc[net.line.from_bus].to_numpy(dtype=np.float64)
        * net.line.max_i_ka.to_numpy(dtype=np.float64)
        * net.line.df.to_numpy(dtype=np.float64)
        * net.line.parallel.to_numpy(dtype=np.float64)
    )
    trafo_cap = net.trafo.sn_mva.to_numpy(dtype=np.float64) * net.trafo.parallel.to_numpy(
        dtype=np.float64
    )
    return GridSensitivities(
        buses=wanted,
        line_p_per_mw=_stack([c.line_p_mw for c in columns], len(net.line)),
        trafo_p_per_mw=_stack([c.trafo_p_mw for c in columns], len(net.trafo)),
        vm_pu_per_mw=_stack([c.vm_pu for c in columns], len(net.bus)),
        line_p_cap_mw=line_cap,
        trafo_p_cap_mw=trafo_cap,
        line_from_bus_position=tuple(bus_position[int(b)] for b in net.line.from_bus),
        trafo_lv_bus_position=tuple(bus_position[int(b)] for b in net.trafo.lv_bus),
    )


def _flow_state(grid: CommunityGrid, slot_p_mw: FloatArray) -> OperatingPoint:
    result = run_slot_power_flow(grid, slot_p_mw)
    if not result.converged:
        raise ValidationError("base_slot_p_mw", "the power flow does not converge there")
    return operating_point(grid)


def _difference(shifted: OperatingPoint, reference: OperatingPoint, delta: float) -> OperatingPoint:
    return OperatingPoint(
        line_p_mw=(shifted.line_p_mw - reference.line_p_mw) / delta,
        trafo_p_mw=(shifted.trafo_p_mw - reference.trafo_p_mw) / delta,
        vm_pu=(shifted.vm_pu - reference.vm_pu) / delta,
        line_loading_percent=shifted.line_loading_percent - reference.line_loading_percent,
        trafo_loading_percent=shifted.trafo_loading_percent - reference.trafo_loading_percent,
    )


def _stack(columns: list[FloatArray], n_rows: int) -> FloatArray:
    if not columns:
        return np.zeros((n_rows, 0), dtype=np.float64)
    return np.ascontiguousarray(np.stack(columns, axis=1))


def _calibrated(
    nominal_mw: FloatArray, p_mw: FloatArray, loading_percent: FloatArray, limit_percent: float
) -> FloatArray:
    """Active power at ``limit_percent`` loading.

    Where a branch is visibly loaded, scale its flow at the operating point: that carries the
    point's voltage and reactive power into the limit (current grows with P at fixed V and Q).
    Elsewhere use the nominal rating.
    """
    loaded = (loading_percent > 1.0) & (np.abs(p_mw) > 1e-9)
    scaled = np.abs(p_mw) * limit_percent / np.where(loaded, loading_percent, 1.0)
    nominal = nominal_mw * limit_percent / 100.0
    limit: FloatArray = np.where(loaded, scaled, nominal)
    return limit


def line_limit_mw(
    sensitivities: GridSensitivities, point: OperatingPoint, limits: GridLimits
) -> FloatArray:
    """Active power each line may carry at its loading limit, around ``point``."""
    vm = point.vm_pu[list(sensitivities.line_from_bus_position)]
    return _calibrated(
        sensitivities.line_p_cap_mw * vm,
        point.line_p_mw,
        point.line_loading_percent,
        limits.max_line_loading_percent,
    )


def trafo_limit_mw(
    sensitivities: GridSensitivities, point: OperatingPoint, limits: GridLimits
) -> FloatArray:
    """Active power each transformer may carry at its loading limit, around ``point``."""
    vm = point.vm_pu[list(sensitivities.trafo_lv_bus_position)]
    return _calibrated(
        sensitivities.trafo_p_cap_mw * vm,
        point.trafo_p_mw,
        point.trafo_loading_percent,
        limits.max_trafo_loading_percent,
    )
