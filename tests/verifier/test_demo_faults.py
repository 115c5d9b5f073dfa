"""``gridledger demo --verifiers N --quorum K --fault ...``: the quorum at work in one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from gridledger.config import Settings
from gridledger.sim.day import DayConfig, run_day

NOON = 48  # sunny intervals: the households trade


def day(tmp_path: Path, fault: str | None) -> dict[str, object]:
    config = DayConfig(
        households=6,
        intervals=3,
        first_interval=NOON,
        fresh_db=False,
        verifiers=4,
        quorum=3,
        fault=fault,
    )
    settings = Settings(
        db_url=f"sqlite:///{tmp_path / 'demo.sqlite'}", state_dir=str(tmp_path / "s")
    )
    summary: dict[str, object] = run_day(config, settings).summary
    return summary


@pytest.mark.parametrize("fault", [None, "verifier-down", "verifier-lying"])
def test_every_interval_settles_while_n_minus_one_reach_the_quorum(
    tmp_path: Path, fault: str | None
) -> None:
    summary = day(tmp_path, fault)
    assert (summary["verifiers"], summary["quorum"]) == (4, 3)
    assert summary["settled_intervals"] == summary["attested_intervals"] == 3
    assert summary["disputed_intervals"] == 0


def test_a_tampered_interval_is_disputed_on_chain_and_the_others_settle(tmp_path: Path) -> None:
    summary = day(tmp_path, "operator-tamper")
    assert summary["disputed_intervals"] == 1
    assert summary["attested_intervals"] == 2
    assert summary["disputes_on_chain"] == 4  # every verifier committed its dispute file's hash
    assert summary["settled_intervals"] == 3  # the disputed one voided: nothing moved
    files = [Path(str(f)) for f in summary["dispute_files"]]  # type: ignore[attr-defined]
    assert files and all("expected" in f.read_text() for f in files)
