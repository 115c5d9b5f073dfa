"""FastAPI application: the market's public data, signed-in actions, the dashboard.

The app holds no market state of its own: it reads the store, asks the chain, and hands
actions to the live market of a node (:class:`gridledger.node.market.LiveMarket`). Without a
live market (the demo's replay of a finished day) the read-only endpoints still answer and the
actions answer 503 ``market-not-live``.

Every operation carries ``x-access`` in the OpenAPI document: ``public``, ``meter-signature``
(authenticated by the meter's EIP-712 signature), ``signed-in``, ``own`` (the caller's own
data; operators and auditors may read anyone's) or ``operator``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gridledger.api import (
    _routes_auth,
    _routes_dashboard,
    _routes_lists,
    _routes_live,
    _routes_ops,
    _routes_public,
    _sse,
)
from gridledger.api._context import INT64_MAX, PUBLIC, ApiContext, NodeState, row_json
from gridledger.api._problems import install_problem_handlers
from gridledger.api._routes_consent import add_privacy_routes
from gridledger.api._routes_verifier import add_verifier_routes
from gridledger.web import STATIC_DIR

__all__ = ["INT64_MAX", "PUBLIC", "ApiContext", "NodeState", "create_app", "row_json"]

# Each route module is a module-level APIRouter whose routes reach the node through the
# dependencies of gridledger.api._context; a new module adds one line here.
ROUTERS = (
    _routes_public.router,
    _routes_lists.router,
    _routes_auth.router,
    _routes_live.router,
    _sse.router,
    _routes_dashboard.router,
    _routes_ops.router,
)


def create_app(state: NodeState) -> FastAPI:
    app = FastAPI(
        title="gridledger",
        version="1",
        description=(
            "Peer-to-peer energy market: intervals, orders, readings, statements, chain "
            "commitments. Sign in with Ethereum (EIP-4361) at /v1/auth/nonce and /v1/auth/token; "
            "send the token as `Authorization: Bearer …`. Errors are RFC 9457 problem details."
        ),
    )
    install_problem_handlers(app)
    ctx = ApiContext(state)
    app.state.node = state
    app.state.api = ctx
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)
    add_verifier_routes(app, ctx)
    add_privacy_routes(app, ctx)
    _routes_ops.install_request_ids(app)
    return app
