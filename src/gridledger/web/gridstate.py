"""The grid as people see it on the map: line loading and bus voltage of one interval.

The power flow is run on the feeder from the interval's metered net energy of the households
at each bus (summed per bus and pooled over groups of households by the API,
gridledger.privacy.pooling; SimBench LV grid, pandapower); the background SimBench
loads are left out, so the map shows what the community itself puts on its grid. Results are
cached per interval.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

WH_PER_MWH = 1_000_000
_lock = threading.Lock()  # pandapower nets are not safe to share between threads


def grid_state(grid_code: str, net_wh: Mapping[int, int], interval_length_s: int) -> dict[str, Any]:
    """Loading per line (%) and voltage per bus (pu) from one AC power flow."""
    key = tuple(sorted(net_wh.items()))
    return _cached_state(grid_code, key, interval_length_s)


@lru_cache(maxsize=256)
def _cached_state(
    grid_code: str, net_wh: tuple[tuple[int, int], ...], interval_length_s: int
) -> dict[str, Any]:
    import pandapower as pp

    with _lock:
        net, community_load = _working_net(grid_code)
        p_mw = dict.fromkeys(community_load.values(), 0.0)
        for bus, wh in net_wh:
            if bus in community_load:
                p_mw[community_load[bus]] = wh * 3600 / interval_length_s / WH_PER_MWH
        net.load.loc[list(p_mw), "p_mw"] = list(p_mw.values())
        try:
            pp.runpp(net)
        except pp.LoadflowNotConverged:
            return {"converged": False, "lines": {}, "buses": {}}
        lines = {int(i): round(float(v), 2) for i, v in net.res_line["loading_percent"].items()}
        buses = {int(i): round(float(v), 4) for i, v in net.res_bus["vm_pu"].items()}
    return {"converged": True, "lines": lines, "buses": buses}


@lru_cache(maxsize=4)
def _working_net(grid_code: str) -> tuple[Any, dict[int, int]]:
    """The feeder with its own loads and generators at zero and one community load per bus,
    built once: each power flow only sets the loads (a fresh copy of the net and new loads
    for every interval took longer than the power flow itself). Used under ``_lock``."""
    import pandapower as pp

    from gridledger.iotools.simbench import load_lv_grid

    net = load_lv_grid(grid_code)
    net.load["p_mw"] = 0.0
    net.load["q_mvar"] = 0.0
    net.sgen["p_mw"] = 0.0
    loads = {
        int(b): int(pp.create_load(net, b, p_mw=0.0, name=f"community {b}")) for b in net.bus.index
    }
    return net, loads
