"""Measure gateway ingest against bare signature recovery (the gateway's floor cost).

``python -m gridledger.metering.bench 10000 sqlite:///tmp/bench.sqlite`` prints the numbers.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from gridledger.eip712 import Domain, address_of, key_from_seed, recover_address
from gridledger.metering.gateway import Gateway
from gridledger.metering.reading import Reading, SignedReading, reading_digest, sign_reading

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
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def signed_fleet_readings(n_readings: int, start_s: int) -> list[SignedReading]:
    n_meters = max(1, -(-n_readings // READINGS_PER_METER))
    keys = [key_from_seed(f"bench-meter-{i}") for i in range(n_meters)]
    out = []
    for i in range(n_readings):
        meter, step = divmod(i, READINGS_PER_METER)
        reading = Reading(address_of(keys[meter]), step + 1, start_s + step * INTERVAL_S,
                          INTERVAL_S, 100 + i % 400, i % 50)
        out.append(sign_reading(reading, keys[meter], BENCH_DOMAIN))
    return out


def bare_recover_per_s(batch: list[SignedReading]) -> float:
    digests = [(reading_digest(s.reading, BENCH_DOMAIN), s.signature) for s in batch]
    began = time.perf_counter()
    for digest, signature in digests:
        recover_address(digest, signature)
    return len(digests) / (time.perf_counter() - began)


def bench_ingest(n_readings: int, db_url: str) -> dict[str, Any]:
    """Ingest ``n_readings`` fresh signed readings in batches; compare with bare recovery."""
    from gridledger.store import Meter, Participant, Store

    start_s = 1_700_000_100 // INTERVAL_S * INTERVAL_S
    batch = signed_fleet_readings(n_readings, start_s)
    store = Store.open(db_url)
    try:
        for meter in sorted({s.reading.meter for s in batch}):
            store.add_participant(Participant(meter, "prosumer", 0, "bench"))
            store.add_meter(Meter(meter, meter, 100_000))
        gateway = Gateway(store, BENCH_DOMAIN, lambda: start_s + 400 * INTERVAL_S)
        recover_rate = bare_recover_per_s(batch)
        rss_before = rss_bytes()
        began = time.perf_counter()
        accepted = 0
        for i in range(0, len(batch), BATCH_SIZE):
            outcomes = gateway.ingest(batch[i:i + BATCH_SIZE])
            accepted += sum(o.status == "accepted" for o in outcomes)
        elapsed = time.perf_counter() - began
        rss_after = rss_bytes()
    finally:
        store.close()
    accepted_rate = accepted / elapsed
    return {
        "db": db_url.split(":", 1)[0], "readings": n_readings, "accepted": accepted,
        "batch_size": BATCH_SIZE, "seconds": round(elapsed, 3),
        "accepted_per_s": round(accepted_rate), "bare_recover_per_s": round(recover_rate),
        "ratio": round(accepted_rate / recover_rate, 3),
        "rss_before_mb": round(rss_before / 2**20, 1), "rss_after_mb": round(rss_after / 2**20, 1),
    }


if __name__ == "__main__":
    print(json.dumps(bench_ingest(int(sys.argv[1]), sys.argv[2])))
