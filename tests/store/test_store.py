"""The store on real SQLite and PostgreSQL: constraints, outcomes, atomicity, repositories."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from gridledger.errors import ConflictError, NotFoundError, StoreError, ValidationError
from gridledger.store import (
    IntervalRow,
    Meter,
    OrderRow,
    Participant,
    Store,
    TradeRow,
)
from tests.metering.factory import T0, fleet, register, signed
from tests.support.services import free_port


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


def test_open_is_idempotent_and_keeps_data(db_url: str) -> None:
    first = Store.open(db_url)
    first.add_participant(Participant("0x" + "11" * 20, "prosumer", 3, "a"))
    first.close()
    again = Store.open(db_url)
    assert [p.grid_node for p in again.participants()] == [3]
    again.close()


def test_unreachable_postgres_says_what_to_do() -> None:
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    with pytest.raises(StoreError, match=r"cannot connect to .*GRIDLEDGER_DB_URL"):
        Store.open(url)


def test_unsupported_url_is_refused() -> None:
    with pytest.raises(StoreError, match="unsupported database"):
        Store.open("mysql://x@localhost/db")


def test_sqlite_runs_wal_full_sync_with_foreign_keys(tmp_path: object) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/sub/dir/g.sqlite")
    with store.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    store.close()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 2,
        "foreign_keys": 1,
        "busy_timeout": 30_000,
    }


def test_meter_sequence_is_unique_in_the_database_itself(store: Store) -> None:
    [meter] = fleet(1)
    register(store, [meter])
    store.insert_readings([signed(meter, 1)])
    row = {
        "meter": meter.address,
        "sequence": 1,
        "interval_start_s": T0,
        "interval_length_s": 900,
        "imported_wh": 9,
        "exported_wh": 0,
        "signature": "0x00",
        "received_at_s": 0,
    }
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO readings (meter, sequence, interval_start_s, interval_length_s, "
                "imported_wh, exported_wh, signature, received_at_s) VALUES (:meter, :sequence, "
                ":interval_start_s, :interval_length_s, :imported_wh, :exported_wh, :signature, "
                ":received_at_s)"
            ),
            row,
        )


def test_batch_outcomes_accept_duplicate_and_replay(store: Store) -> None:
    a, b = fleet(2)
    register(store, [a, b])
    first = store.insert_readings([signed(a, 1, 1), signed(a, 2, 2), signed(b, 5)])
    assert [o.status for o in first] == ["accepted"] * 3
    again = store.insert_readings(
        [
            signed(a, 2, 2),  # same content re-sent
            signed(a, 2, 2, imported_wh=999),  # same key, other content
            signed(a, 1, interval=7),  # below the last stored sequence, new content
            signed(b, 6, interval=1),
            signed(b, 6, interval=1),  # new, then repeated in the batch
            signed(b, 4),  # sequence going backwards, same interval as 5
        ]
    )
    assert [o.status for o in again] == [
        "duplicate",
        "replay",
        "replay",
        "accepted",
        "duplicate",
        "replay",
    ]
    assert again[0].reading_id == first[1].reading_id
    assert again[4].reading_id == again[3].reading_id is not None
    assert [r.reading.sequence for r in store.readings_of_meter(a.address)] == [1, 2]
    assert store.reading(first[1].reading_id or 0).reading.imported_wh == 500
    assert store.last_sequences([a.address, b.address]) == {a.address: 2, b.address: 6}


def test_sequence_and_interval_must_rise_together(store: Store) -> None:
    [a] = fleet(1)
    register(store, [a])
    store.insert_readings([signed(a, 1, interval=1), signed(a, 5, interval=5)])
    outcomes = store.insert_readings(
        [
            signed(a, 6, interval=5),  # new sequence, interval already reported
            signed(a, 3, interval=3),  # lost in transit and resent late: fills the gap
            signed(a, 4, interval=3),  # a second reading for interval 3
            signed(a, 2, interval=6),  # a low sequence claiming a later interval
            signed(a, 2, interval=2),  # fits between 1 and 3
        ]
    )
    assert [o.status for o in outcomes] == ["replay", "accepted", "replay", "replay", "accepted"]
    assert [
        (r.reading.sequence, r.reading.interval_start_s - T0)
        for r in store.readings_of_meter(a.address)
    ] == [(1, 900), (2, 1800), (3, 2700), (5, 4500)]


def test_a_batch_with_an_unknown_meter_stores_nothing(store: Store) -> None:
    known, unknown = fleet(2)
    register(store, [known])
    with pytest.raises(NotFoundError, match=unknown.address):
        store.insert_readings([signed(known, 1), signed(unknown, 1)])
    assert store.readings_of_meter(known.address) == []


def test_reading_lookup_and_interval_queries(store: Store) -> None:
    meters = fleet(3)
    register(store, meters)
    store.insert_readings(
        [
            signed(m, s, interval=s, imported_wh=100 * s + i)
            for i, m in enumerate(meters)
            for s in (1, 2)
        ]
    )
    in_first = store.readings_in_interval(T0 + 900)
    assert sorted(r.reading.imported_wh for r in in_first) == [100, 101, 102]
    assert store.interval_totals(T0 + 1800) == (603, 0)
    assert store.interval_totals(T0 + 99 * 900) == (0, 0)
    assert in_first[0].signed.signature.hex() == in_first[0].signature[2:]
    with pytest.raises(NotFoundError):
        store.reading(10_000)


def test_meters_need_a_registered_owner_and_positive_power(store: Store) -> None:
    owner = "0x" + "22" * 20
    with pytest.raises(NotFoundError, match="owner"):
        store.add_meter(Meter("0x" + "33" * 20, owner, 5000))
    store.add_participant(Participant(owner, "prosumer", 1))
    with pytest.raises(ValidationError, match="rated_power_w"):
        store.add_meter(Meter("0x" + "33" * 20, owner, 0))
    store.add_meter(Meter("0x" + "33" * 20, owner, 5000))
    with pytest.raises(ConflictError, match="already exists"):
        store.add_meter(Meter("0x" + "33" * 20, owner, 5000))
    store.set_meter_active("0x" + "33" * 20, False)
    assert store.meters() == [Meter("0x" + "33" * 20, owner, 5000, False)]
    assert store.meters_by_address(["0x" + "33" * 20, "0x" + "44" * 20]).keys() == {
        "0x" + "33" * 20
    }


def test_orders_keep_participant_nonce_unique(store: Store) -> None:
    p = "0x" + "55" * 20
    order = OrderRow(T0, p, "buy", 1000, 120_000, 1, "0xab")
    [stored] = store.insert_orders([order, OrderRow(T0, p, "sell", 5, 90_000, 2, "0xcd")])[:1]
    assert stored.id is not None and stored.energy_wh == 1000
    with pytest.raises(ConflictError, match="nonce"):
        store.insert_orders([OrderRow(T0 + 900, p, "buy", 1, 1, 3, "0x"), order])
    assert [o.nonce for o in store.orders_in_interval(T0)] == [1, 2]
    assert store.orders_in_interval(T0 + 900) == []


def test_intervals_upsert_and_list_newest_first(store: Store) -> None:
    store.save_interval(IntervalRow(T0))
    root, tx = "0x" + "a" * 64, "0x" + "b" * 64
    store.save_interval(IntervalRow(T0 + 900, "cleared", 110_000, 4200, orders_root=root))
    store.save_interval(IntervalRow(T0, "committed", None, 0, commit_tx=tx, gas_used=7))
    assert [i.interval_start_s for i in store.intervals()] == [T0 + 900, T0]
    assert store.intervals(limit=1)[0].clearing_price_micro_per_kwh == 110_000
    assert store.interval(T0).status == "committed" and store.interval(T0).gas_used == 7
    with pytest.raises(NotFoundError):
        store.interval(T0 + 1800)


def test_trades_replace_per_interval_and_query_by_participant(store: Store) -> None:
    buyer, seller, other = ("0x" + c * 40 for c in "abc")
    trade = TradeRow(T0, buyer, seller, 700, 100_000, 1400)
    store.save_trades(T0, [trade, trade])
    saved = store.save_trades(T0, [trade])
    store.save_trades(T0 + 900, [TradeRow(T0 + 900, other, seller, 1, 2, 0)])
    assert [t.id for t in store.trades_in_interval(T0)] == [saved[0].id]
    assert [t.interval_start_s for t in store.trades_of(seller)] == [T0 + 900, T0]
    assert [t.buyer for t in store.trades_of(buyer)] == [buyer]
    with pytest.raises(ValidationError, match="interval_start_s"):
        store.save_trades(T0, [TradeRow(T0 + 900, buyer, seller, 1, 1, 0)])


def test_settlement_happens_once_and_balances(store: Store) -> None:
    a, b = "0x" + "a" * 40, "0x" + "b" * 40
    with pytest.raises(NotFoundError):
        store.save_settlement(T0, {a: 5, b: -5}, None)
    store.save_interval(IntervalRow(T0, "committed"))
    with pytest.raises(ValidationError, match="sum to zero"):
        store.save_settlement(T0, {a: 5, b: -4}, None)
    store.save_settlement(T0, {a: 5, b: -5}, "0x" + "1" * 64)
    with pytest.raises(ConflictError, match="already settled"):
        store.save_settlement(T0, {a: 5, b: -5}, None)
    assert store.interval(T0).status == "settled"
    assert store.interval(T0).settle_tx == "0x" + "1" * 64
    assert [(s.participant, s.delta_micro) for s in store.settlements_in_interval(T0)] == [
        (a, 5),
        (b, -5),
    ]
    assert [s.delta_micro for s in store.settlements_of(b)] == [-5]


def test_anchor_rows_go_pending_then_mined(store: Store) -> None:
    assert store.anchor(T0) is None
    store.record_anchor_pending(T0, "0x" + "c" * 64)
    with pytest.raises(ConflictError):
        store.record_anchor_pending(T0, "0x" + "d" * 64)
    mined = store.mark_anchor_mined(T0, "0x" + "e" * 64)
    assert (mined.status, mined.tx_hash, mined.readings_root) == (
        "mined",
        "0x" + "e" * 64,
        "0x" + "c" * 64,
    )
    with pytest.raises(NotFoundError):
        store.mark_anchor_mined(T0 + 900, None)
