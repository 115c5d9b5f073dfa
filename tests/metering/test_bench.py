"""The ingest bench: half the bare signature-recovery rate on SQLite; PostgreSQL; flat memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.metering.bench import bench_ingest


@pytest.mark.slow
def test_sqlite_ingest_keeps_half_the_bare_recovery_rate(tmp_path: Path) -> None:
    result = bench_ingest(10_000, f"sqlite:///{tmp_path / 'bench.sqlite'}")
    assert result["accepted"] == 10_000
    assert result["ratio"] >= 0.5, result


def test_bench_ingests_every_reading_on_each_database(db_url: str) -> None:
    result = bench_ingest(2_500, db_url)  # three batches, the last one partial
    assert result["db"] == db_url.split(":", 1)[0]
    assert result["accepted"] == 2_500 and result["accepted_per_s"] > 0, result
    # RSS may also shrink (the allocator returns memory); it is reported, and bounded here.
    assert result["rss_after_first_batch_mb"] > 0 and result["rss_after_mb"] > 0, result
    assert result["rss_growth_mb"] <= 64, result


@pytest.mark.slow
def test_memory_does_not_grow_with_the_number_of_readings(db_url: str) -> None:
    small = bench_ingest(20_000, db_url, fleet="small")
    large = bench_ingest(100_000, db_url, fleet="large")
    print("ingest 20k:", small, "\ningest 100k:", large)
    assert small["accepted"] == 20_000 and large["accepted"] == 100_000
    # Five times the readings, not five times the memory: the growth stays within noise.
    assert large["rss_growth_mb"] <= small["rss_growth_mb"] + 16, (small, large)
