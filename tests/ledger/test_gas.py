"""Settlement gas on a real chain, cross-checking the forge numbers (contracts/test/SettleGas.t.sol)
and the client's fixed gas limit for settleInterval."""

from __future__ import annotations

from gridledger.eip712 import address_of, key_from_seed
from gridledger.ledger import Ledger, Role
from gridledger.ledger.client import _SETTLE_BASE_GAS, _SETTLE_GAS_PER_ENTRY
from tests.ledger.conftest import deploy, panel

T0 = 1_700_000_100


def _settle_gas(ledger: Ledger, n: int, funded: bool) -> int:
    accounts = [address_of(key_from_seed(f"gas:{n}:{i}")) for i in range(n)]
    for account in accounts:
        ledger.add_participant(account, Role.PROSUMER, 1)
        if funded:
            ledger.deposit_for(account, 10_000)
    ledger.deposit_for(ledger.deployment.grid_operator, 10_000 * n)
    ledger.commit_interval(T0, b"\1" * 32, b"\2" * 32, b"\3" * 32, 1, 1)
    deltas = {account: 1_000 + i for i, account in enumerate(accounts)}
    deltas[ledger.deployment.grid_operator] = -sum(deltas.values())
    result = ledger.settle_direct(T0, deltas, panel(ledger))
    assert ledger.escrow_of(accounts[-1]) == (10_000 if funded else 0) + 1_000 + n - 1
    return result.gas_used


def test_settlement_gas_per_entry_on_chain(chain_url: str) -> None:
    n = 60
    steady = _settle_gas(deploy(chain_url), n, funded=True)
    first_credit = _settle_gas(deploy(chain_url), n, funded=False)
    # Steady state (every escrow slot already nonzero): ~9k gas per entry, as forge measures.
    assert 7_000 * n < steady < 12_500 * n
    # A first credit creates the escrow slot: +17,100 per entry (20,000 instead of 2,900).
    assert first_credit - steady == 17_100 * n
    assert first_credit < _SETTLE_BASE_GAS + _SETTLE_GAS_PER_ENTRY * (n + 1)
