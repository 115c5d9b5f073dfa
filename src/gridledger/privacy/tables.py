"""The privacy tables (access log, committed days, DP budget spend, erasures).

They live in their own metadata and are created on first use against a store, so the shared
schema module stays untouched and a store opened by an older build gains them when needed.
"""

from __future__ import annotations

import threading
import weakref

import sqlalchemy as sa

from gridledger.store import Store

metadata = sa.MetaData()
ADDRESS = sa.String(42)
HEX32 = sa.String(66)

access_log = sa.Table(
    "access_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at_s", sa.BigInteger, nullable=False, index=True),
    sa.Column("reader", sa.String(64), nullable=False),
    sa.Column("reader_role", sa.String(24), nullable=False),
    sa.Column("subject", ADDRESS, nullable=False, index=True),
    sa.Column("what", sa.String(64), nullable=False),
    sa.Column("consent_id", sa.BigInteger, nullable=False, default=0),
)

access_log_days = sa.Table(
    "access_log_days",
    metadata,
    sa.Column("day_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", HEX32, nullable=False),
    sa.Column("entry_count", sa.BigInteger, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
)

dp_spend = sa.Table(
    "dp_spend",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("grantee", sa.String(64), nullable=False, index=True),
    sa.Column("query", sa.String(64), nullable=False),
    sa.Column("epsilon_micro", sa.BigInteger, nullable=False),  # epsilon * 1e6, summed exactly
    sa.Column("at_s", sa.BigInteger, nullable=False),
)

erasures = sa.Table(
    "erasures",
    metadata,
    sa.Column("participant", ADDRESS, primary_key=True),
    sa.Column("erased_at_s", sa.BigInteger, nullable=False),
)

# Leaf hashes of erased records, so the remaining parties' proofs can still be built.
erased_leaves = sa.Table(
    "erased_leaves",
    metadata,
    sa.Column("interval_start_s", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("leaf", HEX32, primary_key=True),
)

_created: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_lock = threading.Lock()


def ensure_tables(store: Store) -> None:
    """Create the privacy tables in ``store`` once per process (idempotent across processes)."""
    with _lock:
        if store.engine in _created:
            return
        with store.engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
        _created.add(store.engine)
