"""Bodies of the privacy CLI commands (``gridledger access-log``); cli.py only parses options."""

from __future__ import annotations

import datetime as dt
from typing import Any

from gridledger.errors import NotFoundError, ValidationError
from gridledger.privacy.access_log import AccessLogChain, AccessReport, access_report, commit_days
from gridledger.privacy.keys import leaf_key_of
from gridledger.store import Store


def ledger_access_log(store: Store) -> AccessLogChain:
    """The chain's access-log commitments for the store's deployment (the Consent contract)."""
    from gridledger.ledger import Ledger
    from gridledger.node import load_deployment

    chain, deployment = load_deployment(store)
    if chain == "memory":
        raise ValidationError(
            "chain",
            "the embedded chain ended with the process that ran it: run the node with "
            "--chain URL to verify the access log later",
        )
    ledger = Ledger.attach(chain, deployment)
    if not hasattr(ledger, "commit_access_log") or not hasattr(ledger, "access_log_root"):
        raise NotFoundError("this deployment has no Consent contract to hold access-log roots")
    return ledger  # type: ignore[return-value]


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
