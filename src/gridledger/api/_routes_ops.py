"""Operations endpoints: Prometheus ``/metrics``, ``/healthz`` (alive) and ``/readyz`` (ready).

Also the request middleware: every request gets an id (``X-Request-ID``, taken from the client
when it sends a sane one), the logs written while it is served carry that id, and it is counted
by route template and status.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY, CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gridledger import telemetry
from gridledger.api._context import PUBLIC, ApiContext, Ctx

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


router = APIRouter(tags=["operations"])


@router.get("/metrics", openapi_extra=PUBLIC)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text format: readings, orders, stage latencies, chain gas, queue depths."""
    body = generate_latest(REGISTRY) + generate_latest(_node_registry(ctx))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", openapi_extra=PUBLIC)
def healthz() -> dict[str, str]:
    """The process answers (liveness)."""
    return {"status": "ok"}


@router.get("/readyz", openapi_extra=PUBLIC)
def readyz(ctx: Ctx) -> JSONResponse:
    """The database and the chain answer (readiness): 200 when both do, else 503."""
    checks = {"store": _check_store(ctx), "chain": _check_chain(ctx)}
    ready = all(c == "ok" for c in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def install_request_ids(app: FastAPI) -> None:
    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        sent = request.headers.get("x-request-id", "")
        rid = sent if _REQUEST_ID.match(sent) else secrets.token_hex(8)
        with telemetry.request_context(rid):
            response = await call_next(request)
        response.headers["X-Request-ID"] = rid
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        telemetry.HTTP_REQUESTS.labels(template, request.method, str(response.status_code)).inc()
        return response


def _check_store(ctx: ApiContext) -> str:
    try:
        with ctx.state.store.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means not ready; the reason is reported
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _check_chain(ctx: ApiContext) -> str:
    ledger = ctx.state.ledger
    if ledger is None:
        return "ok"  # a replay of a finished run needs no chain
    try:
        ledger.block_number  # noqa: B018 - a round trip to the node
    except Exception as exc:  # any failure means not ready; the reason is reported
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _node_registry(ctx: ApiContext) -> CollectorRegistry:
    """This app's values read at scrape time: chain transactions and gas, queue depths."""
    registry = CollectorRegistry()
    state = ctx.state
    if state.ledger is not None:
        stats = state.ledger.stats
        txs = Gauge(
            "gridledger_chain_transactions",
            "Transactions this node sent, by contract function.",
            ["function"],
            registry=registry,
        )
        gas = Gauge(
            "gridledger_chain_gas_used",
            "Gas used by this node's transactions, by contract function.",
            ["function"],
            registry=registry,
        )
        for function, (count, used) in stats.by_function.items():
            txs.labels(function).set(count)
            gas.labels(function).set(used)
    depth = Gauge("gridledger_queue_depth", "Work waiting, by queue.", ["queue"], registry=registry)
    for name, size in _queue_depths(ctx).items():
        depth.labels(name).set(size)
    return registry


def _queue_depths(ctx: ApiContext) -> dict[str, int]:
    live = ctx.state.live
    depths: dict[str, int] = {}
    if live is not None:
        length = live.length_s
        depths["intervals_to_settle"] = max((live.next_gate_s - live.next_settle_s) // length, 0)
        overdue = int(live.clock.now()) - live.next_gate_s
        depths["gates_overdue"] = overdue // length + 1 if overdue >= 0 else 0
    queues: Any = ctx.state.extra.get("queues", {})
    for name, size_of in queues.items():
        depths[name] = int(size_of())
    return depths
