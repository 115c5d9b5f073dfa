"""Measure gateway ingest against bare signature recovery (the gateway's floor cost).

``python -m gridledger.metering.bench 10000 sqlite:///tmp/bench.sqlite`` prints the numbers;
any ``Store`` URL works (``postgresql+psycopg://user@host/db`` for PostgreSQL).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridledger.eip712 import Domain, address_of, key_from_seed, recover_address
from gridledger.metering.gateway import Gateway
from gridledger.metering.reading import Reading, SignedReading, reading_digest, sign_reading

if TYPE_CHECKING:
    from gridledger.store import Store

BENCH_DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
INTERVAL_S = 900
READINGS_PER_METER = 96  # one day of 15-minute intervals
BATCH_SIZE = 1000


def rss_bytes() -> int:
    """Resident set size of this process now (Linux), 0 where /proc is absent."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def fleet_keys(n_readings: int, fleet: str = "bench") -> list[bytes]:
    n_meters = max(1, -(-n_readings // READINGS_PER_METER))
    return [key_from_seed(f"{fleet}-meter-{i}") for i in range(n_meters)]


def signed_fleet_readings(
    n_readings: int, start_s: int, keys: list[bytes] | None = None, first: int = 0
) -> list[SignedReading]:
    """Readings ``first`` .. ``first + n_readings - 1`` of the fleet: meter-major, 96 each."""
    keys = keys if keys is not None else fleet_keys(first + n_readings)
    out = []
    for i in range(first, first + n_readings):
        meter, step = divmod(i, READINGS_PER_METER)
        reading = Reading(
            address_of(keys[meter]),
            step + 1,
            start_s + step * INTERVAL_S,
            INTERVAL_S,
            100 + i % 400,
            i % 50,
        )
        out.append(sign_reading(reading, keys[meter], BENCH_DOMAIN))
    return out


def bare_recover_per_s(batch: list[SignedReading]) -> float:
    digests = [(reading_digest(s.reading, BENCH_DOMAIN), s.signature) for s in batch]
    began = time.perf_counter()
    for digest, signature in digests:
        recover_address(digest, signature)
    return len(digests) / (time.perf_counter() - began)


def _register_fleet(store: Store, keys: list[bytes]) -> None:
    from gridledger.store import Meter, Participant

    for meter in sorted(address_of(k) for k in keys):
        store.add_participant(Participant(meter, "prosumer", 0, "bench"))
        store.add_meter(Meter(meter, meter, 100_000))


def bench_ingest(n_readings: int, db_url: str, fleet: str = "bench") -> dict[str, Any]:
    """Ingest ``n_readings`` fresh signed readings in batches; compare with bare recovery.

    The baseline is one core recovering signers (``bare_recover_per_s``); the gateway verifies
    on every core (``verify_workers`` processes), so on 2 cores it can pass 1x.

    Batches are signed just before they are ingested (outside the timed part), so nothing
    grows with ``n_readings`` but the database: ``rss_growth_mb`` (resident memory after the
    last batch minus after the first) must stay flat whether 20,000 or 100,000 are ingested.
    ``fleet`` names the meters' key seeds: another fleet can be benched on the same database.
    """
    from gridledger.store import Store

    start_s = 1_700_000_100 // INTERVAL_S * INTERVAL_S
    keys = fleet_keys(n_readings, fleet)
    store = Store.open(db_url)
    try:
        _register_fleet(store, keys)
        gateway = Gateway(store, BENCH_DOMAIN, lambda: start_s + 400 * INTERVAL_S)
        gateway.start_workers()  # started once by a node, so not part of the timed ingest
        elapsed, accepted, recover_rate, rss_first = 0.0, 0, 0.0, 0
        rss_before = rss_bytes()
        for first in range(0, n_readings, BATCH_SIZE):
            batch = signed_fleet_readings(min(BATCH_SIZE, n_readings - first), start_s, keys, first)
            if first == 0:
                recover_rate = bare_recover_per_s(batch)
            began = time.perf_counter()
            outcomes = gateway.ingest(batch)
            elapsed += time.perf_counter() - began
            accepted += sum(o.status == "accepted" for o in outcomes)
            rss_first = rss_first or rss_bytes()
        rss_after = rss_bytes()
    finally:
        gateway.close()
        store.close()
    accepted_rate = accepted / elapsed
    return {
        "db": db_url.split(":", 1)[0],
        "readings": n_readings,
        "accepted": accepted,
        "batch_size": BATCH_SIZE,
        "verify_workers": gateway.workers,
        "seconds": round(elapsed, 3),
        "accepted_per_s": round(accepted_rate),
        "bare_recover_per_s": round(recover_rate),
        "ratio": round(accepted_rate / recover_rate, 3),
        "rss_before_mb": _mb(rss_before),
        "rss_after_first_batch_mb": _mb(rss_first),
        "rss_after_mb": _mb(rss_after),
        "rss_growth_mb": _mb(rss_after - rss_first),
    }


def _mb(n_bytes: int) -> float:
    return round(n_bytes / 2**20, 1)


if __name__ == "__main__":
    print(json.dumps(bench_ingest(int(sys.argv[1]), sys.argv[2])))
