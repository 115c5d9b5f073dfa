"""Persistence: SQLAlchemy 2 store on SQLite (WAL) or PostgreSQL (psycopg 3), typed rows."""

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
from gridledger.store.store import Store

__all__ = [
    "AnchorRow",
    "InsertOutcome",
    "IntervalRow",
    "Meter",
    "NettingRootRow",
    "OrderRow",
    "Participant",
    "SettlementPlanRow",
    "SettlementRow",
    "StatementLineRow",
    "Store",
    "StoredReading",
    "TradeRow",
]
