"""Cursor pagination for the list endpoints: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

A cursor is opaque to clients: base64url of a small JSON array naming the list it belongs to
and the sort key of the last item served. The next page is read by key ("after this key"), not
by offset, so a page never repeats or skips rows that were added since the previous one, and a
page costs one indexed range scan however deep it is. A cursor of another list, or one that does
not decode, is a 422 problem naming the ``cursor`` field.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from fastapi import Query

from gridledger.api._context import INT64_MAX
from gridledger.errors import ValidationError
from gridledger.store import IntervalRow, Store, TradeRow
from gridledger.store import schema as t

Key = tuple[int | str, ...]
T = TypeVar("T")
MAX_CURSOR_CHARS = 512


def cursor_query() -> Any:
    return Query(
        None,
        max_length=MAX_CURSOR_CHARS,
        description="``next_cursor`` of the previous page; omit it for the first page",
    )


def encode_cursor(kind: str, key: Key) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, kind: str, shape: tuple[type, ...]) -> Key | None:
    """The key inside ``cursor`` (None for the first page); 422 unless it is one of ``kind``."""
    if cursor is None or cursor == "":
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        raise ValidationError("cursor", "not a cursor this server issued") from None
    if not isinstance(decoded, list) or not decoded or decoded[0] != kind:
        raise ValidationError("cursor", f"not a cursor of this list ({kind})")
    key = decoded[1:]
    if len(key) != len(shape) or not all(map(_fits, key, shape)):
        raise ValidationError("cursor", f"not a cursor of this list ({kind})")
    return tuple(key)


def _fits(value: object, want: type) -> bool:
    """``value`` is of type ``want``; an int also fits a 64-bit SQL column (else the database
    refuses the comparison with an error instead of a 422)."""
    if type(value) is not want:
        return False
    return not isinstance(value, int) or abs(value) <= INT64_MAX


def page(
    kind: str, rows: Sequence[T], limit: int, key: Callable[[T], Key], render: Callable[[T], Any]
) -> dict[str, Any]:
    """``rows`` holds up to ``limit + 1`` rows: one more than the page says whether one follows."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return {
        "items": [render(r) for r in shown],
        "next_cursor": encode_cursor(kind, key(shown[-1])) if more else None,
    }


def participants_after(store: Store, after: str | None, n: int) -> list[dict[str, Any]]:
    """Participants in address order after ``after``: public fields only."""
    c = t.participants.c
    query = sa.select(c.address, c.role, c.active).order_by(c.address).limit(n)
    if after is not None:
        query = query.where(c.address > after)
    with store.engine.connect() as conn:
        return [
            {"address": r.address, "role": r.role, "active": bool(r.active)}
            for r in conn.execute(query)
        ]


def intervals_before(store: Store, before: int | None, n: int) -> list[IntervalRow]:
    """Intervals newest first, older than ``before``."""
    c = t.intervals.c
    query = sa.select(t.intervals).order_by(c.interval_start_s.desc()).limit(n)
    if before is not None:
        query = query.where(c.interval_start_s < before)
    with store.engine.connect() as conn:
        return [IntervalRow(**r._mapping) for r in conn.execute(query)]


def trades_after(
    store: Store, interval_start_s: int, party: str | None, after: int | None, n: int
) -> list[TradeRow]:
    """One interval's trade lines in id order after ``after``; ``party``'s lines only if given."""
    c = t.trades.c
    query = (
        sa.select(t.trades).where(c.interval_start_s == interval_start_s).order_by(c.id).limit(n)
    )
    if party is not None:
        query = query.where(sa.or_(c.buyer == party, c.seller == party))
    if after is not None:
        query = query.where(c.id > after)
    with store.engine.connect() as conn:
        return [TradeRow(**r._mapping) for r in conn.execute(query)]


def after_key(rows: Sequence[T], key: Callable[[T], Key], after: Key | None, n: int) -> list[T]:
    """Up to ``n`` of ``rows`` (already in ``key`` order) whose key is greater than ``after``."""
    picked = [r for r in rows if after is None or key(r) > after]
    return picked[:n]
