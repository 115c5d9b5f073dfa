"""FastAPI application: public market data, chain status and the dashboard.

The app holds no state of its own: it reads the store and asks the chain through
:class:`NodeState`, so the same app serves the demo, a node, and the tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gridledger.api._problems import install_problem_handlers
from gridledger.errors import NotFoundError
from gridledger.store import Store
from gridledger.web import STATIC_DIR


@dataclass
class NodeState:
    """What the API reads from: the store, a chain-status probe, and the last run summary."""

    store: Store
    chain_status: Callable[[], dict[str, Any]]
    summary: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _row(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


def create_app(state: NodeState) -> FastAPI:
    app = FastAPI(
        title="gridledger",
        version="1",
        description="Peer-to-peer energy market: intervals, trades, chain commitments.",
    )
    install_problem_handlers(app)
    app.state.node = state
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/v1/summary")
    def summary() -> dict[str, Any]:
        if state.summary is None:
            raise NotFoundError("no run summary yet: the market has not finished a run")
        return state.summary

    @app.get("/v1/intervals")
    def intervals(limit: int = Query(96, ge=1, le=10_000)) -> list[dict[str, Any]]:
        return [_row(r) for r in state.store.intervals(limit)]

    @app.get("/v1/intervals/{interval_start_s}")
    def interval(interval_start_s: int) -> dict[str, Any]:
        row = state.store.interval(interval_start_s)
        if row is None:
            raise NotFoundError(f"interval_start_s: no interval starts at {interval_start_s}")
        trades = [_row(t) for t in state.store.trades_in_interval(interval_start_s)]
        return {**_row(row), "trades": trades}

    @app.get("/v1/participants")
    def participants() -> list[dict[str, Any]]:
        return [_row(p) for p in state.store.participants()]

    @app.get("/v1/chain")
    def chain() -> dict[str, Any]:
        return state.chain_status()

    return app
