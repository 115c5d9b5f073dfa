"""A self-contained HTML report of a scenario run: KPIs and six plots as embedded PNGs.

One file, no external assets (the PNGs are base64 ``data:`` URIs), so it can be mailed,
archived next to the JSON summary, or attached to a paper's supplementary material.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by servers and CI

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes

if TYPE_CHECKING:
    from gridledger.sim.runner import ScenarioResult

_HOURS_PER_INTERVAL = 0.25


def _png(draw: Callable[[Axes], None], width_in: float = 9.0) -> str:
    figure, axes = plt.subplots(figsize=(width_in, 3.2), dpi=90)
    try:
        draw(axes)
        axes.grid(alpha=0.3)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _hours(n: int) -> npt.NDArray[np.float64]:
    return np.arange(n, dtype=np.float64) * _HOURS_PER_INTERVAL


def _figures(result: ScenarioResult) -> list[tuple[str, str]]:
    s, sc = result.series, result.scenario
    hours = _hours(s.local_traded_wh.shape[0])

    def prices(ax: Axes) -> None:
        ax.plot(hours, s.clearing_price_micro_per_kwh / 1e6, ".", ms=2, label="local price")
        ax.axhline(sc.import_price_micro_per_kwh / 1e6, color="red", lw=1, label="import tariff")
        ax.axhline(sc.feed_in_price_micro_per_kwh / 1e6, color="green", lw=1, label="feed-in")
        ax.set(xlabel="hour of run", ylabel="price per kWh")
        ax.legend(loc="upper right", fontsize=7)

    def traded(ax: Axes) -> None:
        ax.plot(hours, s.local_traded_wh / 1000, lw=0.8, label="traded locally")
        if s.curtailed_wh.any():
            ax.plot(hours, s.curtailed_wh / 1000, lw=0.8, color="red", label="curtailed")
        ax.set(xlabel="hour of run", ylabel="kWh per interval")
        ax.legend(loc="upper right", fontsize=7)

    def soc(ax: Axes) -> None:
        if result.soc_wh.size:
            share = result.soc_wh / result.battery_capacity_wh[:, None] * 100
            ax.plot(hours, share.T, lw=0.5, alpha=0.5)
            ax.plot(hours, share.mean(axis=0), lw=1.5, color="black", label="mean")
            ax.legend(loc="upper right", fontsize=7)
        ax.set(xlabel="hour of run", ylabel="state of charge (%)", ylim=(0, 100))

    def trafo(ax: Axes) -> None:
        ax.plot(hours, s.max_trafo_loading_percent, lw=0.8, label="transformer")
        ax.plot(hours, s.max_line_loading_percent, lw=0.8, label="most loaded line")
        if sc.grid_aware:
            ax.plot(
                hours,
                s.unconstrained_max_trafo_loading_percent,
                lw=0.6,
                alpha=0.6,
                label="transformer, market without grid limits",
            )
        ax.axhline(sc.max_trafo_loading_percent, color="red", lw=1)
        ax.set(xlabel="hour of run", ylabel="loading (%)")
        ax.legend(loc="upper right", fontsize=7)

    def voltage(ax: Axes) -> None:
        ax.fill_between(hours, s.min_vm_pu, s.max_vm_pu, alpha=0.5, label="bus voltages")
        ax.axhline(sc.min_vm_pu, color="red", lw=1)
        ax.axhline(sc.max_vm_pu, color="red", lw=1, label="band")
        ax.set(xlabel="hour of run", ylabel="voltage (pu)")
        ax.legend(loc="upper right", fontsize=7)

    def bills(ax: Axes) -> None:
        x = np.arange(len(result.household_names))
        ax.bar(x - 0.2, result.baseline_bill_micro / 1e6, 0.4, label="no market")
        ax.bar(x + 0.2, result.market_bill_micro / 1e6, 0.4, label="with market")
        ax.set(xlabel="household", ylabel="bill (currency units)")
        ax.legend(loc="upper right", fontsize=7)

    return [
        ("Local clearing price", _png(prices)),
        ("Energy traded locally per interval", _png(traded)),
        ("Battery state of charge", _png(soc)),
        ("Transformer and line loading", _png(trafo)),
        ("Voltage band", _png(voltage)),
        ("Each household's bill: no market vs market", _png(bills)),
    ]


def render_html(result: ScenarioResult) -> str:
    """The report as one HTML string."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in result.kpis.to_dict().items()
    )
    extra = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(result.summary[k]))}</td></tr>"
        for k in (
            "intervals",
            "households",
            "batteries",
            "trades",
            "grid_aware_intervals",
            "trades_changed_by_grid_awareness",
            "intervals_over_limits",
            "intervals_over_limits_without_grid_awareness",
            "wall_time_s",
        )
    )
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in _figures(result)
    )
    sc = result.scenario
    heading = html.escape(
        f"{sc.name}: {sc.grid_code}, {sc.households} households, {sc.days} days from "
        f"{sc.start_date}, {sc.mechanism}/{sc.strategy}, grid-aware {sc.grid_aware}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>gridledger: {html.escape(sc.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:auto}"
        "th{text-align:left;padding-right:1em}img{max-width:100%}</style></head><body>"
        f"<h1>{heading}</h1><h2>Key performance indicators</h2><table>{rows}{extra}</table>"
        f"{figures}</body></html>"
    )


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(result: ScenarioResult, path: str | Path) -> Path:
    target = Path(path)
    target.write_text(render_html(result), encoding="utf-8")
    return target
