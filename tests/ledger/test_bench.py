"""bench_chain: the settlement gas comparison the CLI's `bench chain` prints."""

from __future__ import annotations

import pytest

from gridledger.errors import ValidationError
from gridledger.ledger.bench import BLOCK_GAS_LIMIT, bench_chain, net_deltas, trades_for


def test_trade_model_has_two_trades_per_participant() -> None:
    accounts, trades = trades_for(10)
    assert len(trades) == 10
    counts = {a: 0 for a in accounts}
    for buyer, seller, amount in trades:
        counts[buyer] += 1
        counts[seller] += 1
        assert amount > 0
    assert set(counts.values()) == {2}
    deltas = net_deltas(trades, "0x" + "66" * 20)
    assert sum(deltas.values()) == 0
    with pytest.raises(ValidationError):
        trades_for(1)


def test_bench_chain_reports_the_comparison() -> None:
    report = bench_chain(100)
    root, baseline = report["netting_root"], report["per_trade_baseline"]
    assert report["model"]["trades_per_interval"] == 100
    assert report["model"]["trades_per_participant"] == 2.0
    # Direct: one SSTORE per account (~9.3k); the root: O(1); claims: one per account per day.
    assert 8_000 < report["direct"]["gas_per_entry"] < 12_000
    assert root["settle_root_gas"] < 130_000  # O(1): ~64k + three verifier attestations
    assert 10_000 < root["claim_gas_batched"] < 30_000
    assert 25_000 < baseline["gas_per_trade"] < 60_000
    assert report["ratio_vs_baseline"]["netting_root_daily_claims"] >= 20
    large = report["interval_10000"]
    assert large["participants"] == 10_000 and large["fits_block"]
    assert large["settle_root_gas"] < BLOCK_GAS_LIMIT // 100
    assert large["proof_levels"] == 14
    assert large["direct_settle_gas_extrapolated"] > BLOCK_GAS_LIMIT
