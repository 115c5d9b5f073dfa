"""The array forms of the strategies and the battery give the one-household results exactly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridledger.sim.assets import Battery, BatteryFleet
from gridledger.sim.community import build_community
from gridledger.sim.strategies import (
    OrderIntent,
    Side,
    TariffBand,
    ZipTrader,
    ZipTraders,
    truthful,
    truthful_quotes,
    zero_intelligence,
    zero_intelligence_quotes,
)

BAND = TariffBand(80_000, 300_000)


def _positions(seed: int, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    positions = rng.integers(-900, 900, n)
    positions[rng.permutation(n)[: n // 5]] = 0  # balanced households quote nothing
    return positions.astype(np.int64)


def _as_tuples(quotes: object) -> list[tuple[int, str, int, int]]:
    rows, is_buy = quotes.rows.tolist(), quotes.is_buy.tolist()  # type: ignore[attr-defined]
    energy, price = quotes.energy_wh.tolist(), quotes.price_micro_per_kwh.tolist()  # type: ignore[attr-defined]
    return [
        (r, "buy" if b else "sell", e, p)
        for r, b, e, p in zip(rows, is_buy, energy, price, strict=True)
    ]


def _one_at_a_time(
    positions: np.ndarray, quote: Callable[[int], OrderIntent | None]
) -> list[tuple[int, str, int, int]]:
    expected = []
    for row, net in enumerate(positions.tolist()):
        intent = quote(net)
        if intent is not None:
            expected.append((row, intent.side.value, intent.energy_wh, intent.price_micro_per_kwh))
    return expected


def test_truthful_and_zero_intelligence_quotes_match_one_household_at_a_time() -> None:
    positions = _positions(1)
    assert _as_tuples(truthful_quotes(positions, BAND)) == _one_at_a_time(
        positions, lambda net: truthful(net, BAND)
    )
    scalar_rng, array_rng = np.random.default_rng(5), np.random.default_rng(5)
    assert _as_tuples(zero_intelligence_quotes(positions, BAND, array_rng)) == _one_at_a_time(
        positions, lambda net: zero_intelligence(net, BAND, scalar_rng)
    )
    assert scalar_rng.integers(1 << 30) == array_rng.integers(1 << 30)  # same draws consumed


def test_zip_traders_learn_exactly_like_zip_trader() -> None:
    n, rng = 30, np.random.default_rng(2)
    scalar = [ZipTrader() for _ in range(n)]
    traders = ZipTraders.start(n)
    for step in range(200):
        positions = _positions(100 + step, n)
        quotes = traders.quotes(positions, BAND)
        expected = [scalar[r].quote(int(positions[r]), BAND) for r in quotes.rows.tolist()]
        assert quotes.price_micro_per_kwh.tolist() == [q.price_micro_per_kwh for q in expected if q]
        targets = rng.integers(0, 400_000, quotes.rows.size).astype(np.int64)
        traders = traders.observe(quotes.rows, quotes.is_buy, targets, BAND)
        for row, buy, target in zip(
            quotes.rows.tolist(), quotes.is_buy.tolist(), targets.tolist(), strict=True
        ):
            scalar[row] = scalar[row].observe(Side.BUY if buy else Side.SELL, target, BAND)
    assert traders.margin.tolist() == [t.margin for t in scalar]
    assert traders.last_change_micro_per_kwh.tolist() == [
        t.last_change_micro_per_kwh for t in scalar
    ]
    assert len(set(traders.margin.tolist())) > 1  # the traders really moved apart


def test_battery_fleet_dispatch_matches_battery_dispatch_step_by_step() -> None:
    batteries = [
        Battery(10_000, 5_000, 0.9, 5_000),
        Battery(5_000, 3_000, 0.81, 0),
        Battery(13_500, 4_600, 0.95, 13_500),
    ]
    need = np.random.default_rng(4).integers(-2_000, 2_000, (3, 500)).astype(np.int64)
    fleet = BatteryFleet.of(list(enumerate(batteries)))
    flow, soc = fleet.dispatch(need, 900)
    for row, battery in enumerate(batteries):
        for step, wh in enumerate(need[row].tolist()):
            moved, battery = battery.dispatch(wh, 900)
            assert (int(flow[row, step]), int(soc[row, step])) == (moved, battery.soc_wh)
    assert (soc == 0).any() and (soc == fleet.capacity_wh[:, None]).any()  # hit both bounds


def test_community_arrays_hold_every_household_in_order() -> None:
    community = build_community(n_households=12, seed=4, battery_count=3, n_intervals=96)
    homes = community.arrays()
    assert homes.names == tuple(h.name for h in community.households)
    assert homes.bus.tolist() == [h.bus for h in community.households]
    assert (homes.load_wh == np.stack([h.load_wh for h in community.households])).all()
    owners = [i for i, h in enumerate(community.households) if h.battery is not None]
    assert homes.batteries.owner.tolist() == owners and len(homes.batteries) == 3
