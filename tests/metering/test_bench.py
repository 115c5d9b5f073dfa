"""The ingest-rate target: at least half the bare signature-recovery rate on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.metering.bench import bench_ingest


@pytest.mark.slow
def test_sqlite_ingest_keeps_half_the_bare_recovery_rate(tmp_path: Path) -> None:
    result = bench_ingest(10_000, f"sqlite:///{tmp_path / 'bench.sqlite'}")
    assert result["accepted"] == 10_000
    assert result["ratio"] >= 0.5, result
