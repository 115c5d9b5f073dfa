"""DP aggregates: noise calibrated to one household's whole series; the epsilon budget holds."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import pytest

from gridledger.errors import ConflictError, ValidationError
from gridledger.privacy.aggregates import (
    charge,
    load_profile,
    noisy_sums,
    self_sufficiency,
    spent_epsilon,
)
from gridledger.store import IntervalRow, Store
from tests.metering.factory import INTERVAL_S, T0, fleet, register, signed

CLAMP_WH = 2_500


def test_noise_scale_is_sensitivity_over_epsilon() -> None:
    series = {"a": [1_000, 0, 500], "b": [200, 300, 10**6]}  # b's 1 MWh is clamped to 2,500
    true = [1_200, 300, 3_000]
    epsilon = 5.0
    scale = 3 * CLAMP_WH / epsilon  # three intervals of one household can change by 7,500 Wh
    errors = [
        v - t
        for _ in range(700)
        for v, t in zip(noisy_sums(series, CLAMP_WH, epsilon), true, strict=True)
    ]
    assert abs(statistics.fmean(errors)) < 0.15 * scale  # unbiased around the clamped sums
    assert statistics.fmean(abs(e) for e in errors) == pytest.approx(scale, rel=0.1)


def test_bad_epsilon_is_refused() -> None:
    for epsilon in (0.0, -1.0, float("nan"), 11.0):
        with pytest.raises(ValidationError, match="epsilon"):
            noisy_sums({"a": [1]}, CLAMP_WH, epsilon)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store.open(db_url)
    meters = fleet(3, prefix="dp")
    register(opened, meters)
    for i in range(4):
        opened.insert_readings(
            [signed(m, i + 1, interval=i, imported_wh=100 * (i + 1)) for m in meters]
        )
        opened.save_interval(IntervalRow(T0 + i * INTERVAL_S, "settled", 100_000, 0))
    yield opened
    opened.close()


def test_budget_is_enforced_and_recorded_per_grantee(store: Store) -> None:
    assert charge(store, "researcher", "load-profile", 0.4, 1.0) == pytest.approx(0.4)
    assert charge(store, "researcher", "load-profile", 0.4, 1.0) == pytest.approx(0.8)
    with pytest.raises(ConflictError, match="budget"):
        charge(store, "researcher", "load-profile", 0.4, 1.0)
    assert spent_epsilon(store, "researcher") == pytest.approx(0.8)  # the refusal cost nothing
    assert charge(store, "installer", "load-profile", 0.4, 1.0) == pytest.approx(0.4)


def test_releases_cover_the_window_and_spend_the_budget(store: Store) -> None:
    starts, release = load_profile(store, "lab", T0, T0 + 4 * INTERVAL_S, 0.5)
    assert starts == [T0 + i * INTERVAL_S for i in range(4)] and len(release.values) == 4
    share, second = self_sufficiency(store, "lab", T0, T0 + 4 * INTERVAL_S, 0.5)
    assert 0.0 <= share <= 1.0 and second.spent_epsilon == pytest.approx(1.0)
    with pytest.raises(ConflictError, match="budget"):
        load_profile(store, "lab", T0, T0 + 4 * INTERVAL_S, 0.01)
