"""Throughput and settlement-gas benchmark of the chain client (not collected by pytest).

Usage: PYTHONPATH=src .venv/bin/python -m tests.ledger.bench_ledger [memory|anvil] [N ...]

Prints commit+settle transactions per second (3-entry settlements, the demo's shape) and
settleInterval gas for N entries (default 10 100), every escrow slot already funded.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gridledger.eip712 import address_of, key_from_seed
from gridledger.ledger import Role
from tests.ledger.conftest import deploy, panel

T0 = 1_700_000_100
ROOT = b"\x11" * 32


def throughput(chain: str, intervals: int = 100) -> float:
    ledger = deploy(chain)
    a, b = (address_of(key_from_seed(f"bench:{x}")) for x in "ab")
    ledger.add_participant(a, Role.PROSUMER, 1)
    ledger.add_participant(b, Role.CONSUMER, 1)
    ledger.deposit_for(b, 10**12)
    grid = ledger.deployment.grid_operator
    started = time.perf_counter()
    for i in range(intervals):
        start_s = T0 + 900 * i
        ledger.commit_interval(start_s, ROOT, ROOT, ROOT, 250_000, 1_000)
        ledger.settle_direct(start_s, {a: 1_000, b: -1_020, grid: 20}, panel(ledger))
    return 2 * intervals / (time.perf_counter() - started)


def settle_gas(chain: str, n: int) -> int:
    ledger = deploy(chain)
    accounts = [address_of(key_from_seed(f"bench:{n}:{i}")) for i in range(n)]
    for account in accounts:
        ledger.add_participant(account, Role.PROSUMER, 1)
        ledger.deposit_for(account, 10_000)
    half = n // 2
    deltas = {acc: (-100 if i < half else 100) for i, acc in enumerate(accounts[: 2 * half])}
    ledger.commit_interval(T0, ROOT, ROOT, ROOT, 1, 1)
    return ledger.settle_direct(T0, deltas, panel(ledger)).gas_used


def main(argv: list[str]) -> None:
    which = argv[0] if argv else "memory"
    sizes = [int(x) for x in argv[1:]] or [10, 100]
    service = None
    chain = "memory"
    if which == "anvil":
        from tests.support.servers import start_anvil

        service = start_anvil(Path(tempfile.mkdtemp(prefix="bench-anvil-")))
        chain = service.url
    try:
        print(f"{which}: commit+settle {throughput(chain):.0f} tx/s")
        for n in sizes:
            gas = settle_gas(chain, n)
            print(f"{which}: settleInterval {n} entries: {gas} gas, {gas / n:.0f} per entry")
    finally:
        if service is not None:
            service.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
