"""Fixtures for the ledger tests: a fresh deployment per test on each chain of ``chain_url``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridledger.eip712 import address_of, key_from_seed
from gridledger.ledger import Ledger, Role
from gridledger.verifier.panel import (
    DEV_QUORUM,
    InProcessVerifiers,
    dev_verifier_addresses,
    dev_verifier_keys,
)

ETH_WEI = 10**18


@dataclass(frozen=True)
class Party:
    key: bytes
    address: str


def party(name: str) -> Party:
    key = key_from_seed(f"ledger-test:{name}")
    return Party(key, address_of(key))


def deploy(chain: str, **kwargs: object) -> Ledger:
    """A fresh deployment with the dev verifier set (3 keys, quorum 2)."""
    return Ledger.deploy(
        chain,
        verifiers=dev_verifier_addresses(),
        quorum=DEV_QUORUM,
        **kwargs,  # type: ignore[arg-type]
    )


def panel(ledger: Ledger) -> InProcessVerifiers:
    """The dev verifiers of `ledger`, signing whatever they are asked."""
    return InProcessVerifiers(dev_verifier_keys(), domain=ledger.domain)


@pytest.fixture
def ledger(chain_url: str) -> Ledger:
    return deploy(chain_url)


@pytest.fixture
def alice(ledger: Ledger) -> Party:
    """A registered, funded prosumer."""
    p = party("alice")
    ledger.add_participant(p.address, Role.PROSUMER, 11)
    ledger.fund_eth(p.address, ETH_WEI)
    return p


@pytest.fixture
def bob(ledger: Ledger) -> Party:
    """A registered, funded consumer."""
    p = party("bob")
    ledger.add_participant(p.address, Role.CONSUMER, 12)
    ledger.fund_eth(p.address, ETH_WEI)
    return p
