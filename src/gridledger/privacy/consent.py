"""Consent: what a grantee may read of a participant's data, decided by the Consent contract.

A grant names a grantee, scopes (bit flags below), a period of data ``[data_from_s, data_to_s)``
and an expiry; the owner may revoke it. A grantee's request is served only when one grant in
force right now covers the scope and the whole requested period, and it is served exactly that
period; otherwise the refusal names the reason (no grant, expired, revoked, other scope, period
outside the grant). Every served request is written to the access log with the grant's id.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gridledger.errors import AuthorizationError, ValidationError
from gridledger.metering import Reading
from gridledger.privacy.access_log import record_access
from gridledger.store import Store

SCOPES: dict[str, int] = {"readings": 1, "statements": 2, "aggregates": 4}


class Grant(Protocol):
    """One grant as the Consent contract holds it (gridledger.ledger.ConsentGrant)."""

    @property
    def grant_id(self) -> int: ...

    @property
    def owner(self) -> str: ...

    @property
    def grantee(self) -> str: ...

    @property
    def scope_bits(self) -> int: ...

    @property
    def data_from_s(self) -> int: ...

    @property
    def data_to_s(self) -> int: ...

    @property
    def expires_at_s(self) -> int: ...

    @property
    def revoked_at_s(self) -> int: ...


class ConsentChain(Protocol):
    """The reads of the Consent contract this module needs (gridledger.ledger.Ledger has them)."""

    def consent_grant_ids(self, owner: str, grantee: str) -> list[int]: ...

    def consent_grant(self, grant_id: int) -> Grant: ...


def scope_bits(names: Sequence[str]) -> int:
    bits = 0
    for name in names:
        if name not in SCOPES:
            raise ValidationError("scope", f"unknown scope {name!r}; one of {', '.join(SCOPES)}")
        bits |= SCOPES[name]
    if not bits:
        raise ValidationError("scope", "name at least one scope")
    return bits


def scope_names(bits: int) -> list[str]:
    return [name for name, bit in SCOPES.items() if bits & bit]


def refusal(grant: Grant, scope: str, from_s: int, to_s: int, now_s: int) -> str | None:
    """Why ``grant`` does not cover the request, or None when it does."""
    if grant.revoked_at_s:  # a revocation on-chain ends access at once, whatever the clocks say
        return f"grant {grant.grant_id} was revoked at {grant.revoked_at_s}"
    if grant.expires_at_s <= now_s:
        return f"grant {grant.grant_id} expired at {grant.expires_at_s}"
    if not grant.scope_bits & SCOPES[scope]:
        return (
            f"grant {grant.grant_id} covers {', '.join(scope_names(grant.scope_bits))}, not {scope}"
        )
    if from_s < grant.data_from_s or to_s > grant.data_to_s:
        return (
            f"grant {grant.grant_id} covers data from {grant.data_from_s} to {grant.data_to_s}, "
            f"not {from_s} to {to_s}"
        )
    return None


def grant_status(grant: Grant, now_s: int) -> dict[str, str]:
    """The grant's state in words for a person (the dashboard): in force, expired or revoked."""
    if grant.revoked_at_s:
        return {"status": "revoked"}
    return {"status": "expired" if grant.expires_at_s <= now_s else "in force"}


def grant_in_force(
    chain: ConsentChain,
    owner: str,
    grantee: str,
    scope: str,
    window: tuple[int | None, int | None],
    now_s: int,
) -> tuple[Grant, int, int]:
    """The grant that covers the request, with the data period served (the request's, or the
    grant's own where the request leaves it open); raises AuthorizationError naming why not."""
    if scope not in SCOPES:
        raise ValidationError("scope", f"unknown scope {scope!r}")
    grants = [chain.consent_grant(i) for i in chain.consent_grant_ids(owner, grantee)]
    if not grants:
        raise AuthorizationError(f"{owner} has granted {grantee} no consent")
    reasons = []
    for grant in sorted(grants, key=lambda g: -g.grant_id):
        from_s = grant.data_from_s if window[0] is None else window[0]
        to_s = grant.data_to_s if window[1] is None else window[1]
        if to_s <= from_s:
            raise ValidationError("to_s", "must be after from_s")
        why = refusal(grant, scope, from_s, to_s, now_s)
        if why is None:
            return grant, from_s, to_s
        reasons.append(why)
    raise AuthorizationError(
        f"no consent of {owner} lets {grantee} read {scope}: " + "; ".join(reasons)
    )


@dataclass(frozen=True)
class ConsentedReadings:
    grant_id: int
    owner: str
    from_s: int
    to_s: int
    readings: tuple[Reading, ...]


def consented_readings(
    store: Store,
    chain: ConsentChain,
    owner: str,
    grantee: str,
    window: tuple[int | None, int | None] = (None, None),
    now_s: int | None = None,
) -> ConsentedReadings:
    """The owner's meter readings a grant lets ``grantee`` read now, logged under the grant."""
    now = int(time.time()) if now_s is None else now_s
    grant, from_s, to_s = grant_in_force(chain, owner, grantee, "readings", window, now)
    meters = [m.address for m in store.meters() if m.owner == owner]
    readings = tuple(
        s.reading
        for m in meters
        for s in store.readings_of_meter(m)
        if from_s <= s.reading.interval_start_s and s.reading.interval_end_s <= to_s
    )
    record_access(
        store,
        reader=grantee,
        reader_role="grantee",
        subject=owner,
        what="readings",
        consent_id=grant.grant_id,
        at_s=now,
    )
    ordered = tuple(sorted(readings, key=lambda r: (r.interval_start_s, r.meter)))
    return ConsentedReadings(grant.grant_id, owner, from_s, to_s, ordered)
