"""A self-contained HTML report of a scenario run: KPIs and six plots as embedded PNGs.

One file, no external assets (the PNGs are base64 ``data:`` URIs), so it can be mailed,
archived next to the JSON summary, or attached to a paper's supplementary material.
People read it: money in the currency, energy in kWh, power in kW, local clock times, and
every KPI with its title and explanation from :data:`gridledger.sim.kpis.KPI_DEFINITIONS`.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by servers and CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from gridledger.web.units import energy_text, local_time_text, money_text, savings_text

if TYPE_CHECKING:
    from gridledger.sim.results import ScenarioResult

_MICRO = 1e6


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


def _interval_starts_s(result: ScenarioResult) -> list[int]:
    sc = result.scenario
    first = int(dt.datetime.combine(sc.start_date, dt.time(), dt.UTC).timestamp())
    n = result.series.local_traded_wh.shape[0]
    return [first + i * sc.interval_length_s for i in range(n)]


def _clock_ticks(starts: list[int], interval_s: int, zone: zoneinfo.ZoneInfo) -> list[int]:
    """Interval starts on round local hours: every 3 h for a day, daily for weeks, weekly after."""
    days = len(starts) * interval_s / 86_400
    step_h = 3 if days <= 1.5 else 24 if days <= 16 else 24 * 7
    ticks = []
    for t in starts:
        local = dt.datetime.fromtimestamp(t, zone)
        on_the_hour = local.minute == 0 and local.hour % min(step_h, 24) == 0
        if on_the_hour and (step_h <= 24 or local.weekday() == 0):
            ticks.append(t)
    return ticks


def _figures(result: ScenarioResult, currency: str, timezone: str) -> list[tuple[str, str]]:
    s, sc = result.series, result.scenario
    zone = zoneinfo.ZoneInfo(timezone)
    starts = _interval_starts_s(result)
    hours = np.asarray(starts, dtype=np.float64)  # x axis: Unix seconds, labelled as clock times
    ticks = _clock_ticks(starts, sc.interval_length_s, zone)
    labels = [dt.datetime.fromtimestamp(t, zone).strftime("%d %b %H:%M") for t in ticks]
    time_label = f"local time ({timezone})"
    per_kwh = f"{currency} per kWh"

    def clock_axis(ax: Axes) -> None:
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlabel(time_label)

    def prices(ax: Axes) -> None:
        ax.plot(hours, s.clearing_price_micro_per_kwh / _MICRO, ".", ms=2, label="local price")
        ax.axhline(sc.import_price_micro_per_kwh / _MICRO, color="red", lw=1, label="import tariff")
        ax.axhline(sc.feed_in_price_micro_per_kwh / _MICRO, color="green", lw=1, label="feed-in")
        ax.set(ylabel=per_kwh)
        clock_axis(ax)
        ax.legend(loc="upper right", fontsize=7)

    def traded(ax: Axes) -> None:
        ax.plot(hours, s.local_traded_wh / 1000, lw=0.8, label="traded locally")
        if s.curtailed_wh.any():
            ax.plot(hours, s.curtailed_wh / 1000, lw=0.8, color="red", label="curtailed")
        ax.set(ylabel="kWh per interval")
        clock_axis(ax)
        ax.legend(loc="upper right", fontsize=7)

    def soc(ax: Axes) -> None:
        if result.soc_wh.size:
            share = result.soc_wh / result.battery_capacity_wh[:, None] * 100
            ax.plot(hours, share.T, lw=0.5, alpha=0.5)
            ax.plot(hours, share.mean(axis=0), lw=1.5, color="black", label="mean")
            ax.legend(loc="upper right", fontsize=7)
        ax.set(ylabel="state of charge (%)", ylim=(0, 100))
        clock_axis(ax)

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
        ax.set(ylabel="loading (%)")
        clock_axis(ax)
        ax.legend(loc="upper right", fontsize=7)

    def voltage(ax: Axes) -> None:
        ax.fill_between(hours, s.min_vm_pu, s.max_vm_pu, alpha=0.5, label="bus voltages")
        ax.axhline(sc.min_vm_pu, color="red", lw=1)
        ax.axhline(sc.max_vm_pu, color="red", lw=1, label="band")
        ax.set(ylabel="voltage (per unit of nominal)")
        clock_axis(ax)
        ax.legend(loc="upper right", fontsize=7)

    def bills(ax: Axes) -> None:
        x = np.arange(len(result.household_names))
        ax.bar(x - 0.2, result.baseline_bill_micro / _MICRO, 0.4, label="no market")
        ax.bar(x + 0.2, result.market_bill_micro / _MICRO, 0.4, label="with market")
        ax.axhline(0, color="black", lw=0.6)
        ax.set(xlabel="household", ylabel=f"bill in {currency} (below 0: earned)")
        ax.legend(loc="upper right", fontsize=7)

    return [
        (f"Local clearing price ({per_kwh})", _png(prices)),
        ("Energy traded locally per interval", _png(traded)),
        ("Battery state of charge", _png(soc)),
        ("Transformer and line loading", _png(trafo)),
        ("Voltage band", _png(voltage)),
        ("Each household's bill: no market vs market", _png(bills)),
    ]


# Run facts beyond the KPIs, in words (the KPIs come from KPI_DEFINITIONS).
_RUN_FACTS: tuple[tuple[str, str], ...] = (
    ("intervals", "Intervals of 15 minutes"),
    ("households", "Households"),
    ("batteries", "Households with a battery"),
    ("trades", "Local trades"),
    ("grid_aware_intervals", "Intervals re-cleared to stay within the grid limits"),
    ("trades_changed_by_grid_awareness", "Trades changed to stay within the grid limits"),
    ("intervals_over_limits", "Intervals over a grid limit"),
    ("intervals_over_limits_without_grid_awareness", "... had the market ignored the grid"),
)


def _cell(text: str) -> str:
    return f"<td>{html.escape(text)}</td>"


def _kpi_rows(result: ScenarioResult, currency: str) -> str:
    return "".join(
        f"<tr><th>{html.escape(d.title)}</th><td class='num'>{html.escape(text)}</td>"
        f"<td class='why'>{html.escape(d.explanation)}</td></tr>"
        for d, text in result.kpis.rows(currency)
    )


def _fact_rows(result: ScenarioResult) -> str:
    rows = [
        f"<tr><th>{html.escape(title)}</th><td class='num'>{result.summary[key]:,}</td>"
        "<td></td></tr>"
        for key, title in _RUN_FACTS
        if key in result.summary
    ]
    wall = result.summary.get("wall_time_s")
    if wall is not None:
        rows.append(f"<tr><th>Run time</th><td class='num'>{wall:,.1f} s</td><td></td></tr>")
    return "".join(rows)


def _bill_rows(result: ScenarioResult, currency: str) -> str:
    def bill(micro: int) -> str:
        # a bill below zero means the household earned money
        return (
            f"earned {money_text(-micro, currency)}" if micro < 0 else money_text(micro, currency)
        )

    rows = []
    for name, base, market in zip(
        result.household_names, result.baseline_bill_micro, result.market_bill_micro, strict=True
    ):
        rows.append(
            f"<tr><th>{html.escape(name)}</th>{_cell(bill(int(base)))}{_cell(bill(int(market)))}"
            f"{_cell(savings_text(int(base) - int(market), currency))}</tr>"
        )
    return "".join(rows)


def _flexibility_section(result: ScenarioResult, currency: str) -> str:
    if "flexibility" not in result.summary:
        return ""
    from gridledger.sim.dr import flexibility_html

    return flexibility_html(result.summary["flexibility"], currency)


def _devices_section(result: ScenarioResult) -> str:
    if "devices" not in result.summary:
        return ""
    from gridledger.sim.devices import devices_html

    return devices_html(result.summary["devices"])


def render_html(
    result: ScenarioResult, currency: str = "EUR", timezone: str = "Europe/Berlin"
) -> str:
    """The report as one HTML string, money in ``currency`` and clock times in ``timezone``."""
    figures = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{data}">'
        for title, data in _figures(result, currency, timezone)
    )
    sc = result.scenario
    starts = _interval_starts_s(result)
    period = (
        f"{local_time_text(starts[0], timezone)} to "
        f"{local_time_text(starts[-1] + sc.interval_length_s, timezone)}"
        if starts
        else "no intervals"
    )
    heading = html.escape(f"{sc.name}: {sc.households} households on the {sc.grid_code} feeder")
    about = html.escape(
        f"{period}. Mechanism {sc.mechanism}, strategy {sc.strategy}, grid-aware clearing "
        f"{'on' if sc.grid_aware else 'off'}. Import tariff "
        f"{sc.import_price_micro_per_kwh / _MICRO:.4f} {currency}/kWh, feed-in "
        f"{sc.feed_in_price_micro_per_kwh / _MICRO:.4f} {currency}/kWh. Energy the households "
        f"traded locally: {energy_text(int(result.series.local_traded_wh.sum()))}."
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>gridledger: {html.escape(sc.name)}</title>"
        "<style>body{font-family:sans-serif;max-width:900px;margin:auto;padding:0 8px}"
        "th{text-align:left;padding-right:1em;font-weight:600}td{padding-right:1em}"
        ".num{text-align:right;white-space:nowrap}.why{color:#555;font-size:90%}"
        "img{max-width:100%}table{border-collapse:collapse}tr{border-bottom:1px solid #eee}"
        "</style></head><body>"
        f"<h1>{heading}</h1><p>{about}</p>"
        "<h2>Key performance indicators</h2>"
        f"<table id='kpis'>{_kpi_rows(result, currency)}{_fact_rows(result)}</table>"
        f"<h2>Each household's bill ({html.escape(currency)})</h2>"
        "<table id='bills'><tr><th>household</th><th>without the market</th>"
        f"<th>with the market</th><th>difference</th></tr>{_bill_rows(result, currency)}</table>"
        f"{_flexibility_section(result, currency)}{_devices_section(result)}"
        f"{figures}</body></html>"
    )


def write_report(
    result: ScenarioResult,
    path: str | Path,
    currency: str | None = None,
    timezone: str | None = None,
) -> Path:
    """Write report.html; currency and time zone default to the configured settings."""
    if currency is None or timezone is None:
        from gridledger.config import load_settings

        settings = load_settings()
        currency = currency or settings.currency
        timezone = timezone or settings.timezone
    from gridledger.preflight import atomic_write

    return atomic_write(Path(path), render_html(result, currency, timezone))
