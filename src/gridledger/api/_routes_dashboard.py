"""What the dashboard needs besides the market data: how to show numbers to people, the
order-book depth of any closed interval, and the grid's loading and voltage per interval."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from gridledger.api._context import INT64_MAX, PUBLIC, ApiContext, Ctx
from gridledger.errors import ConflictError, NotFoundError
from gridledger.store import OrderRow
from gridledger.web import STATIC_DIR

router = APIRouter(tags=["dashboard"])


@router.get("/household", include_in_schema=False)
def household_page() -> FileResponse:
    """A household's own page: my energy, my trades, my bill, verify (after sign-in)."""
    return FileResponse(STATIC_DIR / "household.html")


@router.get("/v1/display", openapi_extra=PUBLIC)
def display(ctx: Ctx) -> dict[str, Any]:
    """The currency, the time zone and the KPI titles and explanations people read.

    Amounts stay in micro-units (1 currency unit = 1,000,000) and energy in Wh in every
    other endpoint; this tells a client how to show them.
    """
    from gridledger.sim.kpis import KPI_DEFINITIONS  # the sim package is heavy to import

    return {
        "currency": ctx.state.settings.currency,
        "timezone": ctx.state.settings.timezone,
        "micro_per_unit": 1_000_000,
        "interval_length_s": ctx.state.settings.interval_length_s,
        "kpis": [
            {"key": d.key, "title": d.title, "unit": d.unit, "explanation": d.explanation}
            for d in KPI_DEFINITIONS
        ],
    }


@router.get("/v1/intervals/{interval_start_s}/depth", openapi_extra=PUBLIC)
def depth(
    ctx: Ctx,
    interval_start_s: int = Path(ge=0, le=INT64_MAX, description="interval start, Unix s"),
) -> dict[str, Any]:
    """Order-book depth (energy per price level) of an interval whose gate has closed.

    Live from the market on a running node, from the store for a finished run; sealed
    (409) while the interval is still open.
    """
    if ctx.state.live is not None:
        return ctx.state.live.book_depth(interval_start_s)
    if ctx.state.store.interval(interval_start_s).status == "open":
        raise ConflictError(f"interval_start_s: {interval_start_s} is open: its book is sealed")
    return depth_of(interval_start_s, ctx.state.store.orders_in_interval(interval_start_s))


@router.get("/v1/grid/state", openapi_extra=PUBLIC)
def grid_state(
    ctx: Ctx,
    interval_start_s: int | None = Query(None, ge=0, le=INT64_MAX),
) -> dict[str, Any]:
    """Line loading (%) and bus voltage (pu) of an interval (default: the newest with
    readings), from an AC power flow of the households' metered net energy."""
    from gridledger.web.gridstate import grid_state, net_wh_by_bus

    start = interval_start_s if interval_start_s is not None else _newest_metered(ctx)
    readings = [
        (r.reading.meter, r.reading.imported_wh, r.reading.exported_wh)
        for r in ctx.state.store.readings_in_interval(start)
    ]
    owners = {m.address: m.owner for m in ctx.state.store.meters()}
    buses = {p.address: p.grid_node for p in ctx.state.store.participants()}
    flow = grid_state(
        ctx.state.settings.grid_code,
        net_wh_by_bus(readings, owners, buses),
        ctx.state.settings.interval_length_s,
    )
    return {"interval_start_s": start, "readings": len(readings), **flow}


def depth_of(interval_start_s: int, orders: list[OrderRow]) -> dict[str, Any]:
    levels: dict[tuple[str, int], int] = {}
    for row in orders:
        key = (row.side, row.price_micro_per_kwh)
        levels[key] = levels.get(key, 0) + row.energy_wh

    def side(name: str) -> list[dict[str, int]]:
        picked = sorted((p, e) for (s, p), e in levels.items() if s == name)
        if name == "buy":
            picked.reverse()  # bids from the highest price down
        return [{"price_micro_per_kwh": p, "energy_wh": e} for p, e in picked]

    return {"interval_start_s": interval_start_s, "bids": side("buy"), "asks": side("sell")}


def _newest_metered(ctx: ApiContext) -> int:
    for row in ctx.state.store.intervals(96):
        if row.status != "open" and ctx.state.store.readings_in_interval(row.interval_start_s):
            return row.interval_start_s
    raise NotFoundError("no interval has readings yet: the grid has no power flow to show")
