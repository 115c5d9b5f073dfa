"""The grid map: buses and lines of the SimBench LV grid in SVG-ready coordinates."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

MAP_WIDTH, MAP_HEIGHT, MARGIN = 600.0, 400.0, 30.0


@lru_cache(maxsize=4)
def grid_geometry(grid_code: str) -> dict[str, Any]:
    """Buses (x, y scaled into MAP_WIDTH x MAP_HEIGHT) and lines; loaded once per process."""
    from gridledger.iotools.simbench import load_lv_grid

    net = load_lv_grid(grid_code)
    points = {int(i): _lon_lat(geo) for i, geo in net.bus["geo"].items()}
    known = [p for p in points.values() if p is not None]
    if not known:
        return {"grid_code": grid_code, "buses": [], "lines": []}
    scale = _scaler(known)
    buses = [
        {"bus": i, "name": str(net.bus.at[i, "name"]), "x": xy[0], "y": xy[1]}
        for i, p in points.items()
        if p is not None
        for xy in (scale(p),)
    ]
    lines = [
        {
            "line": int(i),
            "name": str(r["name"]),
            "from_bus": int(r["from_bus"]),
            "to_bus": int(r["to_bus"]),
            "length_km": float(r["length_km"]),
        }
        for i, r in net.line.iterrows()
    ]
    return {"grid_code": grid_code, "buses": buses, "lines": lines}


def grid_map(power_flow: dict[str, Any] | None, grid_code: str) -> dict[str, Any]:
    """Geometry plus ``loading_percent`` per line (None: no power flow yet, neutral colour)."""
    geometry = grid_geometry(grid_code)
    loading = (power_flow or {}).get("line_loading_percent", {})
    lines = [{**line, "loading_percent": loading.get(line["line"])} for line in geometry["lines"]]
    return {
        **geometry,
        "lines": lines,
        "power_flow_interval_start_s": (power_flow or {}).get("interval_start_s"),
    }


def _lon_lat(geo: Any) -> tuple[float, float] | None:
    if not isinstance(geo, str):
        return None
    try:
        x, y = json.loads(geo)["coordinates"][:2]
        return float(x), float(y)
    except (ValueError, KeyError, TypeError):
        return None


def _scaler(points: list[tuple[float, float]]) -> Any:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    # Longitude degrees shrink with latitude; keep the map's aspect true.
    k = math.cos(math.radians(sum(ys) / len(ys)))
    span_x = max((max(xs) - min(xs)) * k, 1e-9)
    span_y = max(max(ys) - min(ys), 1e-9)
    s = min((MAP_WIDTH - 2 * MARGIN) / span_x, (MAP_HEIGHT - 2 * MARGIN) / span_y)

    def scale(p: tuple[float, float]) -> tuple[float, float]:
        x = MARGIN + (p[0] - min(xs)) * k * s
        y = MAP_HEIGHT - MARGIN - (p[1] - min(ys)) * s
        return round(x, 1), round(y, 1)

    return scale
