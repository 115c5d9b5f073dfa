"""What the dashboard needs besides the market data: how to show numbers to people, the
order-book depth of any closed interval, and the grid's loading and voltage per interval."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from gridledger.api._context import INT64_MAX, PUBLIC, Ctx
from gridledger.errors import ConflictError, NotFoundError
from gridledger.store import Store
from gridledger.store import schema as t
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
    return depth_of(ctx.state.store, interval_start_s)


@router.get("/v1/grid/state", openapi_extra=PUBLIC)
def grid_state(
    ctx: Ctx,
    interval_start_s: int | None = Query(None, ge=0, le=INT64_MAX),
) -> dict[str, Any]:
    """Line loading (%) and bus voltage (pu) of an interval (default: the newest with
    readings), from an AC power flow of the households' metered net energy pooled over groups
    of at least ``grid_map_min_households`` households (no household's own energy shows)."""
    from gridledger.privacy.pooling import pooled_net_wh
    from gridledger.web.gridstate import grid_state

    store, settings = ctx.state.store, ctx.state.settings
    start = interval_start_s if interval_start_s is not None else _newest_metered(store)
    net_wh, households = net_wh_by_bus(store, start)
    pooled = pooled_net_wh(net_wh, households, settings.grid_map_min_households)
    flow = grid_state(settings.grid_code, pooled, settings.interval_length_s)
    return {
        "interval_start_s": start,
        "readings": sum(households.values()),
        "pooled_over_households": settings.grid_map_min_households,
        **flow,
    }


# The dashboard's reads are aggregates in SQL: at 10,000 households, loading every reading,
# meter and participant row into Python to sum them per bus took more than a second.
def depth_of(store: Store, interval_start_s: int) -> dict[str, Any]:
    """Energy per (side, price level) of the interval's stored orders."""
    c = t.orders.c
    query = (
        sa.select(c.side, c.price_micro_per_kwh, sa.func.sum(c.energy_wh))
        .where(c.interval_start_s == interval_start_s)
        .group_by(c.side, c.price_micro_per_kwh)
    )
    with store.engine.connect() as conn:
        levels = {(side, int(p)): int(e) for side, p, e in conn.execute(query)}

    def side(name: str) -> list[dict[str, int]]:
        picked = sorted((p, e) for (s, p), e in levels.items() if s == name)
        if name == "buy":
            picked.reverse()  # bids from the highest price down
        return [{"price_micro_per_kwh": p, "energy_wh": e} for p, e in picked]

    return {"interval_start_s": interval_start_s, "bids": side("buy"), "asks": side("sell")}


def net_wh_by_bus(store: Store, interval_start_s: int) -> tuple[dict[int, int], dict[int, int]]:
    """Net metered import per grid bus (negative: the bus feeds in), and the readings per bus
    (one per household's meter).

    A reading counts at its meter's owner's bus; a meter or owner not registered is left out."""
    r, m, p = t.readings.c, t.meters.c, t.participants.c
    query = (
        sa.select(p.grid_node, sa.func.sum(r.imported_wh - r.exported_wh), sa.func.count())
        .select_from(
            t.readings.join(t.meters, m.address == r.meter).join(
                t.participants, p.address == m.owner
            )
        )
        .where(r.interval_start_s == interval_start_s)
        .group_by(p.grid_node)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return {int(bus): int(wh) for bus, wh, _ in rows}, {int(bus): int(n) for bus, _, n in rows}


def _newest_metered(store: Store) -> int:
    """The newest of the last 96 closed intervals with at least one reading."""
    r = t.readings.c
    with store.engine.connect() as conn:
        for row in store.intervals(96):
            if row.status == "open":
                continue
            one = sa.select(r.id).where(r.interval_start_s == row.interval_start_s).limit(1)
            if conn.scalar(one) is not None:
                return row.interval_start_s
    raise NotFoundError("no interval has readings yet: the grid has no power flow to show")
