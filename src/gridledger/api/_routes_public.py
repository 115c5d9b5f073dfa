"""Public market data: the run summary, the clock, intervals, the book, the chain, the grid."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gridledger.api._context import PUBLIC, Chain, Ctx, Live, StoreDep, row_json, start_path
from gridledger.errors import NotFoundError
from gridledger.web import STATIC_DIR

router = APIRouter()


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.get("/v1/summary", openapi_extra=PUBLIC, tags=["market"])
def summary(ctx: Ctx) -> dict[str, Any]:
    """The summary of a finished run (the demo); 404 on a live node."""
    if ctx.state.summary is None:
        raise NotFoundError("no run summary yet: the market has not finished a run")
    return ctx.state.summary


@router.get("/v1/market", openapi_extra=PUBLIC, tags=["market"])
def market(live: Live) -> dict[str, Any]:
    """The market clock: the open interval and the time left until its gate closes."""
    return live.status()


@router.get("/v1/intervals/{interval_start_s}", openapi_extra=PUBLIC, tags=["market"])
def interval(store: StoreDep, interval_start_s: int = start_path()) -> dict[str, Any]:
    """One interval in aggregate: price, volume, roots and the number of trades. Each trade
    line goes only to its two parties (``/v1/intervals/{start}/trades``, signed in)."""
    row = store.interval(interval_start_s)
    trade_count = len(store.trades_in_interval(interval_start_s))
    return {**row_json(row), "trade_count": trade_count}


@router.get("/v1/intervals/{interval_start_s}/book", openapi_extra=PUBLIC, tags=["market"])
def book(live: Live, interval_start_s: int = start_path()) -> dict[str, Any]:
    """Order-book depth (volume per price level), sealed until the gate closes."""
    return live.book_depth(interval_start_s)


@router.get("/v1/chain", openapi_extra=PUBLIC, tags=["chain"])
def chain(ctx: Ctx) -> dict[str, Any]:
    """Block height, contract addresses, progress, recent commits and settlements."""
    if ctx.chain is None:
        return ctx.state.chain_status()
    return ctx.chain.status()


@router.get("/v1/chain/intervals/{interval_start_s}", openapi_extra=PUBLIC, tags=["chain"])
def chain_interval(view: Chain, interval_start_s: int = start_path()) -> dict[str, Any]:
    """The roots, price and volume the Market contract holds for an interval."""
    return view.interval(interval_start_s)


@router.get("/v1/grid", openapi_extra=PUBLIC, tags=["grid"])
def grid(ctx: Ctx) -> dict[str, Any]:
    """The LV grid's buses and lines (SimBench geodata), loading from the last power flow."""
    from gridledger.api._grid import grid_map  # SimBench is heavy: loaded on first use

    state = ctx.state
    flow = state.live.last_power_flow if state.live is not None else None
    return grid_map(flow, state.settings.grid_code)
