"""The node's own small tables, next to the store's: progress markers and order cancellations.

Kept in the same database as the store so that a restart against the same database resumes
exactly where the last run stopped (the deployment, the next gate closure, the next
settlement), whatever happened to the process.
"""

from __future__ import annotations

import sqlalchemy as sa

from gridledger.errors import StoreError
from gridledger.store import Store

_metadata = sa.MetaData()
node_meta = sa.Table(
    "node_meta",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
order_cancellations = sa.Table(
    "node_order_cancellations",
    _metadata,
    sa.Column("order_id", sa.BigInteger, primary_key=True),
    sa.Column("participant", sa.String(42), nullable=False),
    sa.Column("interval_start_s", sa.BigInteger, nullable=False, index=True),
)


class NodeMeta:
    """Key/value progress markers and cancelled order ids, one transaction each."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        try:
            with self.engine.begin() as conn:
                _metadata.create_all(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot create the node tables: {exc}") from exc

    def get(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.scalar(sa.select(node_meta.c.value).where(node_meta.c.key == key))
        return None if value is None else str(value)

    def get_int(self, key: str) -> int | None:
        value = self.get(key)
        return None if value is None else int(value)

    def put(self, **values: str | int) -> None:
        """Write several markers in one transaction (all or none)."""
        with self.engine.begin() as conn:
            for key, value in values.items():
                conn.execute(sa.delete(node_meta).where(node_meta.c.key == key))
                conn.execute(sa.insert(node_meta).values(key=key, value=str(value)))

    def cancel(self, order_id: int, participant: str, interval_start_s: int) -> bool:
        """Record a cancellation; False when the order was already cancelled."""
        with self.engine.begin() as conn:
            exists = conn.scalar(
                sa.select(order_cancellations.c.order_id).where(
                    order_cancellations.c.order_id == order_id
                )
            )
            if exists is not None:
                return False
            conn.execute(
                sa.insert(order_cancellations).values(
                    order_id=order_id, participant=participant, interval_start_s=interval_start_s
                )
            )
        return True

    def cancelled_in_interval(self, interval_start_s: int) -> set[int]:
        c = order_cancellations.c
        with self.engine.connect() as conn:
            return {
                int(i)
                for i in conn.scalars(
                    sa.select(c.order_id).where(c.interval_start_s == interval_start_s)
                )
            }
