"""Consent on the chain, enforced where data leaves the node: a generated matrix over the
grantee's role, the scope asked for and the moment of asking (before expiry, after expiry,
after revocation), on the embedded EVM and on anvil; then the owner's CLI-level commands."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import AuthorizationError
from gridledger.ledger import Ledger
from gridledger.privacy.access_log import (
    DAY_S,
    access_report,
    commit_days,
    entries_about,
    record_access,
)
from gridledger.privacy.commands import LedgerAccessLog
from gridledger.privacy.consent import SCOPES, consented_readings, grant_in_force
from gridledger.privacy.keys import leaf_key_of
from gridledger.store import Meter, Participant, Store
from gridledger.verifier.panel import DEV_QUORUM, dev_verifier_addresses
from tests.metering.factory import INTERVAL_S, T0, fleet, signed

FUND_WEI = 10**18
DATA_FROM, DATA_TO = T0, T0 + 4 * INTERVAL_S  # the granted period: the first four intervals


@dataclass(frozen=True)
class Setup:
    ledger: Ledger
    store: Store
    owner: str
    grantee: str
    stranger: str
    grant_id: int
    granted_at_s: int
    expires_at_s: int


@pytest.fixture
def setup(chain_url: str, tmp_path: Path) -> Iterator[Setup]:
    ledger = Ledger.deploy(chain_url, verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
    owner_key, grantee_key = key_from_seed("consent-owner"), key_from_seed("consent-grantee")
    owner, grantee = address_of(owner_key), address_of(grantee_key)
    ledger.fund_eth(owner, FUND_WEI)
    store = Store.open(f"sqlite:///{tmp_path / 'consent.sqlite'}")
    (meter,) = fleet(1, prefix="consent")
    store.add_participant(Participant(owner, "prosumer", 0, "house"))
    store.add_meter(Meter(meter.address, owner, 10_000))
    store.insert_readings([signed(meter, i + 1, interval=i, imported_wh=100 + i) for i in range(6)])
    expires = int(time.time()) + 30 * 86_400  # both chains keep wall-clock block times
    grant_id, _ = ledger.participant_client(owner_key).grant_consent(
        grantee, SCOPES["readings"], DATA_FROM, DATA_TO, expires
    )
    grant = ledger.consent_grant(grant_id)
    yield Setup(
        ledger,
        store,
        owner,
        grantee,
        address_of(key_from_seed("consent-stranger")),
        grant_id,
        grant.granted_at_s,
        grant.expires_at_s,
    )
    store.close()


MOMENTS = ("in force", "expired", "revoked")
WHO = ("grantee", "stranger")
CASES = list(itertools.product(WHO, SCOPES, MOMENTS))


@pytest.mark.parametrize(("who", "scope", "moment"), CASES, ids=["-".join(c) for c in CASES])
def test_consent_matrix(setup: Setup, who: str, scope: str, moment: str) -> None:
    s = setup
    if moment == "revoked":
        s.ledger.participant_client(key_from_seed("consent-owner")).revoke_consent(s.grant_id)
    now = s.expires_at_s + 1 if moment == "expired" else s.granted_at_s + 60
    if moment == "revoked":
        now = s.ledger.consent_grant(s.grant_id).revoked_at_s + 1
    reader = s.grantee if who == "grantee" else s.stranger
    allowed = who == "grantee" and scope == "readings" and moment == "in force"
    if not allowed:
        with pytest.raises(AuthorizationError) as refused:
            grant_in_force(s.ledger, s.owner, reader, scope, (None, None), now)
        reason = {"stranger": "no consent", "revoked": "revoked", "expired": "expired"}
        expected = reason[who] if who == "stranger" else reason.get(moment, f"not {scope}")
        assert expected in str(refused.value)
        return
    served = consented_readings(s.store, s.ledger, s.owner, reader, now_s=now)
    assert served.grant_id == s.grant_id and (served.from_s, served.to_s) == (DATA_FROM, DATA_TO)
    assert [r.interval_start_s for r in served.readings] == [
        DATA_FROM + i * INTERVAL_S for i in range(4)
    ]
    (logged,) = entries_about(s.store, s.owner)
    assert (logged.reader, logged.consent_id, logged.what) == (reader, s.grant_id, "readings")


def test_data_outside_the_granted_period_is_refused(setup: Setup) -> None:
    s = setup
    now = s.granted_at_s + 60
    with pytest.raises(AuthorizationError, match="covers data from"):
        consented_readings(s.store, s.ledger, s.owner, s.grantee, (DATA_FROM, DATA_TO + 1), now)
    inside = consented_readings(
        s.store, s.ledger, s.owner, s.grantee, (DATA_FROM + INTERVAL_S, DATA_TO), now
    )
    assert len(inside.readings) == 3


def test_access_log_days_are_committed_and_verified_on_chain(setup: Setup) -> None:
    s = setup
    day0 = (s.granted_at_s // DAY_S - 2) * DAY_S  # a finished day
    for i in range(3):
        record_access(
            s.store,
            reader=s.grantee,
            reader_role="grantee",
            subject=s.owner,
            what="readings",
            consent_id=s.grant_id,
            at_s=day0 + i,
        )
    chain = LedgerAccessLog(s.ledger)
    (day,) = commit_days(s.store, chain, leaf_key_of(s.store), now_s=day0 + DAY_S)
    assert chain.access_log_root(day0) == (day.root, 3)
    report = access_report(s.store, s.owner, leaf_key_of(s.store), chain)
    assert len(report.entries) == 3 and report.problems == ()
