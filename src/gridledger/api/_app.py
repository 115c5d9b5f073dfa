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

import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from gridledger.api._auth import NonceBook, RateLimiter, TokenIssuer
from gridledger.api._chain import ChainView
from gridledger.api._problems import NotLive, install_problem_handlers
from gridledger.config import Settings
from gridledger.errors import NotFoundError
from gridledger.ledger import Ledger
from gridledger.store import Store
from gridledger.web import STATIC_DIR

if TYPE_CHECKING:
    from gridledger.node.market import LiveMarket

INT64_MAX = (1 << 63) - 1
PUBLIC: dict[str, Any] = {"x-access": "public"}


@dataclass
class NodeState:
    """What the API reads from: the store, a chain-status probe, and the last run summary.

    ``ledger`` enables the chain explorer; ``live`` (a running node) enables sign-in, orders,
    readings, statements and the event stream; ``anomalies`` is filled by the security checks.
    """

    store: Store
    chain_status: Callable[[], dict[str, Any]]
    summary: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    ledger: Ledger | None = None
    live: LiveMarket | None = None
    settings: Settings = field(default_factory=Settings)
    anomalies: Callable[[], list[dict[str, Any]]] = list


class ApiContext:
    """Per-app services the routes share: tokens, nonces, rate limits, the chain view."""

    def __init__(self, state: NodeState) -> None:
        s = state.settings
        self.state = state
        secret = s.auth_secret.encode() if s.auth_secret else secrets.token_bytes(32)
        self.tokens = TokenIssuer(secret, s.auth_token_lifetime_s)
        self.nonces = NonceBook()
        self.participant_limit = RateLimiter(s.rate_limit_participant_per_min)
        self.meter_limit = RateLimiter(s.rate_limit_meter_per_min)
        self.sign_in_limit = RateLimiter(max(s.rate_limit_participant_per_min, 60))
        lock = state.live.chain_lock if state.live is not None else threading.RLock()
        from_block = 0
        if state.live is not None:
            from_block = state.live.meta.get_int("deploy_block") or 0
        self.chain = None if state.ledger is None else ChainView(state.ledger, lock, from_block)

    def live(self) -> LiveMarket:
        if self.state.live is None:
            raise NotLive("this server replays a finished run: there is no live market")
        return self.state.live

    def chain_view(self) -> ChainView:
        if self.chain is None:
            raise NotLive("this server has no chain connection")
        return self.chain


def row_json(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


def create_app(state: NodeState) -> FastAPI:
    from gridledger.api._routes_auth import add_auth_routes
    from gridledger.api._routes_consent import add_privacy_routes
    from gridledger.api._routes_live import add_live_routes
    from gridledger.api._routes_verifier import add_verifier_routes
    from gridledger.api._sse import add_event_stream

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

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    _add_public_routes(app, ctx)
    add_auth_routes(app, ctx)
    add_live_routes(app, ctx)
    add_event_stream(app, ctx)
    add_verifier_routes(app, ctx)
    add_privacy_routes(app, ctx)
    from gridledger.api._routes_dashboard import dashboard_router
    from gridledger.api._routes_ops import install_request_ids, ops_router

    app.include_router(dashboard_router(ctx))
    app.include_router(ops_router(ctx))
    install_request_ids(app)
    return app


def _add_public_routes(app: FastAPI, ctx: ApiContext) -> None:
    state = ctx.state

    @app.get("/v1/summary", openapi_extra=PUBLIC, tags=["market"])
    def summary() -> dict[str, Any]:
        """The summary of a finished run (the demo); 404 on a live node."""
        if state.summary is None:
            raise NotFoundError("no run summary yet: the market has not finished a run")
        return state.summary

    @app.get("/v1/market", openapi_extra=PUBLIC, tags=["market"])
    def market() -> dict[str, Any]:
        """The market clock: the open interval and the time left until its gate closes."""
        return ctx.live().status()

    @app.get("/v1/intervals", openapi_extra=PUBLIC, tags=["market"])
    def intervals(limit: int = Query(96, ge=1, le=10_000)) -> list[dict[str, Any]]:
        """The newest intervals with clearing price, volume and roots, newest first."""
        return [row_json(r) for r in state.store.intervals(limit)]

    @app.get("/v1/intervals/{interval_start_s}", openapi_extra=PUBLIC, tags=["market"])
    def interval(interval_start_s: int = _start_path()) -> dict[str, Any]:
        """One interval in aggregate: price, volume, roots and the number of trades. Each trade
        line goes only to its two parties (``/v1/intervals/{start}/trades``, signed in)."""
        row = state.store.interval(interval_start_s)
        trade_count = len(state.store.trades_in_interval(interval_start_s))
        return {**row_json(row), "trade_count": trade_count}

    @app.get("/v1/intervals/{interval_start_s}/book", openapi_extra=PUBLIC, tags=["market"])
    def book(interval_start_s: int = _start_path()) -> dict[str, Any]:
        """Order-book depth (volume per price level), sealed until the gate closes."""
        return ctx.live().book_depth(interval_start_s)

    @app.get("/v1/participants", openapi_extra=PUBLIC, tags=["accounts"])
    def participants() -> list[dict[str, Any]]:
        """Registered participants: address, role and whether active. Grid positions and labels
        are personal (they tie an address to a household) and are not served publicly."""
        return [
            {"address": p.address, "role": p.role, "active": p.active}
            for p in state.store.participants()
        ]

    @app.get("/v1/chain", openapi_extra=PUBLIC, tags=["chain"])
    def chain() -> dict[str, Any]:
        """Block height, contract addresses, progress, recent commits and settlements."""
        if ctx.chain is None:
            return state.chain_status()
        return ctx.chain.status()

    @app.get("/v1/chain/events", openapi_extra=PUBLIC, tags=["chain"])
    def chain_events(limit: int = Query(50, ge=1, le=1_000)) -> list[dict[str, Any]]:
        """Recent contract events (commits, settlements, deposits, registrations), newest first."""
        return ctx.chain_view().events(limit)

    @app.get("/v1/chain/intervals/{interval_start_s}", openapi_extra=PUBLIC, tags=["chain"])
    def chain_interval(interval_start_s: int = _start_path()) -> dict[str, Any]:
        """The roots, price and volume the Market contract holds for an interval."""
        return ctx.chain_view().interval(interval_start_s)

    @app.get("/v1/grid", openapi_extra=PUBLIC, tags=["grid"])
    def grid() -> dict[str, Any]:
        """The LV grid's buses and lines (SimBench geodata), loading from the last power flow."""
        from gridledger.api._grid import grid_map

        flow = state.live.last_power_flow if state.live is not None else None
        return grid_map(flow, state.settings.grid_code)

    @app.get("/v1/anomalies", openapi_extra=PUBLIC, tags=["security"])
    def anomalies() -> list[dict[str, Any]]:
        """Alerts raised by the security checks (empty until they report something)."""
        return state.anomalies()


def _start_path() -> Any:
    return Path(ge=0, le=INT64_MAX, description="interval start, Unix seconds")
