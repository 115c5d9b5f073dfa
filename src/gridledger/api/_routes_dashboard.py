"""What the dashboard needs besides the market data: how to show numbers to people."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gridledger.api._app import PUBLIC, ApiContext


def dashboard_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["dashboard"])
    settings = ctx.state.settings

    @router.get("/v1/display", openapi_extra=PUBLIC)
    def display() -> dict[str, Any]:
        """The currency, the time zone and the KPI titles and explanations people read.

        Amounts stay in micro-units (1 currency unit = 1,000,000) and energy in Wh in every
        other endpoint; this tells a client how to show them.
        """
        from gridledger.sim.kpis import KPI_DEFINITIONS  # the sim package is heavy to import

        return {
            "currency": settings.currency,
            "timezone": settings.timezone,
            "micro_per_unit": 1_000_000,
            "interval_length_s": settings.interval_length_s,
            "kpis": [
                {"key": d.key, "title": d.title, "unit": d.unit, "explanation": d.explanation}
                for d in KPI_DEFINITIONS
            ],
        }

    return router
