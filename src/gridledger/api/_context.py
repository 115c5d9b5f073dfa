"""What every route reads: the node's state, the per-app services, and their dependencies.

The route modules are module-level :class:`fastapi.APIRouter` objects; they reach the app's
state only through the dependencies here (``Depends(get_ctx)`` and friends read
``request.app.state.api``), never through a closure, so this module sits below all of them and
:mod:`gridledger.api._app` above: no import circle.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Request

from gridledger.api._auth import NonceBook, RateLimiter, TokenIssuer
from gridledger.api._chain import ChainView
from gridledger.api._problems import NotLive
from gridledger.config import Settings
from gridledger.ledger import Ledger
from gridledger.node.market import LiveMarket
from gridledger.store import Store

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


async def get_ctx(request: Request) -> ApiContext:
    """The app's :class:`ApiContext` (``create_app`` puts it in ``app.state.api``).

    These dependencies are ``async`` only so that FastAPI calls them on the event loop
    instead of a worker thread: they do no I/O."""
    return cast(ApiContext, request.app.state.api)


async def get_store(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> Store:
    return ctx.state.store


async def get_live(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> LiveMarket:
    """The running node's market; 503 ``market-not-live`` on a replay of a finished run."""
    return ctx.live()


async def get_chain(ctx: Annotated[ApiContext, Depends(get_ctx)]) -> ChainView:
    """The chain explorer's view; 503 without a chain connection."""
    return ctx.chain_view()


Ctx = Annotated[ApiContext, Depends(get_ctx)]
StoreDep = Annotated[Store, Depends(get_store)]
Live = Annotated[LiveMarket, Depends(get_live)]
Chain = Annotated[ChainView, Depends(get_chain)]


def row_json(row: Any) -> dict[str, Any]:
    return dataclasses.asdict(row)


def start_path() -> Any:
    return Path(ge=0, le=INT64_MAX, description="interval start, Unix seconds")
