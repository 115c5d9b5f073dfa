"""The bodies of ``gridledger store backup|restore`` and ``gridledger node --check``."""

from __future__ import annotations

from pathlib import Path

from gridledger.config import Settings, ensure_sqlite_dir
from gridledger.errors import ConfigError
from gridledger.ledger import Deployment, Ledger
from gridledger.stack.check import CheckReport, check_store_against_chain
from gridledger.store import Store
from gridledger.store.backup import BackupSummary, backup_store, restore_store


def backup_database(settings: Settings, path: Path) -> BackupSummary:
    store = Store.open(settings.db_url)
    try:
        return backup_store(store, path)
    finally:
        store.close()


def restore_database(settings: Settings, path: Path) -> BackupSummary:
    """Restore into an empty database: the store's and the node's tables are created first."""
    from gridledger.node.meta import NodeMeta

    ensure_sqlite_dir(settings.db_url)
    store = Store.open(settings.db_url)
    try:
        NodeMeta(store)  # creates the node's own tables
        return restore_store(store, path)
    finally:
        store.close()


def check_node(settings: Settings) -> CheckReport:
    """Attach to the deployment the database remembers and compare it with the chain."""
    from gridledger.node.meta import NodeMeta

    if settings.chain == "memory":
        raise ConfigError(
            "node --check: the in-process chain does not outlive its node; pass --chain URL"
        )
    store = Store.open(settings.db_url)
    try:
        meta = NodeMeta(store)
        saved = meta.get("deployment")
        if saved is None:
            raise ConfigError(
                f"node --check: {store.url} holds no deployment; run gridledger node first"
            )
        ledger = Ledger.attach(settings.chain, Deployment.from_json(saved), None)
        return check_store_against_chain(store, ledger, meta.get_int("deploy_block") or 0)
    finally:
        store.close()
