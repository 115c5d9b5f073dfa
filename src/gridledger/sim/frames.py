"""Results as pandas DataFrames, indexed by time (time zone set), for analysis in notebooks.

Values keep their fixed units (Wh, micro-units) and their names say so; the index is the start
of each interval as a clock time in ``timezone`` (default: the configured one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from gridledger.market import ClearingResult
    from gridledger.sim.results import ScenarioResult


def _timezone(timezone: str | None) -> str:
    if timezone is not None:
        return timezone
    from gridledger.config import load_settings

    return load_settings().timezone


def interval_index(result: ScenarioResult, timezone: str | None = None) -> pd.DatetimeIndex:
    """Interval starts of a run: its start date at 00:00 UTC, one step per interval."""
    sc = result.scenario
    index = pd.date_range(
        pd.Timestamp(sc.start_date, tz="UTC"),
        periods=sc.n_intervals,
        freq=pd.Timedelta(seconds=sc.interval_length_s),
        name="interval_start",
    )
    return index.tz_convert(_timezone(timezone))


def intervals_frame(result: ScenarioResult, timezone: str | None = None) -> pd.DataFrame:
    """One row per interval: every series of the run (the KPIs are computed from these)."""
    series = result.series
    columns = {
        name: value
        for name, value in vars(series).items()
        if hasattr(value, "shape") and value.shape == (result.scenario.n_intervals,)
    }
    return pd.DataFrame(columns, index=interval_index(result, timezone))


def bills_frame(result: ScenarioResult) -> pd.DataFrame:
    """One row per household: its bill without and with the market, in micro-units."""
    frame = pd.DataFrame(
        {
            "baseline_bill_micro": result.baseline_bill_micro,
            "market_bill_micro": result.market_bill_micro,
        },
        index=pd.Index(result.household_names, name="household"),
    )
    frame["savings_micro"] = frame["baseline_bill_micro"] - frame["market_bill_micro"]
    return frame


def trades_frame(result: ClearingResult) -> pd.DataFrame:
    """One row per trade of a cleared book, buyer and seller by name (not by row)."""
    book, trades = result.book, result.trades
    return pd.DataFrame(
        {
            "buyer": book.names(trades.buy_row),
            "seller": book.names(trades.sell_row),
            "energy_wh": trades.energy_wh,
            "price_micro_per_kwh": trades.price_micro_per_kwh,
            "fee_micro_per_kwh": trades.fee_micro_per_kwh,
        }
    )
