"""gridledger store backup|restore on SQLite and PostgreSQL: every row back, all or nothing."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gridledger.cli import app
from gridledger.errors import StoreError
from gridledger.node.meta import NodeMeta
from gridledger.store import IntervalRow, Store
from gridledger.store.backup import backup_store, restore_store
from tests.metering.factory import T0, fleet, register, signed


def filled_store(url: str) -> Store:
    store = Store.open(url)
    meters = fleet(3)
    register(store, meters)
    store.insert_readings([signed(m, s, interval=s) for m in meters for s in (1, 2, 3)])
    store.save_interval(IntervalRow(T0, "cleared", 120_000, 700, "0x" + "ab" * 32))
    NodeMeta(store).put(next_gate_s=T0 + 900, deployment='{"market": "0x0"}')
    return store


def every_row(store: Store) -> dict[str, list[Any]]:
    metadata = sa.MetaData()
    metadata.reflect(store.engine)
    with store.engine.connect() as conn:
        return {
            name: sorted(tuple(r) for r in conn.execute(sa.select(table)))
            for name, table in metadata.tables.items()
        }


def test_backup_then_restore_gives_back_every_row(db_url: str, tmp_path: Path) -> None:
    source = filled_store(db_url)
    summary = backup_store(source, tmp_path / "node.backup")
    assert summary.tables["readings"] == 9 and summary.rows >= 9 + 3 + 1
    target = Store.open(f"sqlite:///{tmp_path / 'restored.sqlite'}")
    NodeMeta(target)
    restored = restore_store(target, tmp_path / "node.backup")
    assert restored.tables == summary.tables
    assert every_row(target) == every_row(source)
    # the restored store keeps working: new rows get fresh ids after the restored ones
    meters = fleet(3)
    outcome = target.insert_readings([signed(meters[0], 4, interval=4)])
    assert outcome[0].status == "accepted"


def test_a_sqlite_backup_restores_into_either_backend(db_url: str, tmp_path: Path) -> None:
    source = filled_store(f"sqlite:///{tmp_path / 'source.sqlite'}")
    backup_store(source, tmp_path / "b")
    target = Store.open(db_url)
    NodeMeta(target)
    restore_store(target, tmp_path / "b")
    assert every_row(target) == every_row(source)
    outcome = target.insert_readings([signed(fleet(3)[0], 4, interval=4)])
    assert outcome[0].status == "accepted" and outcome[0].reading_id == 10  # ids move on


def test_restore_refuses_a_database_with_rows_and_writes_nothing(tmp_path: Path) -> None:
    source = filled_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    backup_store(source, tmp_path / "b")
    target = filled_store(f"sqlite:///{tmp_path / 'b.sqlite'}")
    before = every_row(target)
    with pytest.raises(StoreError, match="already holds rows"):
        restore_store(target, tmp_path / "b")
    assert every_row(target) == before


def test_a_damaged_or_truncated_backup_is_refused(tmp_path: Path) -> None:
    source = filled_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    backup_store(source, tmp_path / "b")
    lines = gzip.decompress((tmp_path / "b").read_bytes()).decode().splitlines(keepends=True)
    (tmp_path / "cut").write_bytes(gzip.compress("".join(lines[:-1]).encode()))
    tampered = "".join(lines).replace('"0x' + "ab" * 32, '"0x' + "cd" * 32)
    (tmp_path / "tampered").write_bytes(gzip.compress(tampered.encode()))
    for name, reason in (("cut", "truncated"), ("tampered", "damaged")):
        target = Store.open(f"sqlite:///{tmp_path / (name + '.sqlite')}")
        with pytest.raises(StoreError, match=reason):
            restore_store(target, tmp_path / name)
        assert every_row(target)["readings"] == []


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'node.sqlite'}"
    filled_store(url).close()
    runner = CliRunner()
    done = runner.invoke(app, ["store", "backup", str(tmp_path / "b.gz"), "--db", url])
    assert done.exit_code == 0, done.output
    assert "rows in" in done.output
    fresh = f"sqlite:///{tmp_path / 'fresh' / 'node.sqlite'}"
    done = runner.invoke(app, ["store", "restore", str(tmp_path / "b.gz"), "--db", fresh])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["store", "restore", str(tmp_path / "b.gz"), "--db", fresh])
    assert again.exit_code == 1
    assert "already holds rows" in again.output and "Traceback" not in again.output
