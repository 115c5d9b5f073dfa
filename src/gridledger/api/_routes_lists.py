"""The list endpoints, paginated by cursor (:mod:`gridledger.api._pages`).

Each answers ``{"items": [...], "next_cursor": "..." | null}``; a client follows
``next_cursor`` until it is null. At 10,000 participants a page is one indexed range scan.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Query

from gridledger.api._context import INT64_MAX, PUBLIC, Chain, Ctx, StoreDep, row_json
from gridledger.api._pages import (
    after_key,
    cursor_query,
    decode_cursor,
    intervals_before,
    page,
    participants_after,
    trades_after,
)
from gridledger.api._routes_auth import Caller
from gridledger.api._routes_live import READERS_OF_ANY_STATEMENT, SIGNED_IN, log_reads
from gridledger.errors import ValidationError

router = APIRouter()
Page = dict[str, Any]


@router.get("/v1/participants", openapi_extra=PUBLIC, tags=["accounts"])
def participants(
    store: StoreDep,
    limit: int = Query(1_000, ge=1, le=10_000),
    cursor: str | None = cursor_query(),
) -> Page:
    """Registered participants in address order: address, role and whether active. Grid
    positions and labels are personal (they tie an address to a household): not served here."""
    after = decode_cursor(cursor, "participants", (str,))
    rows = participants_after(store, None if after is None else str(after[0]), limit + 1)
    return page("participants", rows, limit, lambda r: (r["address"],), lambda r: r)


@router.get("/v1/intervals", openapi_extra=PUBLIC, tags=["market"])
def intervals(
    store: StoreDep,
    limit: int = Query(96, ge=1, le=10_000),
    cursor: str | None = cursor_query(),
) -> Page:
    """Intervals newest first with clearing price, volume and roots."""
    before = decode_cursor(cursor, "intervals", (int,))
    rows = intervals_before(store, None if before is None else int(before[0]), limit + 1)
    return page("intervals", rows, limit, lambda r: (r.interval_start_s,), row_json)


@router.get("/v1/intervals/{interval_start_s}/trades", openapi_extra=SIGNED_IN, tags=["market"])
def interval_trades(
    ctx: Ctx,
    principal: Caller,
    store: StoreDep,
    interval_start_s: int = Path(ge=0, le=INT64_MAX),
    limit: int = Query(1_000, ge=1, le=10_000),
    cursor: str | None = cursor_query(),
) -> Page:
    """The interval's trade lines the caller is a party to, in id order; operators and
    auditors see all."""
    store.interval(interval_start_s)
    after = decode_cursor(cursor, "trades", (int, int))
    if after is not None and after[0] != interval_start_s:
        raise ValidationError("cursor", "is a cursor of another interval's trades")
    party = None if principal.role in READERS_OF_ANY_STATEMENT else principal.address
    last = None if after is None else int(after[1])
    rows = trades_after(store, interval_start_s, party, last, limit + 1)
    shown = rows[:limit]
    log_reads(ctx, principal, {a for r in shown for a in (r.buyer, r.seller)}, "trades")
    return page("trades", rows, limit, lambda r: (interval_start_s, int(r.id or 0)), row_json)


@router.get("/v1/chain/events", openapi_extra=PUBLIC, tags=["chain"])
def chain_events(
    view: Chain,
    limit: int = Query(50, ge=1, le=1_000),
    cursor: str | None = cursor_query(),
    name: str | None = Query(
        None, pattern=r"^[A-Za-z]{1,40}$", description="only events of this name, e.g. Claimed"
    ),
) -> Page:
    """Recent contract events newest first: commits, settlements (direct and by netting
    root), claims, deposits, registrations. The newest 1,000 of each group are kept."""
    after = decode_cursor(cursor, "chain-events", (int, int))
    events = view.newest() if name is None else view.newest((name,))

    def key(e: dict[str, Any]) -> tuple[int, int]:
        return (-int(e["block_number"]), -int(e["log_index"]))

    rows = after_key(events, key, after, limit + 1)
    return page("chain-events", rows, limit, key, lambda e: e)


@router.get("/v1/anomalies", openapi_extra=PUBLIC, tags=["security"])
def anomalies(
    ctx: Ctx,
    limit: int = Query(100, ge=1, le=1_000),
    cursor: str | None = cursor_query(),
) -> Page:
    """Alerts raised by the security checks, newest day first (empty until they report)."""
    after = decode_cursor(cursor, "anomalies", (int, str))

    def key(a: dict[str, Any]) -> tuple[int, str]:
        return (-int(a.get("window_start_s", 0)), str(a.get("subject", "")))

    rows = after_key(sorted(ctx.state.anomalies(), key=key), key, after, limit + 1)
    return page("anomalies", rows, limit, key, lambda a: a)
