"""``gridledger bench verifier``: the synthetic interval re-executes and the figures add up."""

from __future__ import annotations

from gridledger.verifier.bench import bench_verifier


def test_bench_re_executes_a_small_interval_and_counts_the_wire() -> None:
    report = bench_verifier(participants=20)
    assert (report["participants"], report["orders"], report["readings"]) == (20, 20, 20)
    assert report["trades"] > 0 and report["package_json_bytes"] > 0
    process_s = report["verifier_process_cpu_s_per_interval"]
    assert process_s >= report["verifier_cpu_s_per_interval"] > 0
