"""Privacy over a simulated day: what an observer of everything public learns, and erasure.

A simulated day runs on the embedded EVM with the default (netting-root) settlement. The observer
collects every transaction's calldata and every log of every block, and every public API answer
(intervals, participants, chain status and events, on-chain intervals). None of the numbers in
them is a household's metered Wh or settlement amount of one interval. The last test erases one
household and checks that every other household's statement still verifies on-chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gridledger.api import create_app
from gridledger.config import Settings
from gridledger.node.statements import build_statement, verify_on_chain
from gridledger.privacy.erasure import erase_participant
from gridledger.settlement import Tariffs
from gridledger.sim.day import DayConfig, DayResult, run_day
from tests.support.http import serve_app

MIN_DISTINCT = 100  # smaller values (0, 1, 15 ...) occur everywhere and identify nothing


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> DayResult:
    db = tmp_path_factory.mktemp("observer") / "o.sqlite"
    config = DayConfig(households=4, intervals=6, first_interval=46, fresh_db=False, seed=3)
    return run_day(config, Settings(db_url=f"sqlite:///{db}"))


Record = tuple[set[int], set[str]]  # the numbers and the addresses of one public item


@dataclass(frozen=True)
class Secret:
    value: int
    owner: set[str]  # the household's address and its meters' (lower case)
    what: str


def household_secrets(day: DayResult) -> list[Secret]:
    """Per-interval metered Wh and settlement amounts of every household. A household's net
    over the whole day is what its daily claim shows (docs/privacy.md), so an interval amount
    equal to it (the only interval it was paid in) is not counted as a secret."""
    store = day.store
    households = {p.address for p in store.participants() if p.role in ("prosumer", "consumer")}
    meters_of: dict[str, set[str]] = {h: {h.lower()} for h in households}
    owner_of = {m.address: m.owner for m in store.meters()}
    for meter, owner in owner_of.items():
        meters_of.setdefault(owner, {owner.lower()}).add(meter.lower())
    daily = {h: sum(s.delta_micro for s in store.settlements_of(h, 10_000)) for h in households}
    out = []
    for row in store.intervals(10_000):
        start = row.interval_start_s
        for s in store.readings_in_interval(start):
            owner = meters_of[owner_of[s.reading.meter]]
            for wh, kind in (
                (s.reading.imported_wh, "imported"),
                (s.reading.exported_wh, "exported"),
            ):
                out.append(Secret(wh, owner, f"{s.reading.meter} {kind} Wh at {start}"))
        for settled in store.settlements_in_interval(start):
            if (
                settled.participant in households
                and settled.delta_micro != daily[settled.participant]
            ):
                out.append(
                    Secret(
                        settled.delta_micro,
                        meters_of[settled.participant],
                        f"{settled.participant} amount at {start}",
                    )
                )
    return [x for x in out if abs(x.value) >= MIN_DISTINCT]


def chain_records(day: DayResult) -> list[Record]:
    """Every calldata and every log on the chain: its 32-byte words as numbers and addresses."""
    w3 = day.ledger._conn.w3  # the observer reads the raw chain, not the client's views
    records: list[Record] = []
    for n in range(w3.eth.block_number + 1):
        block = w3.eth.get_block(n, full_transactions=True)
        for tx in block["transactions"]:
            calldata = tx["input"] if "input" in tx else tx["data"]  # eth-tester says "data"
            sender = {str(tx["from"]).lower()}
            records.append(_words(bytes(calldata)[4:], sender))
            for log in w3.eth.get_transaction_receipt(tx["hash"])["logs"]:
                topics = b"".join(bytes(t) for t in log["topics"][1:])
                records.append(_words(topics + bytes(log["data"]), sender))
    return records


def _words(data: bytes, addresses: set[str]) -> Record:
    numbers, found = set(), set(addresses)
    for i in range(0, len(data) - 31, 32):
        word = data[i : i + 32]
        value = int.from_bytes(word, "big")
        numbers |= {value, value - (1 << 256) if value >> 255 else value}
        if word[:12] == bytes(12) and value >> 128:
            found.add("0x" + word[12:].hex())
    return numbers, found


def api_records(url: str, starts: list[int]) -> list[Record]:
    paths = ["/v1/intervals?limit=10000", "/v1/participants", "/v1/chain", "/v1/chain/events"]
    paths += [f"/v1/intervals/{s}" for s in starts] + [f"/v1/chain/intervals/{s}" for s in starts]
    records: list[Record] = []
    for path in paths:
        response = httpx.get(url + path, timeout=30)
        assert response.status_code == 200, (path, response.text)
        for item in _items(response.json()):
            record: Record = (set(), set())
            _collect(item, record)
            records.append(record)
    return records


def _items(body: dict[str, Any]) -> list[Any]:
    """What a reader sees as one item: each item of a list page, each event of the chain
    status's ``recent_*`` lists (each its own log on-chain, as chain_records reads them), and
    the rest of an answer."""
    if "items" in body:
        return list(body["items"])
    events = [e for k, v in body.items() if k.startswith("recent_") for e in v]
    return [{k: v for k, v in body.items() if not k.startswith("recent_")}, *events]


def _collect(value: Any, into: Record) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        into[0].add(value)
    elif isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        into[1].add(value.lower())
    elif isinstance(value, dict):
        for v in value.values():
            _collect(v, into)
    elif isinstance(value, list):
        for v in value:
            _collect(v, into)


def linked(secrets: list[Secret], records: list[Record]) -> set[str]:
    """Secrets that appear in a public item together with their household's address."""
    return {
        x.what
        for x in secrets
        for numbers, addresses in records
        if x.value in numbers and x.owner & addresses
    }


@pytest.fixture(scope="module")
def public_records(day: DayResult) -> Iterator[list[Record]]:
    starts = [r.interval_start_s for r in day.store.intervals(10_000)]
    with serve_app(create_app(day.app_state())) as url:
        yield chain_records(day) + api_records(url, starts)


def test_no_household_interval_value_is_public(
    day: DayResult, public_records: list[Record]
) -> None:
    secrets = household_secrets(day)
    assert len(secrets) > 20  # the day has real per-household data to hide
    assert linked(secrets, public_records) == set()


def test_the_direct_batch_path_would_have_leaked(
    day: DayResult, public_records: list[Record]
) -> None:
    """Control: the calldata of the old direct path (each account with its delta, per interval)
    and the old public interval view (each trade with its parties) are caught by the search."""
    store = day.store
    direct = [
        (
            {s.delta_micro for s in store.settlements_in_interval(r.interval_start_s)},
            {s.participant.lower() for s in store.settlements_in_interval(r.interval_start_s)},
        )
        for r in store.intervals(10_000)
    ]
    assert linked(household_secrets(day), direct)
    volumes = {r.cleared_energy_wh for r in store.intervals(10_000)} - {0}
    assert volumes and volumes <= set().union(*(numbers for numbers, _ in public_records))


def households(day: DayResult) -> list[str]:
    return [p.address for p in day.store.participants() if p.role in ("prosumer", "consumer")]


def statement_problems(day: DayResult, address: str) -> list[str]:
    supplier = next(p.address for p in day.store.participants() if p.role == "supplier")
    settings = Settings()
    tariffs = Tariffs(settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh)
    statement = build_statement(day.store, address)
    return verify_on_chain(day.ledger, day.store, statement, tariffs, supplier)


def test_zz_erasure_leaves_the_others_statements_verifiable(day: DayResult) -> None:
    """Runs last in this module: it erases a household from the shared day."""
    billed = [a for a in households(day) if day.store.statement_lines_of(a)]
    erased, others = billed[0], billed[1:]
    meters = [m.address for m in day.store.meters() if m.owner == erased]
    report = erase_participant(day.store, erased)
    assert report.readings > 0 and report.orders > 0 and report.statement_lines > 0
    assert all(day.store.readings_of_meter(m) == [] for m in meters)
    assert day.store.statement_lines_of(erased) == []
    assert day.store.participant(erased).label == ""
    for address in others:
        assert statement_problems(day, address) == [], address
