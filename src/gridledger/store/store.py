"""The gridledger store: one SQLAlchemy engine, typed repository methods, one transaction each.

SQLite runs in WAL mode with ``synchronous=FULL`` and takes its write lock when a write
transaction begins (``BEGIN IMMEDIATE``), so two writers queue on ``busy_timeout`` instead of
failing half-way. On PostgreSQL a reading batch locks its meters' rows, which serialises
concurrent gateways per meter while the UNIQUE(meter, sequence) constraint stays the last word.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gridledger.errors import ConflictError, NotFoundError, StoreError, ValidationError
from gridledger.metering.reading import Reading, SignedReading
from gridledger.store import schema as t
from gridledger.store.rows import (
    AnchorRow,
    InsertOutcome,
    IntervalRow,
    Meter,
    NettingRootRow,
    OrderRow,
    Participant,
    SettlementPlanRow,
    SettlementRow,
    StatementLineRow,
    StoredReading,
    TradeRow,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_CHUNK = 500  # keeps IN (...) lists well under every driver's parameter limit
_READ_ONLY = "gridledger_read_only"


class Store:
    """Repository over the gridledger tables; create it with :meth:`Store.open`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def open(cls, db_url: str) -> Store:
        """Connect, create the tables if absent, and return the store."""
        engine = _create_engine(db_url)
        store = cls(engine)
        with store._write() as conn:
            t.metadata.create_all(conn)
        return store

    def close(self) -> None:
        self.engine.dispose()

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._translate_errors(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_READ_ONLY: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE_ERRORS as exc:
            raise StoreError(
                f"database {self.url} failed: {_first_line(exc)}; check that the server is "
                "running and reachable and that GRIDLEDGER_DB_URL is right"
            ) from exc
        except _INTEGRITY_ERRORS as exc:
            raise ConflictError(
                f"database constraint refused the write: {_first_line(exc)}"
            ) from exc

    # -- participants and meters -----------------------------------------------------------
    def add_participant(self, participant: Participant) -> Participant:
        with self._write() as conn:
            _insert_unique(
                conn, t.participants, _as_dict(participant), "participant", participant.address
            )
        return participant

    def add_meter(self, meter: Meter) -> Meter:
        if meter.rated_power_w <= 0:
            raise ValidationError("rated_power_w", f"must be positive, got {meter.rated_power_w}")
        with self._write() as conn:
            owner = conn.execute(
                sa.select(t.participants.c.address).where(t.participants.c.address == meter.owner)
            ).first()
            if owner is None:
                raise NotFoundError(f"owner {meter.owner} is not a registered participant")
            _insert_unique(conn, t.meters, _as_dict(meter), "meter", meter.address)
        return meter

    def set_meter_active(self, address: str, active: bool) -> None:
        with self._write() as conn:
            done = conn.execute(
                sa.update(t.meters).where(t.meters.c.address == address).values(active=active)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"meter {address} is not registered")

    def participants(self) -> list[Participant]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.participants).order_by(t.participants.c.address))
            return [Participant(**row._mapping) for row in rows]

    def participant(self, address: str) -> Participant:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.participants).where(t.participants.c.address == address)
            ).first()
        if row is None:
            raise NotFoundError(f"participant {address} is not registered")
        return Participant(**row._mapping)

    def meters(self) -> list[Meter]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.meters).order_by(t.meters.c.address))
            return [Meter(**row._mapping) for row in rows]

    def meters_by_address(self, addresses: Iterable[str]) -> dict[str, Meter]:
        """The registered meters among ``addresses`` (unknown ones are simply absent)."""
        wanted = sorted(set(addresses))
        found: dict[str, Meter] = {}
        with self._read() as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(sa.select(t.meters).where(t.meters.c.address.in_(chunk)))
                found.update((row.address, Meter(**row._mapping)) for row in rows)
        return found

    # -- readings --------------------------------------------------------------------------
    def insert_readings(
        self, batch: Sequence[SignedReading], received_at_s: int | None = None
    ) -> list[InsertOutcome]:
        """Store a batch in one transaction; one outcome per reading, in batch order.

        ``duplicate``: the same (meter, sequence) with the same content is already stored (or
        earlier in the batch); it is acknowledged and kept once. ``replay``: same (meter,
        sequence) with other content, or a sequence not above the meter's last stored one.
        """
        if not batch:
            return []
        received = int(time.time()) if received_at_s is None else received_at_s
        meters = sorted({signed.reading.meter for signed in batch})
        with self._write() as conn:
            self._lock_meters(conn, meters)
            outcomes, accepted = _classify(conn, batch)
            accepted = _refuse_closed_intervals(conn, outcomes, accepted)
            ids = _insert_reading_rows(conn, accepted, received)
        id_of = {_key(s): new_id for (_, s), new_id in zip(accepted, ids, strict=True)}
        return [
            _with_id(out, id_of.get(_key(signed)))
            for out, signed in zip(outcomes, batch, strict=True)
        ]

    def _lock_meters(self, conn: sa.Connection, meters: list[str]) -> None:
        """Refuse unknown meters; on PostgreSQL also lock their rows until commit."""
        found: set[str] = set()
        for chunk in _chunks(meters):
            query = sa.select(t.meters.c.address).where(t.meters.c.address.in_(chunk))
            if not self.is_sqlite:
                query = query.order_by(t.meters.c.address).with_for_update()
            found.update(conn.scalars(query))
        missing = [m for m in meters if m not in found]
        if missing:
            raise NotFoundError(f"meter {missing[0]} is not registered ({len(missing)} unknown)")

    def last_sequences(self, meters: Iterable[str]) -> dict[str, int]:
        """The highest stored sequence of each meter that has readings."""
        with self._read() as conn:
            return _last_sequences(conn, sorted(set(meters)))

    def readings_in_interval(self, interval_start_s: int) -> list[StoredReading]:
        query = (
            sa.select(t.readings)
            .where(t.readings.c.interval_start_s == interval_start_s)
            .order_by(t.readings.c.meter, t.readings.c.sequence)
        )
        return self._stored_readings(query)

    def readings_of_meter(self, meter: str, limit: int | None = None) -> list[StoredReading]:
        query = (
            sa.select(t.readings)
            .where(t.readings.c.meter == meter)
            .order_by(t.readings.c.sequence)
            .limit(limit)
        )
        return self._stored_readings(query)

    def reading(self, reading_id: int) -> StoredReading:
        found = self._stored_readings(sa.select(t.readings).where(t.readings.c.id == reading_id))
        if not found:
            raise NotFoundError(f"reading {reading_id} does not exist")
        return found[0]

    def interval_totals(self, interval_start_s: int) -> tuple[int, int]:
        """(imported_wh, exported_wh) summed over the stored readings of an interval."""
        c = t.readings.c
        query = sa.select(
            sa.func.coalesce(sa.func.sum(c.imported_wh), 0),
            sa.func.coalesce(sa.func.sum(c.exported_wh), 0),
        ).where(c.interval_start_s == interval_start_s)
        with self._read() as conn:
            imported, exported = conn.execute(query).one()
        return int(imported), int(exported)

    def _stored_readings(self, query: sa.Select[Any]) -> list[StoredReading]:
        with self._read() as conn:
            return [_stored_reading(row) for row in conn.execute(query)]

    # -- orders ----------------------------------------------------------------------------
    def insert_orders(self, orders: Sequence[OrderRow]) -> list[OrderRow]:
        """Store verified orders in one transaction; a reused (participant, nonce) is a conflict."""
        if not orders:
            return []
        rows = [tuple(getattr(o, c) for c in _ORDER_COLUMNS) for o in orders]
        try:
            with self._write() as conn:
                ids = _bulk_insert(conn, "orders", _ORDER_COLUMNS, rows)
        except ConflictError as exc:
            raise ConflictError(
                f"nonce: an order with the same (participant, nonce) is already stored ({exc})"
            ) from exc
        return [_replace(order, id=new_id) for order, new_id in zip(orders, ids, strict=True)]

    def orders_with_nonces(
        self, keys: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], OrderRow]:
        """The stored orders using any of the (participant, nonce) pairs, by pair: one read for
        a whole batch of orders (the pair is unique, and indexed)."""
        wanted = set(keys)
        if not wanted:
            return {}
        c = t.orders.c
        participants = sorted({participant for participant, _ in wanted})
        nonces = sorted({nonce for _, nonce in wanted})
        query = sa.select(t.orders).where(c.participant.in_(participants), c.nonce.in_(nonces))
        with self._read() as conn:
            rows = [OrderRow(**row._mapping) for row in conn.execute(query)]
        return {(r.participant, r.nonce): r for r in rows if (r.participant, r.nonce) in wanted}

    def orders_in_interval(self, interval_start_s: int) -> list[OrderRow]:
        query = (
            sa.select(t.orders)
            .where(t.orders.c.interval_start_s == interval_start_s)
            .order_by(t.orders.c.id)
        )
        with self._read() as conn:
            return [OrderRow(**row._mapping) for row in conn.execute(query)]

    # -- intervals -------------------------------------------------------------------------
    def save_interval(self, row: IntervalRow) -> IntervalRow:
        """Insert or replace the interval's row (keyed by interval_start_s)."""
        with self._write() as conn:
            self._upsert_interval(conn, row)
        return row

    def interval_status(self, interval_start_s: int) -> str | None:
        """The interval's status, or None when the store has no row for it."""
        c = t.intervals.c
        with self._read() as conn:
            status = conn.scalar(sa.select(c.status).where(c.interval_start_s == interval_start_s))
        return None if status is None else str(status)

    def intervals(self, limit: int = 50) -> list[IntervalRow]:
        """The newest ``limit`` intervals, newest first."""
        query = sa.select(t.intervals).order_by(t.intervals.c.interval_start_s.desc()).limit(limit)
        with self._read() as conn:
            return [IntervalRow(**row._mapping) for row in conn.execute(query)]

    def interval(self, interval_start_s: int) -> IntervalRow:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.intervals).where(t.intervals.c.interval_start_s == interval_start_s)
            ).first()
        if row is None:
            raise NotFoundError(f"interval {interval_start_s} has no record")
        return IntervalRow(**row._mapping)

    # -- trades and settlements ------------------------------------------------------------
    def save_trades(self, interval_start_s: int, trades: Sequence[TradeRow]) -> list[TradeRow]:
        """Replace the interval's trades with ``trades`` (re-clearing an interval is idempotent)."""
        for trade in trades:
            if trade.interval_start_s != interval_start_s:
                raise ValidationError(
                    "interval_start_s",
                    f"trade is for {trade.interval_start_s}, not {interval_start_s}",
                )
        with self._write() as conn:
            conn.execute(sa.delete(t.trades).where(t.trades.c.interval_start_s == interval_start_s))
            if not trades:
                return []
            rows = [tuple(getattr(trade, c) for c in _TRADE_COLUMNS) for trade in trades]
            ids = _bulk_insert(conn, "trades", _TRADE_COLUMNS, rows)
        return [_replace(trade, id=new_id) for trade, new_id in zip(trades, ids, strict=True)]

    def trades_in_interval(self, interval_start_s: int) -> list[TradeRow]:
        return self._trades(t.trades.c.interval_start_s == interval_start_s)

    def trades_of(self, participant: str, limit: int = 100) -> list[TradeRow]:
        """The participant's trades as buyer or seller, newest first."""
        c = t.trades.c
        return self._trades(sa.or_(c.buyer == participant, c.seller == participant), limit)

    def _trades(self, where: sa.ColumnElement[bool], limit: int | None = None) -> list[TradeRow]:
        c = t.trades.c
        query = (
            sa.select(t.trades).where(where).order_by(c.interval_start_s.desc(), c.id).limit(limit)
        )
        with self._read() as conn:
            return [TradeRow(**row._mapping) for row in conn.execute(query)]

    def save_statement_lines(self, lines: Sequence[StatementLineRow]) -> None:
        if lines:
            with self._write() as conn:
                conn.execute(
                    sa.insert(t.statement_lines), [_as_dict(line, drop=("id",)) for line in lines]
                )

    def statement_lines_of(
        self, participant: str, from_s: int = 0, to_s: int = 2**62
    ) -> list[StatementLineRow]:
        """The participant's settled lines with ``from_s <= interval_start_s < to_s``, in order."""
        c = t.statement_lines.c
        query = (
            sa.select(t.statement_lines)
            .where(
                c.participant == participant,
                c.interval_start_s >= from_s,
                c.interval_start_s < to_s,
            )
            .order_by(c.interval_start_s, c.id)
        )
        with self._read() as conn:
            return [StatementLineRow(**row._mapping) for row in conn.execute(query)]

    def set_meta(self, key: str, value: str) -> None:
        """Remember a small fact about this store (e.g. the chain deployment it belongs to)."""
        with self._write() as conn:
            conn.execute(sa.delete(t.meta).where(t.meta.c.key == key))
            conn.execute(sa.insert(t.meta).values(key=key, value=value))

    def meta(self, key: str) -> str | None:
        with self._read() as conn:
            value = conn.scalar(sa.select(t.meta.c.value).where(t.meta.c.key == key))
        return None if value is None else str(value)

    def save_settlement(
        self, interval_start_s: int, deltas: Mapping[str, int], tx_hash: str | None
    ) -> list[SettlementRow]:
        """Record the interval's balance changes and mark it settled, exactly once."""
        if sum(deltas.values()) != 0:
            raise ValidationError("deltas", f"must sum to zero, sum is {sum(deltas.values())}")
        rows = [SettlementRow(interval_start_s, p, d) for p, d in sorted(deltas.items())]
        with self._write() as conn:
            status = conn.scalar(
                sa.select(t.intervals.c.status).where(
                    t.intervals.c.interval_start_s == interval_start_s
                )
            )
            if status is None:
                raise NotFoundError(f"interval {interval_start_s} has no record to settle")
            if status == "settled":
                raise ConflictError(f"interval {interval_start_s} is already settled")
            if rows:
                conn.execute(sa.insert(t.settlements), [_as_dict(r) for r in rows])
            conn.execute(
                sa.update(t.intervals)
                .where(t.intervals.c.interval_start_s == interval_start_s)
                .values(status="settled", settle_tx=tx_hash)
            )
        return rows

    def settlements_in_interval(self, interval_start_s: int) -> list[SettlementRow]:
        return self._settlements(t.settlements.c.interval_start_s == interval_start_s)

    def settlements_of(self, participant: str, limit: int = 100) -> list[SettlementRow]:
        return self._settlements(t.settlements.c.participant == participant, limit)

    def _settlements(
        self, where: sa.ColumnElement[bool], limit: int | None = None
    ) -> list[SettlementRow]:
        c = t.settlements.c
        query = (
            sa.select(t.settlements)
            .where(where)
            .order_by(c.interval_start_s.desc(), c.participant)
            .limit(limit)
        )
        with self._read() as conn:
            return [SettlementRow(**row._mapping) for row in conn.execute(query)]

    # -- settlement plans, netting roots and claims ----------------------------------------
    def freeze_interval(self, row: IntervalRow, plan: SettlementPlanRow) -> SettlementPlanRow:
        """Fix the interval's roots and settlement plan before anything goes on-chain.

        One transaction: the row becomes ``committed`` (later readings are refused as late) and
        the plan is written; a plan already there is kept and returned, so a restart re-sends
        exactly what was planned, never a recomputation.
        """
        c = t.settlement_plans.c
        with self._write() as conn:
            found = conn.execute(
                sa.select(t.settlement_plans).where(c.interval_start_s == row.interval_start_s)
            ).first()
            if found is not None:
                return SettlementPlanRow(**found._mapping)
            self._upsert_interval(conn, row)
            conn.execute(sa.insert(t.settlement_plans).values(_as_dict(plan)))
        return plan

    def settlement_plan(self, interval_start_s: int) -> SettlementPlanRow | None:
        c = t.settlement_plans.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.settlement_plans).where(c.interval_start_s == interval_start_s)
            ).first()
        return None if row is None else SettlementPlanRow(**row._mapping)

    def record_settlement(
        self,
        row: IntervalRow,
        deltas: Mapping[str, int],
        lines: Sequence[StatementLineRow],
        root: NettingRootRow | None = None,
        positions: Mapping[str, int] | None = None,
    ) -> None:
        """Everything a settled interval leaves in the store, in one transaction, once.

        ``root`` and ``positions`` (the new cumulative nets of the accounts it changed) are
        the netting-root path's; the interval row is written with status ``settled``.
        """
        if sum(deltas.values()) != 0:
            raise ValidationError("deltas", f"must sum to zero, sum is {sum(deltas.values())}")
        if row.status != "settled":
            raise ValidationError("status", f"a recorded settlement is settled, not {row.status}")
        c = t.intervals.c
        with self._write() as conn:
            status = conn.scalar(
                sa.select(c.status).where(c.interval_start_s == row.interval_start_s)
            )
            if status == "settled":
                raise ConflictError(f"interval {row.interval_start_s} is already settled")
            self._upsert_interval(conn, row)
            settled = [
                {"interval_start_s": row.interval_start_s, "participant": p, "delta_micro": d}
                for p, d in sorted(deltas.items())
            ]
            for table, values in (
                (t.settlements, settled),
                (t.statement_lines, [_as_dict(x, drop=("id",)) for x in lines]),
            ):
                if values:
                    conn.execute(sa.insert(table), values)
            if root is not None:
                conn.execute(sa.insert(t.netting_roots).values(_as_dict(root)))
                moved = [
                    {"root_seq": root.root_seq, "account": a, "cumulative_micro": v}
                    for a, v in sorted((positions or {}).items())
                ]
                if moved:
                    conn.execute(sa.insert(t.netting_positions), moved)

    def _upsert_interval(self, conn: sa.Connection, row: IntervalRow) -> None:
        values = _as_dict(row)
        insert = sqlite.insert(t.intervals) if self.is_sqlite else postgresql.insert(t.intervals)
        changed = {k: v for k, v in values.items() if k != "interval_start_s"}
        conn.execute(
            insert.values(values).on_conflict_do_update(
                index_elements=["interval_start_s"], set_=changed
            )
        )

    def netting_roots(self, from_seq: int = 1, to_seq: int | None = None) -> list[NettingRootRow]:
        """The recorded roots with ``from_seq <= root_seq <= to_seq``, in order."""
        c = t.netting_roots.c
        query = sa.select(t.netting_roots).where(c.root_seq >= from_seq).order_by(c.root_seq)
        if to_seq is not None:
            query = query.where(c.root_seq <= to_seq)
        with self._read() as conn:
            return [NettingRootRow(**row._mapping) for row in conn.execute(query)]

    def latest_netting_root(self) -> NettingRootRow | None:
        c = t.netting_roots.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.netting_roots).order_by(c.root_seq.desc()).limit(1)
            ).first()
        return None if row is None else NettingRootRow(**row._mapping)

    def netting_root_of_interval(self, interval_start_s: int) -> NettingRootRow | None:
        c = t.netting_roots.c
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.netting_roots).where(c.interval_start_s == interval_start_s)
            ).first()
        return None if row is None else NettingRootRow(**row._mapping)

    def netting_cumulative(self, root_seq: int, account: str | None = None) -> dict[str, int]:
        """Every account's (or one account's) cumulative root-path net as of ``root_seq``."""
        c = t.netting_positions.c
        newest = sa.select(c.account, sa.func.max(c.root_seq).label("root_seq")).where(
            c.root_seq <= root_seq
        )
        if account is not None:
            newest = newest.where(c.account == account)
        latest = newest.group_by(c.account).subquery()
        query = sa.select(c.account, c.cumulative_micro).join(
            latest, sa.and_(c.account == latest.c.account, c.root_seq == latest.c.root_seq)
        )
        with self._read() as conn:
            return {str(a): int(v) for a, v in conn.execute(query)}

    def netting_claims(self) -> dict[str, tuple[int, int]]:
        """account -> (applied_micro, claimed_root_seq), as the chain's claims left them."""
        c = t.netting_claims.c
        with self._read() as conn:
            rows = conn.execute(sa.select(c.account, c.applied_micro, c.claimed_root_seq))
            return {str(a): (int(v), int(s)) for a, v, s in rows}

    def record_claims(
        self, claims: Sequence[tuple[str, int, int]], cursor_key: str, cursor: int
    ) -> None:
        """Apply claims seen on-chain, (account, root_seq, delta_micro) each, and move the
        cursor of the scan that found them, in one transaction (a rescan adds nothing twice)."""
        c = t.netting_claims.c
        with self._write() as conn:
            known = (
                {
                    str(a): (int(v), int(s))
                    for a, v, s in conn.execute(
                        sa.select(c.account, c.applied_micro, c.claimed_root_seq)
                    )
                }
                if claims
                else {}
            )
            changed: dict[str, tuple[int, int]] = {}
            for account, root_seq, delta in claims:
                applied, seq = changed.get(account, known.get(account, (0, 0)))
                if root_seq > seq:
                    changed[account] = (applied + delta, root_seq)
            for chunk in _chunks(sorted(changed)):
                conn.execute(sa.delete(t.netting_claims).where(c.account.in_(chunk)))
            if changed:
                conn.execute(
                    sa.insert(t.netting_claims),
                    [
                        {"account": a, "applied_micro": v, "claimed_root_seq": s}
                        for a, (v, s) in sorted(changed.items())
                    ],
                )
            conn.execute(sa.delete(t.meta).where(t.meta.c.key == cursor_key))
            conn.execute(sa.insert(t.meta).values(key=cursor_key, value=str(cursor)))

    # -- anchors ---------------------------------------------------------------------------
    def anchor(self, interval_start_s: int) -> AnchorRow | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.anchors).where(t.anchors.c.interval_start_s == interval_start_s)
            ).first()
        return None if row is None else AnchorRow(**row._mapping)

    def record_anchor_pending(self, interval_start_s: int, readings_root: str) -> AnchorRow:
        """Write the intent to anchor ``readings_root`` before anything is sent to the chain."""
        row = AnchorRow(interval_start_s, readings_root, None, "pending")
        with self._write() as conn:
            _insert_unique(conn, t.anchors, _as_dict(row), "anchor", str(interval_start_s))
        return row

    def mark_anchor_mined(self, interval_start_s: int, tx_hash: str | None) -> AnchorRow:
        with self._write() as conn:
            conn.execute(
                sa.update(t.anchors)
                .where(t.anchors.c.interval_start_s == interval_start_s)
                .values(status="mined", tx_hash=tx_hash)
            )
            row = conn.execute(
                sa.select(t.anchors).where(t.anchors.c.interval_start_s == interval_start_s)
            ).first()
        if row is None:
            raise NotFoundError(f"interval {interval_start_s} has no pending anchor")
        return AnchorRow(**row._mapping)


# -- engine ---------------------------------------------------------------------------------
def _create_engine(db_url: str) -> sa.Engine:
    try:
        url = sa.make_url(db_url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"db_url: not a database URL: {db_url!r} ({exc})") from None
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return _checked(sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10))
    raise StoreError(
        f"db_url: unsupported database {url.get_backend_name()!r}; "
        "use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
    )


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so we can BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return _checked(engine)


def _checked(engine: sa.Engine) -> sa.Engine:
    try:
        with engine.connect():
            pass
    except sa.exc.SQLAlchemyError as exc:
        shown = engine.url.render_as_string(hide_password=True)
        engine.dispose()
        raise StoreError(
            f"cannot connect to {shown}: {_first_line(exc)}; start the database "
            "server or fix GRIDLEDGER_DB_URL"
        ) from exc
    return engine


# -- helpers --------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _as_dict(row: Any, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__ if name not in drop}


def _replace(row: Any, **changes: Any) -> Any:
    return dataclasses.replace(row, **changes)


def _key(signed: SignedReading) -> tuple[str, int]:
    return signed.reading.meter, signed.reading.sequence


def _with_id(outcome: InsertOutcome | None, new_id: int | None) -> InsertOutcome:
    """Fill in the row id of readings accepted in this batch (and of their in-batch repeats)."""
    if outcome is None:
        assert new_id is not None
        return InsertOutcome("accepted", new_id)
    if outcome.status == "duplicate" and outcome.reading_id is None:
        return InsertOutcome("duplicate", new_id, outcome.reason)
    return outcome


def _insert_unique(
    conn: sa.Connection, table: sa.Table, values: dict[str, Any], what: str, key: str
) -> None:
    exists = conn.execute(
        sa.select(table).where(*(col == values[col.name] for col in table.primary_key.columns))
    ).first()
    if exists is not None:
        raise ConflictError(f"{what} {key} already exists")
    conn.execute(sa.insert(table).values(values))


def _last_sequences(conn: sa.Connection, meters: Sequence[str]) -> dict[str, int]:
    return {meter: seq for meter, (seq, _) in _last_readings(conn, meters).items()}


def _last_readings(conn: sa.Connection, meters: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(sequence, interval_start_s) of each meter's highest stored sequence."""
    c = t.readings.c
    last: dict[str, tuple[int, int]] = {}
    for chunk in _chunks(meters):
        newest = (
            sa.select(c.meter, sa.func.max(c.sequence).label("sequence"))
            .where(c.meter.in_(chunk))
            .group_by(c.meter)
            .subquery()
        )
        query = sa.select(c.meter, c.sequence, c.interval_start_s).join(
            newest, sa.and_(c.meter == newest.c.meter, c.sequence == newest.c.sequence)
        )
        last.update((m, (int(q), int(i))) for m, q, i in conn.execute(query))
    return last


_Key = tuple[str, int]


def _stored_contents(
    conn: sa.Connection, batch: Sequence[SignedReading], last: Mapping[str, tuple[int, int]]
) -> dict[_Key, tuple[Reading, int | None]]:
    """Stored readings (and ids) for the batch's keys that may already exist."""
    keys = sorted(
        {
            (s.reading.meter, s.reading.sequence)
            for s in batch
            if s.reading.sequence <= last.get(s.reading.meter, (-1, 0))[0]
        }
    )
    c = t.readings.c
    found: dict[_Key, tuple[Reading, int | None]] = {}
    for chunk in _chunks(keys):
        rows = conn.execute(sa.select(t.readings).where(sa.tuple_(c.meter, c.sequence).in_(chunk)))
        for row in rows:
            stored = _stored_reading(row)
            found[(row.meter, row.sequence)] = (stored.reading, stored.id)
    return found


class _Classifier:
    """Duplicate / replay / accept decisions for one batch, inside its transaction.

    Per meter, sequence and interval must rise together. A new sequence above the last stored
    one needs a later interval; a missing sequence below it (a reading lost in transit and
    resent) is accepted only if its interval lies strictly between its stored neighbours'.
    Anything else re-uses a sequence or an interval: a replay.
    """

    def __init__(self, conn: sa.Connection, batch: Sequence[SignedReading]) -> None:
        self.conn = conn
        meters = sorted({s.reading.meter for s in batch})
        self.last = _last_readings(conn, meters)
        self.known = _stored_contents(conn, batch, self.last)
        self.new_in_batch: dict[str, list[tuple[int, int]]] = {}

    def decide(self, reading: Reading) -> InsertOutcome | None:
        key = (reading.meter, reading.sequence)
        if key in self.known:
            stored, stored_id = self.known[key]
            if stored == reading:
                return InsertOutcome("duplicate", stored_id, "already stored")
            return InsertOutcome(
                "replay", None, f"sequence {reading.sequence} is stored with different content"
            )
        last_seq, last_start = self.last.get(reading.meter, (-1, -1))
        if reading.sequence > last_seq:
            if reading.interval_start_s <= last_start:
                return InsertOutcome(
                    "replay",
                    None,
                    f"interval {reading.interval_start_s} is not "
                    f"after that of the last stored sequence {last_seq}",
                )
            self.last[reading.meter] = (reading.sequence, reading.interval_start_s)
        elif not self._fits_between_neighbours(reading):
            return InsertOutcome(
                "replay",
                None,
                f"sequence {reading.sequence} is below the last "
                f"stored {last_seq} and its interval does not fit the gap",
            )
        self.known[key] = (reading, None)
        self.new_in_batch.setdefault(reading.meter, []).append(
            (reading.sequence, reading.interval_start_s)
        )
        return None

    def _fits_between_neighbours(self, reading: Reading) -> bool:
        c = t.readings.c
        mine = c.meter == reading.meter
        below = self.conn.execute(
            sa.select(c.sequence, c.interval_start_s)
            .where(mine, c.sequence < reading.sequence)
            .order_by(c.sequence.desc())
            .limit(1)
        ).first()
        above = self.conn.execute(
            sa.select(c.sequence, c.interval_start_s)
            .where(mine, c.sequence > reading.sequence)
            .order_by(c.sequence)
            .limit(1)
        ).first()
        neighbours = [tuple(row) for row in (below, above) if row is not None]
        neighbours += self.new_in_batch.get(reading.meter, [])
        return all(
            (seq < reading.sequence) == (start < reading.interval_start_s)
            and start != reading.interval_start_s
            for seq, start in neighbours
        )


def _refuse_closed_intervals(
    conn: sa.Connection,
    outcomes: list[InsertOutcome | None],
    accepted: list[tuple[int, SignedReading]],
) -> list[tuple[int, SignedReading]]:
    """A new reading for an interval already committed on-chain would change a published root:
    it is refused as ``late`` (a resent copy of a stored reading stays a ``duplicate``)."""
    starts = sorted({signed.reading.interval_start_s for _, signed in accepted})
    c = t.intervals.c
    closed: set[int] = set()
    for chunk in _chunks(starts):
        query = sa.select(c.interval_start_s).where(
            c.interval_start_s.in_(chunk), c.status.in_(("committed", "settled"))
        )
        closed.update(int(start) for start in conn.scalars(query))
    kept = []
    for position, signed in accepted:
        if signed.reading.interval_start_s in closed:
            outcomes[position] = InsertOutcome("late", None, "interval already committed on-chain")
        else:
            kept.append((position, signed))
    return kept


def _classify(
    conn: sa.Connection, batch: Sequence[SignedReading]
) -> tuple[list[InsertOutcome | None], list[tuple[int, SignedReading]]]:
    """Decide each reading in batch order; ``None`` marks an accepted one."""
    classifier = _Classifier(conn, batch)
    outcomes: list[InsertOutcome | None] = []
    accepted: list[tuple[int, SignedReading]] = []
    for position, signed in enumerate(batch):
        outcome = classifier.decide(signed.reading)
        outcomes.append(outcome)
        if outcome is None:
            accepted.append((position, signed))
    return outcomes, accepted


# Through SQLAlchemy, or raised by the driver's own cursor in _bulk_insert.
_INTEGRITY_ERRORS = (sa.exc.IntegrityError, sqlite3.IntegrityError, psycopg.IntegrityError)
_UNAVAILABLE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
_ORDER_COLUMNS = tuple(f.name for f in dataclasses.fields(OrderRow) if f.name != "id")
_TRADE_COLUMNS = tuple(f.name for f in dataclasses.fields(TradeRow) if f.name != "id")
_READING_COLUMNS = (
    "meter",
    "sequence",
    "interval_start_s",
    "interval_length_s",
    "imported_wh",
    "exported_wh",
    "signature",
    "received_at_s",
)


def _insert_reading_rows(
    conn: sa.Connection, accepted: Sequence[tuple[int, SignedReading]], received_at_s: int
) -> list[int]:
    rows = [
        (
            r.meter,
            r.sequence,
            r.interval_start_s,
            r.interval_length_s,
            r.imported_wh,
            r.exported_wh,
            s.signature_hex,
            received_at_s,
        )
        for _, s in accepted
        for r in (s.reading,)
    ]
    return _bulk_insert(conn, "readings", _READING_COLUMNS, rows)


def _bulk_insert(
    conn: sa.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> list[int]:
    """Insert in bulk with ids reserved first: one statement per batch, not one per row (nor
    one long multi-row INSERT, whose text the driver parses again for every batch).

    SQLite: the transaction holds the database's write lock (BEGIN IMMEDIATE), so the ids after
    the current maximum are ours. PostgreSQL: the ids come from the table's sequence in one
    query, then the rows go in with one COPY. A unique key violated raises the driver's
    IntegrityError (see ``_INTEGRITY_ERRORS``).
    """
    if not rows:
        return []
    ids = _reserve_ids(conn, table, len(rows))
    names = ", ".join(("id", *columns))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            marks = ", ".join("?" * (len(columns) + 1))
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            cursor.executemany(statement, [(i, *row) for i, row in zip(ids, rows, strict=True)])
        else:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for new_id, row in zip(ids, rows, strict=True):
                    copy.write_row((new_id, *row))
    finally:
        cursor.close()
    return ids


def _reserve_ids(conn: sa.Connection, table: str, n: int) -> list[int]:
    if conn.dialect.name == "sqlite":
        column = t.metadata.tables[table].c.id
        top = int(conn.scalar(sa.select(sa.func.coalesce(sa.func.max(column), 0))) or 0)
        return list(range(top + 1, top + 1 + n))
    query = sa.text(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"
    )
    return sorted(int(i) for i in conn.scalars(query, {"n": n}))


def _stored_reading(row: sa.Row[Any]) -> StoredReading:
    reading = Reading(
        row.meter,
        row.sequence,
        row.interval_start_s,
        row.interval_length_s,
        row.imported_wh,
        row.exported_wh,
    )
    return StoredReading(row.id, reading, row.signature, row.received_at_s)
