"""The community's power flows on power-grid-model (LF Energy; C++ core, Newton-Raphson).

:class:`PgmFlows` converts a prepared pandapower net once (power-grid-model-io's
``PandaPowerConverter``) into a :class:`power_grid_model.PowerGridModel`. One interval updates
only the slot loads (the update API) and solves; a batch solves every interval of a window in
one call, in chunks so the output stays small (only the attributes we read are returned).

SimBench leaves ``trafo.vector_group`` empty, which the converter refuses; the phase shift it
reads from there does not change a symmetric flow, so any group with the net's shift (SimBench
ships Dyn5) is right.

Transformer loading is computed as pandapower does (``trafo_loading="current"``): the larger
of the two sides' current times rated voltage, over the rating. power-grid-model's own
``loading`` is apparent power over the rating, which differs by the per-unit voltage (a few
percentage points on a loaded LV transformer).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandapower as pp
from power_grid_model import ComponentType, DatasetType, PowerGridModel, initialize_array
from power_grid_model._core.errors import PowerGridBatchError, PowerGridError

from gridledger.errors import ValidationError

FloatArray = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
SYSTEM_FREQUENCY_HZ = 50.0
ERROR_TOLERANCE_PU = 1e-10  # tighter than pandapower's default so the engines agree closely
MAX_ITERATIONS = 30
BATCH_CHUNK = 2048  # intervals per batch call: bounds the output arrays to a few MB
_W_PER_MW = 1_000_000
_SQRT3 = float(np.sqrt(3.0))
_DEFAULT_VECTOR_GROUP = "Dyn5"
_OUTPUT: Any = {  # columnar output of only what we read
    ComponentType.node: ["u_pu"],
    ComponentType.line: ["loading", "p_from"],
    ComponentType.transformer: ["i_from", "i_to", "p_from"],
    ComponentType.source: ["p"],
}


@dataclass(frozen=True, eq=False)
class FlowState:
    """One converged flow: voltages (``net.bus`` order), branch flows and loadings (percent)."""

    vm_pu: FloatArray
    line_p_mw: FloatArray
    trafo_p_mw: FloatArray
    line_loading_percent: FloatArray
    trafo_loading_percent: FloatArray
    ext_grid_p_mw: float


@dataclass(frozen=True, eq=False)
class BatchFlows:
    """Extremes of many flows, one entry per interval (NaN where a flow did not converge)."""

    converged: BoolArray
    max_line_loading_percent: FloatArray
    max_trafo_loading_percent: FloatArray
    min_vm_pu: FloatArray
    max_vm_pu: FloatArray
    ext_grid_p_mw: FloatArray

    @classmethod
    def empty(cls, n: int) -> BatchFlows:
        def nan() -> FloatArray:
            return np.full(n, np.nan)

        return cls(np.zeros(n, dtype=np.bool_), nan(), nan(), nan(), nan(), nan())


class PgmFlows:
    """A power-grid-model copy of a prepared net whose slot loads change per interval."""

    def __init__(self, net: pp.pandapowerNet, slot_load_index: tuple[int, ...]) -> None:
        from power_grid_model_io.converters import PandaPowerConverter

        source = copy.deepcopy(net)
        missing = source.trafo["vector_group"].isna()
        source.trafo.loc[missing, "vector_group"] = _DEFAULT_VECTOR_GROUP
        converter = PandaPowerConverter(system_frequency=SYSTEM_FREQUENCY_HZ)
        with warnings.catch_warnings():  # the converter warns about columns SimBench lacks
            warnings.simplefilter("ignore")
            data, _ = converter.load_input_data(source)
        self._model = PowerGridModel(data, system_frequency=SYSTEM_FREQUENCY_HZ)
        self._slot_ids = np.array(
            [converter.get_id("load", int(i), "const_power") for i in slot_load_index],
            dtype=np.int32,
        )
        self._node_rows = _rows(data, ComponentType.node, converter, "bus", net.bus.index)
        self._line_rows = _rows(data, ComponentType.line, converter, "line", net.line.index)
        self._trafo_rows = _rows(
            data, ComponentType.transformer, converter, "trafo", net.trafo.index
        )
        trafos = data[ComponentType.transformer]
        # VA per A on each side, over the rating, in percent: current-based loading
        self._trafo_hv_scale = _SQRT3 * trafos["u1"] / trafos["sn"] * 100.0
        self._trafo_lv_scale = _SQRT3 * trafos["u2"] / trafos["sn"] * 100.0
        self.last: FlowState | None = None

    def solve(self, slot_p_mw: FloatArray) -> FlowState | None:
        """One flow with each slot's consumption (MW); None when it does not converge."""
        update = initialize_array(DatasetType.update, ComponentType.sym_load, len(self._slot_ids))
        update["id"] = self._slot_ids
        update["p_specified"] = slot_p_mw * _W_PER_MW
        update["q_specified"] = 0.0
        self._model.update(update_data={ComponentType.sym_load: update})
        try:
            out = self._model.calculate_power_flow(
                error_tolerance=ERROR_TOLERANCE_PU,
                max_iterations=MAX_ITERATIONS,
                output_component_types=_OUTPUT,
            )
        except PowerGridError:
            self.last = None
            return None
        self.last = FlowState(
            vm_pu=np.asarray(out[ComponentType.node]["u_pu"], dtype=np.float64)[self._node_rows],
            line_p_mw=_mw(out[ComponentType.line]["p_from"])[self._line_rows],
            trafo_p_mw=_mw(out[ComponentType.transformer]["p_from"])[self._trafo_rows],
            line_loading_percent=_percent(out[ComponentType.line]["loading"])[self._line_rows],
            trafo_loading_percent=self._trafo_loading(out[ComponentType.transformer])[
                self._trafo_rows
            ],
            ext_grid_p_mw=float(_mw(out[ComponentType.source]["p"]).sum()),
        )
        return self.last

    def solve_batch(self, slot_p_mw: FloatArray, threading: int = 0) -> BatchFlows:
        """Every interval at once: ``slot_p_mw`` is (slots, intervals), as in the runner."""
        powers = np.asarray(slot_p_mw, dtype=np.float64)
        if powers.ndim != 2 or powers.shape[0] != len(self._slot_ids):
            raise ValidationError("slot_p_mw", f"need shape ({len(self._slot_ids)}, intervals)")
        flows = BatchFlows.empty(powers.shape[1])
        for start in range(0, powers.shape[1], BATCH_CHUNK):
            stop = min(start + BATCH_CHUNK, powers.shape[1])
            self._solve_chunk(powers[:, start:stop], flows, start, threading)
        return flows

    def _solve_chunk(self, powers: FloatArray, flows: BatchFlows, start: int, threads: int) -> None:
        steps = powers.shape[1]
        update = initialize_array(
            DatasetType.update, ComponentType.sym_load, (steps, len(self._slot_ids))
        )
        update["id"] = self._slot_ids[np.newaxis, :]
        update["p_specified"] = powers.T * _W_PER_MW
        update["q_specified"] = 0.0
        ok = np.ones(steps, dtype=np.bool_)
        out = self._model.calculate_power_flow(
            error_tolerance=ERROR_TOLERANCE_PU,
            max_iterations=MAX_ITERATIONS,
            update_data={ComponentType.sym_load: update},
            output_component_types=_OUTPUT,
            threading=threads,
            continue_on_batch_error=True,  # a diverged interval is NaN, the others still count
        )
        failed: PowerGridBatchError | None = self._model.batch_error
        if failed is not None:
            ok[np.asarray(failed.failed_scenarios, dtype=np.int64)] = False
        window = slice(start, start + steps)
        node_u = np.asarray(out[ComponentType.node]["u_pu"], dtype=np.float64)
        flows.converged[window] = ok
        flows.min_vm_pu[window] = np.where(ok, node_u.min(axis=1), np.nan)
        flows.max_vm_pu[window] = np.where(ok, node_u.max(axis=1), np.nan)
        flows.max_line_loading_percent[window] = np.where(
            ok, _peak(_percent(out[ComponentType.line]["loading"])), np.nan
        )
        flows.max_trafo_loading_percent[window] = np.where(
            ok, _peak(self._trafo_loading(out[ComponentType.transformer])), np.nan
        )
        flows.ext_grid_p_mw[window] = np.where(
            ok, _mw(out[ComponentType.source]["p"]).sum(axis=1), np.nan
        )

    def _trafo_loading(self, out: Any) -> FloatArray:
        hv = np.asarray(out["i_from"], dtype=np.float64) * self._trafo_hv_scale
        lv = np.asarray(out["i_to"], dtype=np.float64) * self._trafo_lv_scale
        loading: FloatArray = np.maximum(hv, lv)
        return loading


def _rows(
    data: dict[ComponentType, npt.NDArray[np.void]],
    component: ComponentType,
    converter: object,
    table: str,
    index: object,
) -> Int64Array:
    """Row of each pandapower element (in ``index`` order) in the converted input arrays."""
    get_id = converter.get_id  # type: ignore[attr-defined]
    ids = np.asarray(data[component]["id"], dtype=np.int64)
    row_of = {int(value): row for row, value in enumerate(ids.tolist())}
    return np.array([row_of[int(get_id(table, int(i)))] for i in index], dtype=np.int64)  # type: ignore[attr-defined]


def _mw(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64) / _W_PER_MW


def _percent(values: npt.ArrayLike) -> FloatArray:
    return np.asarray(values, dtype=np.float64) * 100.0


def _peak(values: FloatArray) -> FloatArray:
    if values.shape[-1] == 0:
        return np.zeros(values.shape[0], dtype=np.float64)
    peak: FloatArray = values.max(axis=-1)
    return peak
