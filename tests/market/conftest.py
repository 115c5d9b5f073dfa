"""Shared fixtures for the market tests: a domain, deterministic keys and an order factory."""

from __future__ import annotations

import pytest

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.market import Order

INTERVAL_S = 1_700_000_100 - 1_700_000_100 % 900
MARKET_ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture(scope="session")
def domain() -> Domain:
    return Domain("gridledger", "1", 31337, MARKET_ADDRESS)


def key(name: str) -> bytes:
    return key_from_seed(name)


def addr(name: str) -> str:
    return address_of(key_from_seed(name))


def order(
    name: str, side: str, energy_wh: int, price: int, nonce: int = 0, interval: int = INTERVAL_S
) -> Order:
    return Order(addr(name), side, energy_wh, price, interval, nonce)  # type: ignore[arg-type]
