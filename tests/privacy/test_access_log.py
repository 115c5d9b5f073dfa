"""The access log: reads recorded, each day committed once, a participant verifies its list."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConflictError
from gridledger.privacy import LeafKey
from gridledger.privacy.access_log import (
    DAY_S,
    access_report,
    commit_days,
    entries_about,
    record_access,
    verify_access,
)
from gridledger.store import Store

KEY = LeafKey(b"\x05" * 32)
DAY0 = 1_700_006_400 // DAY_S * DAY_S
ALICE, BOB = (address_of(key_from_seed(n)) for n in ("log-alice", "log-bob"))
READER = address_of(key_from_seed("log-aggregator"))


class ChainDouble:
    """Stands in for commitAccessLog until the Consent contract lands; counts sends."""

    def __init__(self) -> None:
        self.days: dict[int, tuple[bytes, int]] = {}
        self.sends = 0

    def commit_access_log(self, day_start_s: int, root: bytes, entry_count: int) -> str:
        assert day_start_s not in self.days, "the contract refuses a second root for a day"
        self.sends += 1
        self.days[day_start_s] = (root, entry_count)
        return "0x" + f"{self.sends:064x}"

    def access_log_root(self, day_start_s: int) -> tuple[bytes, int] | None:
        return self.days.get(day_start_s)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    for i, subject in enumerate([ALICE, BOB, ALICE, BOB, ALICE]):
        record_access(
            opened,
            reader=READER,
            reader_role="grantee",
            subject=subject,
            what="readings",
            consent_id=i + 1,
            at_s=DAY0 + 60 * i,
        )
    record_access(
        opened,
        reader="operator",
        reader_role="operator",
        subject=ALICE,
        what="statement",
        at_s=DAY0 + DAY_S + 5,
    )
    yield opened
    opened.close()


def test_each_finished_day_is_committed_once(store: Store) -> None:
    chain = ChainDouble()
    committed = commit_days(store, chain, KEY, now_s=DAY0 + DAY_S + 100)
    assert [(d.day_start_s, d.entry_count) for d in committed] == [(DAY0, 5)]
    assert commit_days(store, chain, KEY, now_s=DAY0 + DAY_S + 200) == []
    assert chain.sends == 1
    with pytest.raises(ConflictError, match="already committed"):
        record_access(
            store, reader="x", reader_role="operator", subject=BOB, what="readings", at_s=DAY0 + 10
        )


def test_participant_verifies_who_read_its_data(store: Store) -> None:
    chain = ChainDouble()
    commit_days(store, chain, KEY, now_s=DAY0 + DAY_S + 100)
    report = access_report(store, ALICE, KEY, chain)
    assert report.problems == ()
    assert [p.entry.consent_id for p in report.entries] == [1, 3, 5]
    assert {p.entry.reader for p in report.entries} == {READER}
    assert [e.what for e in report.uncommitted] == ["statement"]  # today's, not committed yet
    assert all(e.subject == ALICE for e in entries_about(store, ALICE))


def test_a_hidden_or_altered_entry_is_caught(store: Store) -> None:
    chain = ChainDouble()
    commit_days(store, chain, KEY, now_s=DAY0 + DAY_S + 100)
    report = access_report(store, ALICE, KEY, chain)
    root, _ = chain.days[DAY0]
    first = report.entries[0]
    altered = dataclasses.replace(first, entry=dataclasses.replace(first.entry, reader="nobody"))
    assert verify_access([altered], root) != []
    chain.days[DAY0] = (root, 4)  # the operator committed fewer entries than it now shows
    assert any("commits 4 entries" in p for p in access_report(store, ALICE, KEY, chain).problems)


def test_cli_lists_the_log_and_refuses_verify_without_a_chain(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'log.sqlite'}"
    store = Store.open(db)
    record_access(store, reader=READER, reader_role="grantee", subject=ALICE, what="readings")
    store.close()
    cli = [sys.executable, "-m", "gridledger", "access-log", "--participant", ALICE, "--db", db]
    done = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["not_yet_committed"]
    assert [(e["reader"], e["what"]) for e in listed] == [(READER, "readings")]
    refused = subprocess.run([*cli, "--verify"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "no chain deployment" in refused.stderr
    assert "Traceback" not in refused.stderr
