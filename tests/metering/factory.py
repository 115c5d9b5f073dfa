"""Test data: deterministic meter keys, a registered fleet and signed readings."""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.metering import Reading, SignedReading, sign_reading
from gridledger.store import Meter, Participant, Store

DOMAIN = Domain("gridledger", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
INTERVAL_S = 900
T0 = 1_700_000_100 // INTERVAL_S * INTERVAL_S  # an aligned interval start
NOW_S = T0 + 100 * INTERVAL_S
RATED_POWER_W = 10_000  # 2,500 Wh per 15 minutes


@dataclass(frozen=True)
class FleetMeter:
    key: bytes
    address: str
    owner: str


def fleet(n_meters: int, prefix: str = "meter") -> list[FleetMeter]:
    meters = []
    for i in range(n_meters):
        key = key_from_seed(f"{prefix}-{i}")
        owner = address_of(key_from_seed(f"{prefix}-owner-{i}"))
        meters.append(FleetMeter(key, address_of(key), owner))
    return meters


def register(store: Store, meters: list[FleetMeter], rated_power_w: int = RATED_POWER_W) -> None:
    for i, m in enumerate(meters):
        store.add_participant(Participant(m.owner, "prosumer", i % 5, f"house {i}"))
        store.add_meter(Meter(m.address, m.owner, rated_power_w))


def signed(
    meter: FleetMeter,
    sequence: int,
    interval: int = 0,
    imported_wh: int = 500,
    exported_wh: int = 0,
    key: bytes | None = None,
) -> SignedReading:
    reading = Reading(
        meter.address, sequence, T0 + interval * INTERVAL_S, INTERVAL_S, imported_wh, exported_wh
    )
    return sign_reading(reading, key or meter.key, DOMAIN)
