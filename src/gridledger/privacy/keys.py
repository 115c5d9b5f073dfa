"""The operator's leaf key, kept in the store (created once, the same for every process)."""

from __future__ import annotations

import sqlalchemy as sa

from gridledger.errors import StoreError
from gridledger.privacy.salts import LeafKey
from gridledger.store import Store
from gridledger.store import schema as t

LEAF_KEY_META = "privacy.leaf_key"


def leaf_key_of(store: Store) -> LeafKey:
    """The store's leaf key; the first caller creates it (a race is settled by the primary key)."""
    existing = store.meta(LEAF_KEY_META)
    if existing is not None:
        return LeafKey.from_hex(existing)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(t.meta).values(key=LEAF_KEY_META, value=LeafKey.random().hex()))
    except sa.exc.IntegrityError:
        pass  # another process created it first: everyone uses that one
    created = store.meta(LEAF_KEY_META)
    if created is None:
        raise StoreError(f"store {store.url} lost its leaf key right after creating it")
    return LeafKey.from_hex(created)
