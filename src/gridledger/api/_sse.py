"""``GET /v1/events``: server-sent events of what the node does (gate closures, settlements).

Each stream polls the node's bounded event feed every ``POLL_S`` and sends what is new, with
the feed's sequence number as the SSE ``id`` (a reconnecting browser sends ``Last-Event-ID``
and misses nothing still buffered). A comment line every ``HEARTBEAT_S`` keeps proxies open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from gridledger.api._context import Live
from gridledger.node.events import EventHub, NodeEvent

POLL_S = 0.2
HEARTBEAT_S = 10.0


def sse_frame(event: NodeEvent) -> str:
    data = json.dumps({**event.data, "at_s": round(event.wall_s, 3)})
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"


async def _stream(
    request: Request, hub: EventHub, after: int, status: dict[str, object], limit_s: float | None
) -> AsyncIterator[str]:
    yield f"retry: 2000\nevent: hello\ndata: {json.dumps(status)}\n\n"
    began = last_sent = time.monotonic()
    while not hub.closed.is_set() and not await request.is_disconnected():
        for event in hub.after(after):
            after = event.seq
            last_sent = time.monotonic()
            yield sse_frame(event)
        now = time.monotonic()
        if limit_s is not None and now - began >= limit_s:
            return
        if now - last_sent >= HEARTBEAT_S:
            last_sent = now
            yield ": heartbeat\n\n"
        await asyncio.sleep(POLL_S)


router = APIRouter()


@router.get(
    "/v1/events",
    openapi_extra={"x-access": "public"},
    tags=["market"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "events: hello, gate_closed, settled, orders, readings",
        }
    },
)
async def events(
    live: Live,
    request: Request,
    limit_s: float | None = Query(None, gt=0, le=3600, description="close after this long"),
    last_event_id: int | None = Header(None, ge=0, le=2**62),
) -> StreamingResponse:
    """Live market events as server-sent events (the dashboard's push channel)."""
    after = live.hub.last_seq if last_event_id is None else last_event_id
    stream = _stream(request, live.hub, after, live.status(), limit_s)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
