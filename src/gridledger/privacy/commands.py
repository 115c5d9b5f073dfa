"""Bodies of the privacy CLI commands (``gridledger access-log``); cli.py only parses options."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gridledger.errors import ValidationError
from gridledger.privacy.access_log import (
    AccessLogChain,
    AccessReport,
    CommittedDay,
    access_report,
    commit_days,
)
from gridledger.privacy.keys import leaf_key_of
from gridledger.privacy.salts import LeafKey
from gridledger.store import Store


class LedgerAccessLog:
    """The Consent contract's access-log roots through the ledger client (an AccessLogChain)."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger

    def commit_access_log(self, day_start_s: int, root: bytes, entry_count: int) -> str:
        return str(self.ledger.commit_access_log(day_start_s, root, entry_count).tx_hash)

    def access_log_root(self, day_start_s: int) -> tuple[bytes, int] | None:
        held = self.ledger.access_log(day_start_s)
        return None if held.committed_at_s == 0 else (bytes(held.root), int(held.entry_count))


def ledger_access_log(store: Store) -> AccessLogChain:
    """The chain's access-log commitments for the store's deployment (the Consent contract)."""
    return LedgerAccessLog(_attached(store))


def commit_finished_days(store: Store, ledger: Any, key: LeafKey, now_s: int) -> list[CommittedDay]:
    """The node's daily step: commit every finished day's access log on-chain (the scheduler
    calls it when a market day's last interval is settled; days it missed are caught up)."""
    return commit_days(store, LedgerAccessLog(ledger), key, now_s)


def access_log_report(store: Store, participant: str, verify: bool) -> AccessReport:
    chain = ledger_access_log(store) if verify else None
    return access_report(store, participant, leaf_key_of(store), chain)


def commit_access_log(store: Store) -> list[dict[str, Any]]:
    """Commit every finished day's access log on-chain (the operator; safe to re-run)."""
    days = commit_days(store, ledger_access_log(store), leaf_key_of(store))
    return [{"day": _day(d.day_start_s), "entries": d.entry_count, "tx": d.tx_hash} for d in days]


def report_json(report: AccessReport) -> dict[str, Any]:
    def entry(e: Any) -> dict[str, Any]:
        when = dt.datetime.fromtimestamp(e.at_s, dt.UTC).isoformat()
        return {
            "id": e.id,
            "at": when,
            "reader": e.reader,
            "reader_role": e.reader_role,
            "what": e.what,
            "consent_id": e.consent_id,
        }

    return {
        "participant": report.subject,
        "committed": [
            {
                **entry(p.entry),
                "salt": "0x" + p.salt.hex(),
                "proof": ["0x" + x.hex() for x in p.proof],
            }
            for p in report.entries
        ],
        "not_yet_committed": [entry(e) for e in report.uncommitted],
        "problems": list(report.problems),
    }


def _day(day_start_s: int) -> str:
    return dt.datetime.fromtimestamp(day_start_s, dt.UTC).date().isoformat()


# -- consent -----------------------------------------------------------------------------------
def _attached(store: Store) -> Any:
    from gridledger.ledger import Ledger
    from gridledger.node import load_deployment

    chain, deployment = load_deployment(store)
    if chain == "memory":
        raise ValidationError(
            "chain", "the embedded chain ended with the process that ran it: use --chain URL"
        )
    return Ledger.attach(chain, deployment)


def parse_time_s(text: str, field: str) -> int:
    """Unix seconds, or an ISO date / date-time (UTC unless it names its offset)."""
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(
            field, f"expected unix seconds or an ISO date, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp())


def grant_json(grant: Any) -> dict[str, Any]:
    from gridledger.privacy.consent import scope_names

    return {
        "id": grant.grant_id,
        "owner": grant.owner,
        "grantee": grant.grantee,
        "scopes": scope_names(grant.scope_bits),
        "data_from_s": grant.data_from_s,
        "data_to_s": grant.data_to_s,
        "expires_at_s": grant.expires_at_s,
        "revoked_at_s": grant.revoked_at_s,
    }


def consent_grant(
    store: Store,
    key: bytes,
    grantee: str,
    scopes: list[str],
    data_from_s: int,
    data_to_s: int,
    expires_at_s: int,
) -> dict[str, Any]:
    from gridledger.privacy.consent import scope_bits

    ledger = _attached(store)
    bits = scope_bits(scopes)
    grant_id, tx = ledger.participant_client(key).grant_consent(
        grantee, bits, data_from_s, data_to_s, expires_at_s
    )
    return {**grant_json(ledger.consent_grant(grant_id)), "tx": tx.tx_hash}


def consent_revoke(store: Store, key: bytes, grant_id: int) -> dict[str, Any]:
    ledger = _attached(store)
    tx = ledger.participant_client(key).revoke_consent(grant_id)
    return {**grant_json(ledger.consent_grant(grant_id)), "tx": tx.tx_hash}


def consent_list(store: Store, address: str) -> list[dict[str, Any]]:
    """Every grant ``address`` gave or received, from the Consent contract's events."""
    ledger = _attached(store)
    ids = sorted(
        {
            int(e.args["id"])
            for e in ledger.consent_events()
            if e.name == "ConsentGranted" and address in (e.args["owner"], e.args["grantee"])
        }
    )
    return [grant_json(ledger.consent_grant(i)) for i in ids]
