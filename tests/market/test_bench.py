"""The benchmark runs and reports consistent numbers on a small book."""

from __future__ import annotations

from gridledger.market.bench import bench_market


def test_bench_market_small() -> None:
    report = bench_market(20_000, seed=1, repeats=1)
    assert report["orders"] == 20_000
    assert report["clear_uniform_s"] > 0 and report["argsort_s"] > 0
    assert report["ratio_to_argsort"] == report["clear_uniform_s"] / report["argsort_s"]
    assert report["trades"] > 0 and report["cleared_energy_wh"] > 0
    assert report["clear_peak_traced_bytes"] > report["book_bytes"] // 6  # it allocates
    assert report["clear_peak_traced_bytes"] < 20 * report["book_bytes"]
