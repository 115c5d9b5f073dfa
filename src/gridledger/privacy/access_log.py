"""The access log: every read of personal data, by anyone (the operator included), and its daily
Merkle commitment on-chain.

An entry says who read (``reader``, its role), whose data (``subject``), what (``what``, e.g.
``readings`` or ``statement``), when (``at_s``) and under which consent (``consent_id``, 0 when
the reader needed none: the subject itself, the operator running the market, an auditor).
Each UTC day's entries are committed as one root with their count (``commitAccessLog``), so a
participant can check that the list it is shown is the list the operator committed to: every
entry about it proves into the root, and the count says nothing was added later.

Leaf: ``keccak(keccak(abi.encode(uint64 id, uint64 atS, bytes32 keccak(reader),
bytes32 keccak(readerRole), address subject, bytes32 keccak(what), uint64 consentId,
bytes32 salt)))``; the salt (from the leaf key, kind ``access``) keeps a proof's siblings from
being brute-forced into who read whose data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from eth_utils.crypto import keccak

from gridledger.errors import ConflictError, ValidationError
from gridledger.merkle import build_tree, leaf_hash, verify_proof
from gridledger.privacy.salts import LeafKey, check_salt
from gridledger.privacy.tables import access_log, access_log_days, ensure_tables
from gridledger.store import Store

DAY_S = 86_400


@dataclass(frozen=True)
class AccessEntry:
    id: int
    at_s: int
    reader: str
    reader_role: str
    subject: str
    what: str
    consent_id: int

    @property
    def day_start_s(self) -> int:
        return self.at_s // DAY_S * DAY_S


@dataclass(frozen=True)
class ProvenAccess:
    """An entry with its salt and its proof against its day's committed root."""

    entry: AccessEntry
    salt: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class CommittedDay:
    day_start_s: int
    root: bytes
    entry_count: int
    tx_hash: str


class AccessLogChain(Protocol):
    """The chain side: the Consent contract's ``commitAccessLog`` and its stored roots."""

    def commit_access_log(self, day_start_s: int, root: bytes, entry_count: int) -> str: ...

    def access_log_root(self, day_start_s: int) -> tuple[bytes, int] | None: ...


class Clocked(Protocol):
    """A running node's market (gridledger.node.market.LiveMarket): only its clock is read."""

    @property
    def clock(self) -> _Clock: ...


class _Clock(Protocol):
    def now_s(self) -> int: ...


def node_now_s(live: Clocked | None) -> int:
    """The node's clock for access-log entries and consent expiry: its market clock (wall time
    at speed 1), else wall time. One clock for stamping and for the daily commit keeps a
    sped-up node from committing a day that still receives entries."""
    return live.clock.now_s() if live is not None else int(time.time())


# -- pure --------------------------------------------------------------------------------------
def access_salt(key: LeafKey, entry: AccessEntry) -> bytes:
    return key.salt(b"access", entry.id.to_bytes(32, "big"))


def access_leaf(entry: AccessEntry, salt: bytes) -> bytes:
    words = b"".join(
        (
            entry.id.to_bytes(32, "big"),
            entry.at_s.to_bytes(32, "big"),
            keccak(text=entry.reader),
            keccak(text=entry.reader_role),
            bytes.fromhex(entry.subject[2:]).rjust(32, b"\0"),
            keccak(text=entry.what),
            entry.consent_id.to_bytes(32, "big"),
        )
    )
    return leaf_hash(words + check_salt(salt))


def day_root(entries: Sequence[AccessEntry], key: LeafKey) -> bytes:
    return build_tree([access_leaf(e, access_salt(key, e)) for e in entries]).root


def proofs_for(
    entries: Sequence[AccessEntry], subject: str, key: LeafKey
) -> tuple[ProvenAccess, ...]:
    """The subject's entries of one day with salts and proofs (the others' salts stay here)."""
    tree = build_tree([access_leaf(e, access_salt(key, e)) for e in entries])
    out = []
    for e in entries:
        if e.subject == subject:
            salt = access_salt(key, e)
            out.append(ProvenAccess(e, salt, tuple(tree.proof(access_leaf(e, salt)))))
    return tuple(out)


def verify_access(proven: Sequence[ProvenAccess], root: bytes) -> list[str]:
    """Problems with the entries shown to a participant, against its day's on-chain root."""
    return [
        f"access entry {p.entry.id} ({p.entry.reader} read {p.entry.what} at {p.entry.at_s}): "
        "its proof does not match the day's on-chain root"
        for p in proven
        if not verify_proof(access_leaf(p.entry, p.salt), p.proof, root)
    ]


# -- the store ---------------------------------------------------------------------------------
def record_access(
    store: Store,
    *,
    reader: str,
    reader_role: str,
    subject: str,
    what: str,
    consent_id: int = 0,
    at_s: int | None = None,
) -> AccessEntry:
    """Log one read of ``subject``'s data; refused once the day is committed (nothing is added
    to a committed day, so its count stays true)."""
    if not subject.startswith("0x") or len(subject) != 42:
        raise ValidationError("subject", f"not an address: {subject!r}")
    when = int(time.time()) if at_s is None else at_s
    ensure_tables(store)
    with store.engine.begin() as conn:
        day = when // DAY_S * DAY_S
        done = conn.scalar(
            sa.select(access_log_days.c.day_start_s).where(access_log_days.c.day_start_s == day)
        )
        if done is not None:
            raise ConflictError(f"at_s: the access log of day {day} is already committed")
        result = conn.execute(
            sa.insert(access_log).values(
                at_s=when,
                reader=reader,
                reader_role=reader_role,
                subject=subject,
                what=what,
                consent_id=consent_id,
            )
        )
        new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    return AccessEntry(new_id, when, reader, reader_role, subject, what, consent_id)


def record_reads(
    store: Store,
    *,
    reader: str,
    reader_role: str,
    subjects: Sequence[str],
    what: str,
    at_s: int,
) -> int:
    """Log one read of each subject's data in one transaction (a verifier's package names
    every participant of an interval); returns how many entries were written."""
    unique = sorted(set(subjects))
    for subject in unique:
        if not subject.startswith("0x") or len(subject) != 42:
            raise ValidationError("subject", f"not an address: {subject!r}")
    if not unique:
        return 0
    ensure_tables(store)
    day = at_s // DAY_S * DAY_S
    with store.engine.begin() as conn:
        done = conn.scalar(
            sa.select(access_log_days.c.day_start_s).where(access_log_days.c.day_start_s == day)
        )
        if done is not None:
            raise ConflictError(f"at_s: the access log of day {day} is already committed")
        rows = [
            {
                "at_s": at_s,
                "reader": reader,
                "reader_role": reader_role,
                "subject": s,
                "what": what,
                "consent_id": 0,
            }
            for s in unique
        ]
        conn.execute(sa.insert(access_log), rows)
    return len(unique)


def _entries(store: Store, where: sa.ColumnElement[bool]) -> list[AccessEntry]:
    ensure_tables(store)
    query = sa.select(access_log).where(where).order_by(access_log.c.id)
    with store.engine.connect() as conn:
        return [AccessEntry(**row._mapping) for row in conn.execute(query)]


def entries_of_day(store: Store, day_start_s: int) -> list[AccessEntry]:
    c = access_log.c
    return _entries(store, (c.at_s >= day_start_s) & (c.at_s < day_start_s + DAY_S))


def entries_about(store: Store, subject: str) -> list[AccessEntry]:
    return _entries(store, access_log.c.subject == subject)


def committed_days(store: Store) -> dict[int, CommittedDay]:
    ensure_tables(store)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(access_log_days))
        return {
            r.day_start_s: CommittedDay(
                r.day_start_s, bytes.fromhex(r.root[2:]), r.entry_count, r.tx_hash
            )
            for r in rows
        }


def commit_days(
    store: Store, chain: AccessLogChain, key: LeafKey, now_s: int | None = None
) -> list[CommittedDay]:
    """Commit every finished UTC day with entries that is not committed yet (safe to re-run:
    a day the chain already holds is recorded, not sent again)."""
    now = int(time.time()) if now_s is None else now_s
    today = now // DAY_S * DAY_S
    ensure_tables(store)
    with store.engine.connect() as conn:
        days = sorted(
            {int(at) // DAY_S * DAY_S for at in conn.scalars(sa.select(access_log.c.at_s))}
        )
    done = committed_days(store)
    out = []
    for day in (d for d in days if d < today and d not in done):
        entries = entries_of_day(store, day)
        root = day_root(entries, key)
        held = chain.access_log_root(day)
        if held is None:
            tx = chain.commit_access_log(day, root, len(entries))
        elif held == (root, len(entries)):
            tx = ""
        else:
            raise ConflictError(
                f"day {day}: the chain holds another access-log root than the store gives"
            )
        with store.engine.begin() as conn:
            conn.execute(
                sa.insert(access_log_days).values(
                    day_start_s=day, root="0x" + root.hex(), entry_count=len(entries), tx_hash=tx
                )
            )
        out.append(CommittedDay(day, root, len(entries), tx))
    return out


@dataclass(frozen=True)
class AccessReport:
    """What a participant is shown about who read its data, and what checking it found."""

    subject: str
    entries: tuple[ProvenAccess, ...]
    uncommitted: tuple[AccessEntry, ...]  # today's (not yet committed) entries
    problems: tuple[str, ...]


def access_report(
    store: Store, subject: str, key: LeafKey, chain: AccessLogChain | None = None
) -> AccessReport:
    """The subject's entries; with ``chain``, each committed day's proofs checked on-chain."""
    done = committed_days(store)
    proven: list[ProvenAccess] = []
    uncommitted: list[AccessEntry] = []
    problems: list[str] = []
    days = sorted({e.day_start_s for e in entries_about(store, subject)})
    for day in days:
        if day not in done:
            uncommitted += [e for e in entries_of_day(store, day) if e.subject == subject]
            continue
        day_entries = entries_of_day(store, day)
        mine = proofs_for(day_entries, subject, key)
        proven += mine
        if chain is None:
            continue
        held = chain.access_log_root(day)
        if held is None:
            problems.append(f"day {day}: no access-log root on-chain")
            continue
        root, count = held
        if count != len(day_entries):
            problems.append(
                f"day {day}: the chain commits {count} entries, the operator shows "
                f"{len(day_entries)}"
            )
        problems += verify_access(mine, root)
    return AccessReport(subject, tuple(proven), tuple(uncommitted), tuple(problems))
