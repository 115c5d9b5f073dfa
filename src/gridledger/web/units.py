"""Numbers as people read them: currency, kWh, kW and local clock times.

Internal and on-chain values stay integers in fixed units (micro-units, Wh, Unix seconds);
these functions only turn them into text for the report, the CLI and the dashboard's data.
A cost is always shown with a word that says who pays, so a negative number is never a puzzle.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

MICRO_PER_UNIT = 1_000_000


def money_text(amount_micro: int, currency: str = "EUR", decimals: int = 2) -> str:
    """``1234567`` -> ``"1.23 EUR"`` (a minus sign for negative amounts, thousands separated)."""
    return f"{amount_micro / MICRO_PER_UNIT:,.{decimals}f} {currency}"


def price_text(price_micro_per_kwh: int | None, currency: str = "EUR") -> str:
    """``135602`` -> ``"0.1356 EUR/kWh"``; ``None`` (no trade) -> ``"–"``."""
    if price_micro_per_kwh is None:
        return "–"
    return f"{price_micro_per_kwh / MICRO_PER_UNIT:,.4f} {currency}/kWh"


def energy_text(energy_wh: int | float) -> str:
    """``12345`` -> ``"12.35 kWh"`` (three significant decimals below 1 kWh)."""
    kwh = energy_wh / 1000
    return f"{kwh:,.3f} kWh" if abs(kwh) < 1 else f"{kwh:,.2f} kWh"


def power_text(power_kw: float) -> str:
    return f"{power_kw:,.1f} kW"


def cost_text(cost_micro: int, currency: str = "EUR") -> str:
    """A cost: positive means paid, negative means earned, and the words say which."""
    if cost_micro < 0:
        return f"earned {money_text(-cost_micro, currency)}"
    return f"paid {money_text(cost_micro, currency)}"


def net_text(delta_micro: int, currency: str = "EUR") -> str:
    """A movement of money to the participant: received (positive) or paid (negative)."""
    if delta_micro < 0:
        return f"paid {money_text(-delta_micro, currency)}"
    return f"received {money_text(delta_micro, currency)}"


def savings_text(savings_micro: int, currency: str = "EUR") -> str:
    """Savings against a baseline: saved (positive) or cost more (negative)."""
    if savings_micro < 0:
        return f"cost {money_text(-savings_micro, currency)} more"
    return f"saved {money_text(savings_micro, currency)}"


def local_time_text(unix_s: int, timezone: str = "Europe/Berlin") -> str:
    """``1465207200`` -> ``"2016-06-06 12:00 CEST"``: the clock time in the zone, with its name."""
    zone = zoneinfo.ZoneInfo(timezone)
    return dt.datetime.fromtimestamp(unix_s, zone).strftime("%Y-%m-%d %H:%M %Z")
