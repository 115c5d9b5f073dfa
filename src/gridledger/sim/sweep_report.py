"""The HTML comparison of a sweep: one table row per cell, and a chart per headline KPI.

One self-contained file like the scenario report (PNG charts as ``data:`` URIs). KPI titles,
units and formatting come from :data:`gridledger.sim.kpis.KPI_DEFINITIONS`; a failed cell
shows its error where its KPIs would be.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from gridledger.sim.kpis import KPI_DEFINITIONS, KPIS_BY_KEY
from gridledger.sim.report import _png

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from gridledger.sim.sweep import SweepOutcome

CHART_KPIS = (
    "self_sufficiency",
    "community_savings_micro",
    "local_share_of_demand",
    "max_trafo_loading_percent",
    "curtailed_wh",
    "minutes_outside_voltage_band",
)


def _shown(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return KPIS_BY_KEY[key].format(value)


def _chart_value(key: str, value: float) -> float:
    """In the unit people read: shares in %, money in EUR, energy in kWh."""
    definition = KPIS_BY_KEY[key]
    if definition.fraction:
        return value * 100
    if definition.unit == "EUR":
        return value / 1e6
    if definition.unit == "kWh":
        return value / 1000
    return value


def _chart(outcome: SweepOutcome, key: str) -> str:
    definition = KPIS_BY_KEY[key]
    rows = outcome.rows
    values = [_chart_value(key, float(r[key])) if r["status"] == "ok" else np.nan for r in rows]
    unit = "%" if definition.fraction else definition.unit

    def draw(ax: Axes) -> None:
        x = np.arange(len(rows))
        ax.bar(
            x, np.nan_to_num(values), color=["C0" if r["status"] == "ok" else "C3" for r in rows]
        )
        ax.set_xticks(x, [str(r["cell"]) for r in rows], fontsize=7)
        ax.set(xlabel="cell (see the table)", ylabel=f"{definition.title} ({unit})")

    return _png(draw, width_in=9.0)


def _table(outcome: SweepOutcome) -> str:
    params = outcome.plan.parameters
    kpis = [d for d in KPI_DEFINITIONS if d.key != "gas_used"]
    head = "".join(f"<th>{html.escape(p)}</th>" for p in params)
    head += "<th>status</th><th>wall (s)</th>"
    head += "".join(
        f"<th title='{html.escape(d.explanation)}'>{html.escape(d.title)}</th>" for d in kpis
    )
    body = []
    for r in outcome.rows:
        cells = "".join(f"<td>{html.escape(str(r[p]))}</td>" for p in params)
        status = "finished earlier" if r["skipped"] else r["status"]
        wall = r["wall_time_s"]
        cells += f"<td>{html.escape(status)}</td>"
        cells += f"<td class='num'>{'' if math.isnan(wall) else f'{wall:.1f}'}</td>"
        if r["status"] == "ok":
            cells += "".join(f"<td class='num'>{_shown(d.key, r[d.key])}</td>" for d in kpis)
        else:
            cells += f"<td class='err' colspan='{len(kpis)}'>{html.escape(str(r['error']))}</td>"
        body.append(f"<tr id='cell-{r['cell']}'><th>{r['cell']}</th>{cells}</tr>")
    return f"<table id='cells'><tr><th>cell</th>{head}</tr>{''.join(body)}</table>"


def render_sweep_html(outcome: SweepOutcome) -> str:
    plan = outcome.plan
    ok = sum(r["status"] == "ok" for r in outcome.rows)
    about = (
        f"{len(outcome.rows)} cells from the base scenario {plan.base.name}, varying "
        f"{', '.join(plan.parameters)}. {ok} finished ({outcome.skipped} in an earlier run), "
        f"{len(outcome.failed)} failed. This run: {outcome.ran} cells in "
        f"{outcome.wall_time_s:,.1f} s on {outcome.workers} Dask workers ({outcome.cluster})."
    )
    charts = "".join(
        f"<h2>{html.escape(KPIS_BY_KEY[k].title)}</h2>"
        f"<img alt='{html.escape(KPIS_BY_KEY[k].title)}' src='data:image/png;base64,"
        f"{_chart(outcome, k)}'>"
        for k in CHART_KPIS
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>gridledger sweep: {html.escape(plan.name)}</title>"
        "<style>body{font-family:sans-serif;margin:auto;padding:0 8px;max-width:1400px}"
        "th,td{padding:2px 6px;font-size:85%}th{text-align:left}.num{text-align:right}"
        ".err{color:#a00}table{border-collapse:collapse}tr{border-bottom:1px solid #eee}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>Sweep {html.escape(plan.name)}</h1><p>{html.escape(about)}</p>"
        f"<h2>Cells</h2>{_table(outcome)}{charts}</body></html>"
    )
