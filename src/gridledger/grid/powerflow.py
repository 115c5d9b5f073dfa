"""AC power flow of the community on its real LV grid, one interval at a time or in a batch.

:func:`place_on_grid` prepares a private copy of the net once: the grid's own loads and sgens
are switched off and every bus gets one "slot" load whose ``p_mw`` carries that bus's net
consumption (negative when the bus exports). :func:`run_power_flow` only rewrites those slot
powers and reruns Newton-Raphson, so no interval rebuilds the net. Loads and sgens that no
household replays can stay on the grid as background, replayed from their real profiles.

Two engines solve the same prepared net: power-grid-model (the default: the net is converted
once, see :mod:`gridledger.grid.pgm`) and pandapower (``engine="pandapower"``, warm-started
Newton-Raphson on the net itself). :func:`run_batch_power_flow` solves many intervals whose
powers are known in advance (no market feedback) in one call.

Slots are load-convention (positive consumes) and purely active: households and PV run at
unity power factor here, which keeps the model linear enough for a later grid-aware clearing
to reason about per-bus sensitivities.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandapower as pp

from gridledger.errors import ValidationError
from gridledger.grid.pgm import BatchFlows, FlowState, PgmFlows
from gridledger.iotools.simbench import PROFILE_INTERVAL_S, GridEnergy

FloatArray = npt.NDArray[np.float64]
_SLOT_NAME = "gridledger slot bus {bus}"
_SECONDS_PER_HOUR = 3600
_WH_PER_MWH = 1_000_000
_RECYCLE = {"trafo": False, "gen": False, "bus_pq": True}
POWER_GRID_MODEL = "power-grid-model"
PANDAPOWER = "pandapower"
ENGINES = (POWER_GRID_MODEL, PANDAPOWER)


class PlacedHousehold(Protocol):
    """What placing needs from a household (``gridledger.sim.Household`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def bus(self) -> int: ...
    @property
    def load_index(self) -> int: ...
    @property
    def pv_sgen_index(self) -> int | None: ...


@dataclass(eq=False)
class FlowClock:
    """Wall time spent solving power flows, and how many (for benchmarks' breakdowns)."""

    seconds: float = 0.0
    flows: int = 0

    def add(self, began: float, flows: int) -> None:
        self.seconds += time.perf_counter() - began
        self.flows += flows


@dataclass(frozen=True, eq=False)
class CommunityGrid:
    """A prepared net: one slot load per bus, plus optional background power per interval.

    ``background_p_mw`` has one row per entry of ``buses`` and one column per window interval.
    The net is private to this object and mutated only by :func:`run_power_flow`; ``pgm`` is
    its power-grid-model copy when that engine solves the flows.
    """

    net: pp.pandapowerNet
    buses: tuple[int, ...]
    slot_load_index: tuple[int, ...]
    bus_by_household: Mapping[str, int]
    background_p_mw: FloatArray | None
    pgm: PgmFlows | None = None
    clock: FlowClock = field(default_factory=FlowClock)

    @property
    def engine(self) -> str:
        return POWER_GRID_MODEL if self.pgm is not None else PANDAPOWER

    def position_of_bus(self, bus: int) -> int:
        try:
            return self.buses.index(bus)
        except ValueError:
            raise ValidationError("bus", f"bus {bus} is not in this grid") from None


@dataclass(frozen=True)
class GridLimits:
    """Operating limits: thermal 100 % loading, voltage band of EN 50160 (±10 %)."""

    max_line_loading_percent: float = 100.0
    max_trafo_loading_percent: float = 100.0
    min_vm_pu: float = 0.90
    max_vm_pu: float = 1.10


@dataclass(frozen=True)
class PowerFlowResult:
    """Extremes of one interval's power flow; ``ext_grid_p_mw`` > 0 imports from upstream."""

    converged: bool
    max_line_loading_percent: float
    max_trafo_loading_percent: float
    min_vm_pu: float
    max_vm_pu: float
    ext_grid_p_mw: float

    def violations(self, limits: GridLimits = GridLimits()) -> tuple[str, ...]:
        """Names of the limits this interval breaks (non-convergence breaks all of them)."""
        if not self.converged:
            return ("converged",)
        broken = []
        if self.max_line_loading_percent > limits.max_line_loading_percent:
            broken.append("max_line_loading_percent")
        if self.max_trafo_loading_percent > limits.max_trafo_loading_percent:
            broken.append("max_trafo_loading_percent")
        if self.min_vm_pu < limits.min_vm_pu:
            broken.append("min_vm_pu")
        if self.max_vm_pu > limits.max_vm_pu:
            broken.append("max_vm_pu")
        return tuple(broken)


def place_on_grid(
    net: pp.pandapowerNet,
    households: Sequence[PlacedHousehold],
    background: GridEnergy | None = None,
    engine: str = POWER_GRID_MODEL,
) -> CommunityGrid:
    """Prepare a copy of ``net`` for the community's interval power flows.

    With ``background`` (the grid's energy over the same window), loads and sgens that no
    household replays keep their real profiles; without it the community is alone on the grid.
    ``engine`` is ``"power-grid-model"`` or ``"pandapower"``.
    """
    if engine not in ENGINES:
        raise ValidationError("engine", f"must be one of {list(ENGINES)}, got {engine!r}")
    prepared = copy.deepcopy(net)
    buses = tuple(int(b) for b in prepared.bus.index)
    for household in households:
        if household.bus not in prepared.bus.index:
            raise ValidationError("bus", f"{household.name}: bus {household.bus} not in the grid")
    for table in ("load", "sgen", "storage"):
        prepared[table]["in_service"] = False
    created = pp.create_loads(
        prepared,
        list(buses),
        p_mw=0.0,
        q_mvar=0.0,
        name=[_SLOT_NAME.format(bus=bus) for bus in buses],
    )
    slots = tuple(int(i) for i in created)
    return CommunityGrid(
        net=prepared,
        buses=buses,
        slot_load_index=slots,
        bus_by_household={h.name: int(h.bus) for h in households},
        background_p_mw=_background(net, buses, households, background),
        pgm=PgmFlows(prepared, slots) if engine == POWER_GRID_MODEL else None,
    )


def _background(
    net: pp.pandapowerNet,
    buses: tuple[int, ...],
    households: Sequence[PlacedHousehold],
    energy: GridEnergy | None,
) -> FloatArray | None:
    if energy is None:
        return None
    position = {bus: row for row, bus in enumerate(buses)}
    replayed_loads = {h.load_index for h in households}
    replayed_sgens = {h.pv_sgen_index for h in households if h.pv_sgen_index is not None}
    background_wh = np.zeros((len(buses), energy.n_intervals), dtype=np.int64)
    for row, load in enumerate(energy.load_index):
        if load not in replayed_loads:
            background_wh[position[int(net.load.at[load, "bus"])]] += energy.load_wh[row]
    for row, sgen in enumerate(energy.sgen_index):
        if sgen not in replayed_sgens:
            background_wh[position[int(net.sgen.at[sgen, "bus"])]] -= energy.sgen_wh[row]
    return wh_to_mw(background_wh, PROFILE_INTERVAL_S)


def wh_to_mw(energy_wh: npt.ArrayLike, interval_length_s: int) -> FloatArray:
    """Energy per interval (Wh) to the mean power over it (MW)."""
    if interval_length_s <= 0:
        raise ValidationError("interval_length_s", f"must be positive, got {interval_length_s}")
    hours = interval_length_s / _SECONDS_PER_HOUR
    return np.asarray(energy_wh, dtype=np.float64) / hours / _WH_PER_MWH


def p_mw_by_bus(
    grid: CommunityGrid, net_wh_by_household: Mapping[str, int], interval_length_s: int
) -> dict[int, float]:
    """Sum the households' net energy (positive consumes) per bus, as mean MW."""
    totals_wh: dict[int, int] = {}
    for name, energy_wh in net_wh_by_household.items():
        if name not in grid.bus_by_household:
            raise ValidationError("net_wh_by_household", f"unknown household {name!r}")
        bus = grid.bus_by_household[name]
        totals_wh[bus] = totals_wh.get(bus, 0) + int(energy_wh)
    return {bus: float(wh_to_mw(wh, interval_length_s)) for bus, wh in totals_wh.items()}


def run_power_flow(
    grid: CommunityGrid, p_mw_by_bus: Mapping[int, float], interval: int | None = None
) -> PowerFlowResult:
    """Power flow with ``p_mw_by_bus`` (plus background of window ``interval``, if any)."""
    return run_slot_power_flow(grid, _slot_powers(grid, p_mw_by_bus, interval))


def run_slot_power_flow(grid: CommunityGrid, slot_p_mw: FloatArray) -> PowerFlowResult:
    """Power flow with every slot's consumption given (one value per ``grid.buses``, MW).

    The array form of :func:`run_power_flow` for loops over many intervals; background power
    is *not* added here.
    """
    powers = np.asarray(slot_p_mw, dtype=np.float64)
    if powers.shape != (len(grid.buses),) or not bool(np.isfinite(powers).all()):
        raise ValidationError("slot_p_mw", f"need {len(grid.buses)} finite values per bus")
    began = time.perf_counter()
    try:
        if grid.pgm is not None:
            state = grid.pgm.solve(powers)
            return _failed() if state is None else _extremes_of(state)
        grid.net.load.loc[list(grid.slot_load_index), "p_mw"] = powers
        if not solve(grid.net):
            return _failed()
        return _extremes_of(_state_of_net(grid.net))
    finally:
        grid.clock.add(began, 1)


def run_batch_power_flow(grid: CommunityGrid, slot_p_mw: FloatArray) -> BatchFlows:
    """Power flows of many intervals known in advance; ``slot_p_mw`` is (buses, intervals).

    power-grid-model solves them in one batch call; pandapower one after the other.
    """
    powers = np.asarray(slot_p_mw, dtype=np.float64)
    if powers.ndim != 2 or powers.shape[0] != len(grid.buses):
        raise ValidationError("slot_p_mw", f"need shape ({len(grid.buses)}, intervals)")
    if not bool(np.isfinite(powers).all()):
        raise ValidationError("slot_p_mw", "every power must be finite")
    if grid.pgm is not None:
        began = time.perf_counter()
        batch = grid.pgm.solve_batch(powers)
        grid.clock.add(began, powers.shape[1])
        return batch
    flows = BatchFlows.empty(powers.shape[1])
    for step in range(powers.shape[1]):
        flow = run_slot_power_flow(grid, powers[:, step])
        flows.converged[step] = flow.converged
        flows.max_line_loading_percent[step] = flow.max_line_loading_percent
        flows.max_trafo_loading_percent[step] = flow.max_trafo_loading_percent
        flows.min_vm_pu[step] = flow.min_vm_pu
        flows.max_vm_pu[step] = flow.max_vm_pu
        flows.ext_grid_p_mw[step] = flow.ext_grid_p_mw
    return flows


def flow_at(flows: BatchFlows, step: int) -> PowerFlowResult:
    """Interval ``step`` of a batch as one :class:`PowerFlowResult`."""
    return PowerFlowResult(
        converged=bool(flows.converged[step]),
        max_line_loading_percent=float(flows.max_line_loading_percent[step]),
        max_trafo_loading_percent=float(flows.max_trafo_loading_percent[step]),
        min_vm_pu=float(flows.min_vm_pu[step]),
        max_vm_pu=float(flows.max_vm_pu[step]),
        ext_grid_p_mw=float(flows.ext_grid_p_mw[step]),
    )


def solve(net: pp.pandapowerNet) -> bool:
    """Newton-Raphson on a prepared net; False when it does not converge.

    The time-series fast path: once a flow has converged, the next one starts from its results
    and reuses pandapower's internal matrices (``recycle``), updating only bus P/Q, which is all
    an interval changes. After a failure the next flow starts afresh (``init="auto"``) and
    rebuilds everything.
    """
    warm = bool(net.get("converged", False)) and "_ppc" in net and net._ppc is not None
    try:
        if warm:
            pp.runpp(net, init="results", numba=True, recycle=_RECYCLE)
        else:
            pp.runpp(net, init="auto", numba=True)
    except pp.LoadflowNotConverged:
        net["converged"] = False
        return False
    return True


@dataclass(frozen=True, eq=False)
class OperatingPoint:
    """Signed branch flows and voltages of one converged flow: what sensitivities shift.

    ``line_p_mw`` is the active power entering each line at its from bus, ``trafo_p_mw`` at its
    high-voltage side (positive: the feeder imports), ``vm_pu`` follows ``net.bus.index``.
    """

    line_p_mw: FloatArray
    trafo_p_mw: FloatArray
    vm_pu: FloatArray
    line_loading_percent: FloatArray
    trafo_loading_percent: FloatArray


def operating_point(grid: CommunityGrid) -> OperatingPoint:
    """The state of the grid's last converged flow (either engine)."""
    if grid.pgm is not None:
        state = grid.pgm.last
        if state is None:
            raise ValidationError("grid", "the last power flow did not converge")
    else:
        state = _state_of_net(grid.net)
    return OperatingPoint(
        line_p_mw=state.line_p_mw,
        trafo_p_mw=state.trafo_p_mw,
        vm_pu=state.vm_pu,
        line_loading_percent=state.line_loading_percent,
        trafo_loading_percent=state.trafo_loading_percent,
    )


def _state_of_net(net: pp.pandapowerNet) -> FlowState:
    return FlowState(
        vm_pu=net.res_bus.vm_pu.to_numpy(dtype=np.float64, copy=True),
        line_p_mw=net.res_line.p_from_mw.to_numpy(dtype=np.float64, copy=True),
        trafo_p_mw=net.res_trafo.p_hv_mw.to_numpy(dtype=np.float64, copy=True),
        line_loading_percent=net.res_line.loading_percent.to_numpy(dtype=np.float64, copy=True),
        trafo_loading_percent=net.res_trafo.loading_percent.to_numpy(dtype=np.float64, copy=True),
        ext_grid_p_mw=float(net.res_ext_grid.p_mw.sum()),
    )


def _slot_powers(
    grid: CommunityGrid, p_mw_by_bus: Mapping[int, float], interval: int | None
) -> FloatArray:
    powers = np.zeros(len(grid.buses), dtype=np.float64)
    if grid.background_p_mw is not None:
        if interval is None or not 0 <= interval < grid.background_p_mw.shape[1]:
            raise ValidationError(
                "interval", f"need a window interval in 0..{grid.background_p_mw.shape[1] - 1}"
            )
        powers += grid.background_p_mw[:, interval]
    for bus, p_mw in p_mw_by_bus.items():
        if not math.isfinite(p_mw):
            raise ValidationError("p_mw_by_bus", f"bus {bus}: power must be finite, got {p_mw}")
        powers[grid.position_of_bus(int(bus))] += p_mw
    return powers


def _failed() -> PowerFlowResult:
    nan = math.nan
    return PowerFlowResult(False, nan, nan, nan, nan, nan)


def _extremes_of(state: FlowState) -> PowerFlowResult:
    def peak(values: FloatArray) -> float:
        return float(values.max()) if len(values) else 0.0

    return PowerFlowResult(
        converged=True,
        max_line_loading_percent=peak(state.line_loading_percent),
        max_trafo_loading_percent=peak(state.trafo_loading_percent),
        min_vm_pu=float(state.vm_pu.min()),
        max_vm_pu=float(state.vm_pu.max()),
        ext_grid_p_mw=state.ext_grid_p_mw,
    )
