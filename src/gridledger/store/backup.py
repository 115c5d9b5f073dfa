"""Backup and restore of a whole gridledger database, SQLite or PostgreSQL, in one portable file.

The file is gzip-compressed JSON lines: a header naming the tables in dependency order, one
line per row, and a trailer with the row count and the SHA-256 of every line before it. The
backup reads every table in one transaction (a consistent snapshot); the file appears under
its name only when complete. A restore checks the trailer first, refuses a database that
already holds rows, and inserts everything in one transaction: all or nothing. A backup of
SQLite restores into PostgreSQL and back (the columns are integers, text and booleans).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gridledger.errors import StoreError
from gridledger.store.store import Store

FORMAT = "gridledger-backup"
VERSION = 1
INSERT_CHUNK = 1_000


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    tables: dict[str, int]  # rows per table

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


def backup_store(store: Store, path: str | Path) -> BackupSummary:
    """Write every table of ``store``'s database to ``path`` (replaced only when complete)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    counts: dict[str, int] = {}
    digest = hashlib.sha256()
    try:
        with _snapshot(store.engine) as conn, gzip.open(partial, "wt", encoding="utf-8") as out:
            tables = _tables(conn)

            def emit(entry: dict[str, Any]) -> None:
                line = json.dumps(entry, separators=(",", ":")) + "\n"
                digest.update(line.encode())
                out.write(line)

            emit({"format": FORMAT, "version": VERSION, "tables": [t.name for t in tables]})
            for table in tables:
                emit({"table": table.name, "columns": [c.name for c in table.columns]})
                counts[table.name] = 0
                for row in conn.execute(sa.select(table)):
                    emit({"r": [_json_value(v) for v in row]})
                    counts[table.name] += 1
            out.write(json.dumps({"rows": sum(counts.values()), "sha256": digest.hexdigest()}))
            out.write("\n")
        os.replace(partial, target)
    except sa.exc.SQLAlchemyError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup of {store.url} failed: {exc}") from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"{target}: cannot write the backup: {exc}") from exc
    return BackupSummary(target, counts)


def restore_store(store: Store, path: str | Path) -> BackupSummary:
    """Load a backup into ``store``'s database, whose tables exist and are all empty."""
    source = Path(path)
    header, sections = _read_backup(source)
    metadata = sa.MetaData()
    try:
        metadata.reflect(store.engine)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the tables of {store.url}: {exc}") from exc
    missing = [name for name in header["tables"] if name not in metadata.tables]
    if missing:
        raise StoreError(
            f"{store.url} has no table {', '.join(missing)}: restore into a database created "
            "by this version of gridledger"
        )
    counts: dict[str, int] = {}
    try:
        with store.engine.begin() as conn:
            for name in header["tables"]:
                table = metadata.tables[name]
                if conn.scalar(sa.select(sa.func.count()).select_from(table)):
                    raise StoreError(
                        f"{store.url}: table {name} already holds rows; restore needs an empty "
                        "database"
                    )
            for name, columns, rows in sections:
                table = metadata.tables[name]
                for start in range(0, len(rows), INSERT_CHUNK):
                    chunk = rows[start : start + INSERT_CHUNK]
                    conn.execute(
                        table.insert(), [dict(zip(columns, r, strict=True)) for r in chunk]
                    )
                counts[name] = len(rows)
                if conn.dialect.name == "postgresql":
                    _advance_sequences(conn, table)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"restore into {store.url} failed, nothing was written: {exc}") from exc
    return BackupSummary(source, counts)


class _snapshot:  # noqa: N801 - used like a function in a with statement
    """One read transaction that sees a single consistent state of every table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def __enter__(self) -> sa.Connection:
        self.conn = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            self.conn = self.conn.execution_options(isolation_level="REPEATABLE READ")
        self.tx = self.conn.begin()  # SQLite in WAL: the first read fixes the snapshot
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.tx.rollback()
        self.conn.close()


def _tables(conn: sa.Connection) -> list[sa.Table]:
    metadata = sa.MetaData()
    metadata.reflect(conn)
    return list(metadata.sorted_tables)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        raise StoreError("backup: binary columns are not supported")
    return value


def _read_backup(path: Path) -> tuple[dict[str, Any], list[tuple[str, list[str], list[Any]]]]:
    digest = hashlib.sha256()
    header: dict[str, Any] | None = None
    sections: list[tuple[str, list[str], list[Any]]] = []
    trailer: dict[str, Any] | None = None
    try:
        for line in _lines(path):
            if trailer is not None:
                raise StoreError(f"{path}: data after the end of the backup")
            entry = json.loads(line)
            if "sha256" in entry:
                trailer = entry
                continue
            digest.update(line.encode())
            if header is None:
                if entry.get("format") != FORMAT or entry.get("version") != VERSION:
                    raise StoreError(f"{path}: not a gridledger backup (version {VERSION})")
                header = entry
            elif "table" in entry:
                sections.append((entry["table"], entry["columns"], []))
            else:
                sections[-1][2].append(entry["r"])
    except (OSError, EOFError, gzip.BadGzipFile, json.JSONDecodeError, IndexError) as exc:
        raise StoreError(f"{path}: cannot read the backup: {exc}") from exc
    rows = sum(len(s[2]) for s in sections)
    if header is None or trailer is None:
        raise StoreError(f"{path}: the backup is truncated (no end marker)")
    if trailer["sha256"] != digest.hexdigest() or trailer["rows"] != rows:
        raise StoreError(f"{path}: the backup is damaged (checksum mismatch)")
    return header, sections


def _lines(path: Path) -> Iterator[str]:
    with gzip.open(path, "rt", encoding="utf-8") as source:
        yield from source


def _advance_sequences(conn: sa.Connection, table: sa.Table) -> None:
    """After explicit ids, point each serial column's sequence past the largest id."""
    for column in table.primary_key.columns:
        if not isinstance(column.type, sa.Integer):
            continue
        sequence = conn.scalar(
            sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
        )
        if sequence is not None:
            conn.execute(
                sa.text(
                    f"SELECT setval(:s, COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0)"
                    " + 1, false)"
                ),
                {"s": sequence},
            )
