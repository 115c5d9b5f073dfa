"""What a participant, a meter and the operator do over HTTP: sign in, order, read, register.

Shared by tests/node, tests/api and tests/web. Everything goes through the real API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gridledger.api._auth import sign_in_message_signature
from gridledger.config import Settings
from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.market import Order, sign_order, signed_order_to_json
from gridledger.metering import Reading, sign_reading, signed_reading_to_json
from gridledger.node.runner import Node
from tests.support.http import serve_app

DEPOSIT_MICRO = 50_000_000


def fast_settings(db_url: str, tmp: Path, **changes: Any) -> Settings:
    """A node whose 15-minute intervals last 5 wall seconds."""
    base = Settings(
        chain="memory",
        db_url=db_url,
        speed=180,
        settle_grace_s=360,  # 2 wall seconds for the meters to report
        state_dir=str(tmp / "state"),
        rate_limit_participant_per_min=100_000,
        rate_limit_meter_per_min=100_000,
    )
    return base.replace(**changes)


@dataclass
class Actor:
    """A key and (after sign-in) its bearer token."""

    key: bytes
    token: str = ""

    @property
    def address(self) -> str:
        return address_of(self.key)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def sign_in(base_url: str, actor: Actor) -> Actor:
    challenge = httpx.get(f"{base_url}/v1/auth/nonce", params={"address": actor.address})
    challenge.raise_for_status()
    message = challenge.json()["message"]
    response = httpx.post(
        f"{base_url}/v1/auth/token",
        json={"message": message, "signature": sign_in_message_signature(message, actor.key)},
    )
    response.raise_for_status()
    actor.token = response.json()["token"]
    return actor


@dataclass
class Household:
    participant: Actor
    meter_key: bytes
    sequence: int = 0

    @property
    def meter(self) -> str:
        return address_of(self.meter_key)


def enrol(
    base_url: str, operator: Actor, name: str, deposit_micro: int = DEPOSIT_MICRO
) -> Household:
    """The operator registers a household and its meter; the household signs in."""
    household = Household(Actor(key_from_seed(f"test-{name}")), key_from_seed(f"test-meter-{name}"))
    body = {
        "address": household.participant.address,
        "role": "prosumer",
        "grid_node": 3,
        "label": name,
        "deposit_micro": deposit_micro,
    }
    httpx.post(
        f"{base_url}/v1/participants", json=body, headers=operator.headers, timeout=30
    ).raise_for_status()
    meter = {
        "address": household.meter,
        "owner": household.participant.address,
        "rated_power_w": 30_000,
    }
    httpx.post(
        f"{base_url}/v1/meters", json=meter, headers=operator.headers, timeout=30
    ).raise_for_status()
    sign_in(base_url, household.participant)
    return household


def domain_of(base_url: str) -> Domain:
    chain = httpx.get(f"{base_url}/v1/chain").json()
    return Domain("gridledger", "1", chain["chain_id"], chain["market"])


def order_body(
    household: Household,
    domain: Domain,
    side: str,
    energy_wh: int,
    price: int,
    start_s: int,
    nonce: int,
) -> dict[str, Any]:
    order = Order(household.participant.address, side, energy_wh, price, start_s, nonce)  # type: ignore[arg-type]
    return signed_order_to_json(sign_order(order, household.participant.key, domain))


def reading_body(
    household: Household,
    domain: Domain,
    start_s: int,
    imported_wh: int,
    exported_wh: int,
    length_s: int = 900,
) -> dict[str, Any]:
    household.sequence += 1
    reading = Reading(
        household.meter, household.sequence, start_s, length_s, imported_wh, exported_wh
    )
    return signed_reading_to_json(sign_reading(reading, household.meter_key, domain))


def market(base_url: str) -> dict[str, Any]:
    return httpx.get(f"{base_url}/v1/market").json()


def wait_for(predicate: Any, timeout_s: float, what: str, poll_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def open_interval_with_time_left(base_url: str, min_wall_s: float = 1.5) -> int:
    """The open interval, waiting for the next one when its gate closes too soon."""

    def ready() -> int | None:
        status = market(base_url)
        return (
            status["open_interval_start_s"] if status["gate_closure_in_s"] >= min_wall_s else None
        )

    return int(wait_for(ready, 30, "an open interval with time left"))


def interval_status(base_url: str, start_s: int) -> str | None:
    response = httpx.get(f"{base_url}/v1/intervals/{start_s}")
    return response.json()["status"] if response.status_code == 200 else None


@contextmanager
def running_node(settings: Settings) -> Iterator[tuple[Node, str, Actor]]:
    """An in-process node serving its API on a free port, with the operator signed in."""
    node = Node.open(settings).start()
    try:
        with serve_app(node.app()) as base_url:
            operator = sign_in(base_url, Actor(_operator_key(node)))
            yield node, base_url, operator
    finally:
        node.stop()


def _operator_key(node: Node) -> bytes:
    if node.settings.operator_key:
        return bytes.fromhex(node.settings.operator_key.removeprefix("0x"))
    return (1).to_bytes(32, "big")  # the memory chain's dev key (ledger.transport)
