"""One trained detector per test session: the configuration ``gridledger security eval`` reports."""

from __future__ import annotations

import pytest

from gridledger.security.data import Episode, episode, grid_meters
from gridledger.security.meter_detector import MeterDetector, TrainingConfig, train_meter_detector

HELD_OUT_GRID = "1-LV-semiurb5--0-sw"  # not among the training grids
HELD_OUT = (3, 7)  # odd episodes: days never used in training


@pytest.fixture(scope="session")
def detector() -> MeterDetector:
    return train_meter_detector(TrainingConfig(kind="hgb", seed=0))


@pytest.fixture(scope="session")
def held_out() -> list[Episode]:
    meters = grid_meters(HELD_OUT_GRID)
    return [episode(meters, i) for i in HELD_OUT]
