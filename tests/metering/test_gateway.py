"""The gateway end to end on real databases: forged, duplicated and replayed traffic."""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest

from gridledger.eip712 import key_from_seed
from gridledger.errors import ValidationError
from gridledger.metering import (
    Gateway,
    SignedReading,
    ingest_json,
    sign_reading,
    signed_reading_to_json,
)
from gridledger.store import Store
from tests.metering.factory import (
    DOMAIN,
    INTERVAL_S,
    NOW_S,
    T0,
    FleetMeter,
    fleet,
    register,
    signed,
)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    yield opened
    opened.close()


def mixed_traffic(
    meters: list[FleetMeter],
    per_meter: int,
    n_forged: int,
    n_dupes: int,
    n_replays: int,
    seed: int = 7,
) -> tuple[list[SignedReading], list[SignedReading]]:
    """(genuine readings, the whole stream in arrival order)."""
    rng = random.Random(seed)
    genuine = [
        signed(
            m, s, interval=s - 1, imported_wh=rng.randrange(2501), exported_wh=rng.randrange(800)
        )
        for m in meters
        for s in range(1, per_meter + 1)
    ]
    stream: list[tuple[float, SignedReading]] = [(i, g) for i, g in enumerate(genuine)]
    intruder = key_from_seed("intruder")
    for k in range(n_forged):
        target = genuine[rng.randrange(len(genuine))]
        if k % 3 == 0:  # signed with the wrong key
            forged = sign_reading(replace(target.reading, imported_wh=1), intruder, DOMAIN)
        elif k % 3 == 1:  # a genuine signature over tampered values
            forged = SignedReading(
                replace(target.reading, imported_wh=target.reading.imported_wh ^ 1),
                target.signature,
            )
        else:  # garbage signature bytes
            forged = SignedReading(target.reading, bytes([27 + k % 2]) * 65)
        stream.append((rng.uniform(-1, len(genuine)), forged))
    for _ in range(n_dupes):
        i = rng.randrange(len(genuine))
        stream.append((i + rng.uniform(0.01, 300), genuine[i]))
    owners = {m.address: m for m in meters}
    for _ in range(n_replays):  # validly signed, but reusing a sequence already stored
        i = rng.randrange(len(genuine))
        old = genuine[i].reading
        again = sign_reading(
            replace(old, imported_wh=(old.imported_wh + 1) % 2500), owners[old.meter].key, DOMAIN
        )
        stream.append((i + rng.uniform(0.01, 300), again))
    stream.sort(key=lambda pair: pair[0])
    return genuine, [s for _, s in stream]


def ingest_all(gateway: Gateway, stream: list[SignedReading], batch_size: int) -> Counter[str]:
    seen: Counter[str] = Counter()
    for i in range(0, len(stream), batch_size):
        for outcome in gateway.ingest(stream[i : i + batch_size]):
            seen[outcome.code or outcome.status] += 1
    return seen


def test_ten_thousand_readings_with_forgeries_duplicates_and_replays(store: Store) -> None:
    meters = fleet(65)
    register(store, meters)
    genuine, stream = mixed_traffic(meters, 100, n_forged=1000, n_dupes=2000, n_replays=500)
    assert len(stream) == 10_000
    seen = ingest_all(Gateway(store, DOMAIN, lambda: NOW_S), stream, batch_size=500)

    assert seen == {"accepted": 6500, "duplicate": 2000, "bad_signature": 1000, "replay": 500}
    stored = {
        (r.reading.meter, r.reading.sequence): r.reading
        for m in meters
        for r in store.readings_of_meter(m.address)
    }
    assert stored == {(g.reading.meter, g.reading.sequence): g.reading for g in genuine}
    for interval in range(100):
        start = T0 + interval * INTERVAL_S
        expected = [g.reading for g in genuine if g.reading.interval_start_s == start]
        assert store.interval_totals(start) == (
            sum(r.imported_wh for r in expected),
            sum(r.exported_wh for r in expected),
        )


def test_each_rejection_is_logged_with_its_code(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    [meter] = fleet(1)
    register(store, [meter])
    gateway = Gateway(store, DOMAIN, lambda: NOW_S)
    with caplog.at_level(logging.WARNING, logger="gridledger.metering.gateway"):
        outcomes = gateway.ingest(
            [
                signed(meter, 1),
                signed(meter, 1, imported_wh=3),
                signed(meter, 2, imported_wh=10**6),
                signed(meter, 3, key=key_from_seed("x")),
            ]
        )
    assert [o.code for o in outcomes] == [None, "replay", "implausible", "bad_signature"]
    assert [o.reading_id is not None for o in outcomes] == [True, False, False, False]
    logged = [r.getMessage() for r in caplog.records]
    # Replays are decided inside the insert transaction, so they are logged last.
    assert sorted(m.split()[2] for m in logged) == [
        "code=bad_signature",
        "code=implausible",
        "code=replay",
    ]


def test_deactivated_meter_and_clock_are_honoured(store: Store) -> None:
    [meter] = fleet(1)
    register(store, [meter])
    now = [T0]
    gateway = Gateway(store, DOMAIN, lambda: now[0])
    assert gateway.ingest([signed(meter, 1, interval=0)])[0].code == "out_of_window"
    now[0] = T0 + INTERVAL_S
    assert gateway.ingest([signed(meter, 1, interval=0)])[0].status == "accepted"
    store.set_meter_active(meter.address, False)
    assert gateway.ingest([signed(meter, 2, interval=0)])[0].code == "inactive_meter"


def test_concurrent_gateways_store_each_reading_once(store: Store, db_url: str) -> None:
    meters = fleet(4)
    register(store, meters)
    readings = [signed(m, s, interval=s - 1) for m in meters for s in range(1, 61)]
    results: list[list[str]] = []

    def run(order: list[SignedReading]) -> None:
        second = Store.open(db_url)
        try:
            gateway = Gateway(second, DOMAIN, lambda: NOW_S)
            results.append(
                [
                    o.status
                    for i in range(0, len(order), 20)
                    for o in gateway.ingest(order[i : i + 20])
                ]
            )
        finally:
            second.close()

    threads = [threading.Thread(target=run, args=(readings,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 3
    assert all(set(statuses) <= {"accepted", "duplicate"} for statuses in results)
    assert sum(s.count("accepted") for s in results) == len(readings)
    assert sum(len(store.readings_of_meter(m.address)) for m in meters) == len(readings)


def test_json_batch_endpoint_answers_every_item_in_order(store: Store) -> None:
    [meter] = fleet(1)
    register(store, [meter])
    good = signed_reading_to_json(signed(meter, 1))
    acks = ingest_json(
        Gateway(store, DOMAIN, lambda: NOW_S), [good, {"meter": meter.address, "sequence": 2}, good]
    )
    assert [(a["sequence"], a["status"], a["code"]) for a in acks] == [
        (1, "accepted", None),
        (2, "rejected", "malformed"),
        (1, "duplicate", None),
    ]
    with pytest.raises(ValidationError, match="readings"):
        ingest_json(Gateway(store, DOMAIN, lambda: NOW_S), {"not": "a list"})
