"""Erasure on request: a participant's off-chain personal data leaves the store for good.

Erased: its meter readings, its orders, its statement lines, its label and grid position.
Kept: the trades it took part in (they are also the counterparty's records; its address in them
is a pseudonym), its settlement amounts (bookkeeping that the law asks to keep, and what the
chain moved anyway) and the access log (the record of who read its data).

What stays on-chain are roots over salted leaves, which reveal nothing without the data. So
that the other participants' statements still verify, the erased records' leaf hashes are kept
(``erased_leaves``): a leaf hash is a salted commitment, no reading or order can be read back
from it, and it is exactly what the sibling hashes of the others' proofs already contain.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from gridledger.errors import ConflictError
from gridledger.market import order_leaf, order_salt
from gridledger.metering import reading_leaf, reading_salt
from gridledger.node.interval import signed_order
from gridledger.privacy.access_log import record_access
from gridledger.privacy.keys import leaf_key_of
from gridledger.privacy.tables import ensure_tables, erased_leaves, erasures
from gridledger.store import OrderRow, Store
from gridledger.store import schema as t


@dataclass(frozen=True)
class ErasureReport:
    participant: str
    readings: int
    orders: int
    statement_lines: int
    intervals: tuple[int, ...]


def erased_leaves_of(store: Store, interval_start_s: int, kind: str) -> list[bytes]:
    """Leaf hashes of erased ``kind`` records ("order", "reading") of one interval."""
    ensure_tables(store)
    c = erased_leaves.c
    query = sa.select(c.leaf).where((c.interval_start_s == interval_start_s) & (c.kind == kind))
    with store.engine.connect() as conn:
        return [bytes.fromhex(leaf[2:]) for leaf in conn.scalars(query)]


def erase_participant(store: Store, participant: str, now_s: int | None = None) -> ErasureReport:
    """Erase ``participant``'s off-chain personal data (see the module docstring); refused
    while one of its intervals is not settled yet (its data is still needed to settle)."""
    store.participant(participant)  # NotFoundError names an unknown address
    key = leaf_key_of(store)
    meters = [m.address for m in store.meters() if m.owner == participant]
    readings = [s for m in meters for s in store.readings_of_meter(m)]
    orders = _orders_of(store, participant)
    intervals = sorted(
        {s.reading.interval_start_s for s in readings} | {r.interval_start_s for r in orders}
    )
    open_ = [s for s in intervals if store.interval_status(s) != "settled"]
    if open_:
        raise ConflictError(
            f"participant: {participant} has data in intervals not settled yet ({open_[0]}, ...): "
            "erase it once they are settled"
        )
    tombstones = [
        (
            s.reading.interval_start_s,
            "reading",
            reading_leaf(s.reading, reading_salt(key, s.reading)),
        )
        for s in readings
    ]
    for row in orders:
        order = signed_order(row).order
        tombstones.append(
            (row.interval_start_s, "order", order_leaf(order, order_salt(key, order)))
        )
    ensure_tables(store)
    with store.engine.begin() as conn:
        _keep_leaves(conn, tombstones)
        conn.execute(sa.delete(t.readings).where(t.readings.c.meter.in_(meters)))
        conn.execute(sa.delete(t.orders).where(t.orders.c.participant == participant))
        lines = conn.execute(
            sa.delete(t.statement_lines).where(t.statement_lines.c.participant == participant)
        ).rowcount
        conn.execute(
            sa.update(t.participants)
            .where(t.participants.c.address == participant)
            .values(label="", grid_node=0)
        )
        conn.execute(
            sa.insert(erasures).values(
                participant=participant, erased_at_s=int(time.time()) if now_s is None else now_s
            )
        )
    record_access(
        store, reader="operator", reader_role="operator", subject=participant, what="erasure"
    )
    return ErasureReport(participant, len(readings), len(orders), lines, tuple(intervals))


def _orders_of(store: Store, participant: str) -> list[OrderRow]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t.orders).where(t.orders.c.participant == participant))
        return [OrderRow(**r._mapping) for r in rows]


def _keep_leaves(conn: sa.Connection, tombstones: Iterable[tuple[int, str, bytes]]) -> None:
    rows = [
        {"interval_start_s": start, "kind": kind, "leaf": "0x" + leaf.hex()}
        for start, kind, leaf in tombstones
    ]
    if rows:
        conn.execute(sa.insert(erased_leaves), rows)
