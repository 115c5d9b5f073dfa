"""Bidding strategies never leave the tariff band and buy/sell on the right side."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gridledger.config import Settings
from gridledger.sim import Side, TariffBand, ZipTrader, truthful, zero_intelligence

BAND = TariffBand.from_settings(Settings())


@st.composite
def bands(draw: st.DrawFn) -> TariffBand:
    low = draw(st.integers(0, 1_000_000))
    return TariffBand(low, draw(st.integers(low, 2_000_000)))


def _in_band(price: int, band: TariffBand) -> bool:
    return band.feed_in_price_micro_per_kwh <= price <= band.import_price_micro_per_kwh


@given(band=bands(), net_wh=st.integers(-50_000, 50_000), seed=st.integers(0, 2**32 - 1))
def test_every_strategy_quotes_inside_the_band_on_the_right_side(
    band: TariffBand, net_wh: int, seed: int
) -> None:
    zip_trader = ZipTrader(margin=float(np.random.default_rng(seed).uniform(0, 5)))
    intents = [
        truthful(net_wh, band),
        zero_intelligence(net_wh, band, np.random.default_rng(seed)),
        zip_trader.quote(net_wh, band),
    ]
    for intent in intents:
        if net_wh == 0:
            assert intent is None
            continue
        assert intent is not None
        assert _in_band(intent.price_micro_per_kwh, band)
        assert intent.energy_wh == abs(net_wh)
        assert intent.side is (Side.BUY if net_wh > 0 else Side.SELL)


@given(band=bands(), prices=st.lists(st.integers(-(10**6), 4 * 10**6), max_size=30))
def test_zip_stays_in_band_whatever_prices_it_observes(band: TariffBand, prices: list[int]) -> None:
    buyer, seller = ZipTrader(), ZipTrader()
    for price in prices:
        buyer = buyer.observe(Side.BUY, price, band)
        seller = seller.observe(Side.SELL, price, band)
        assert _in_band(buyer.price_micro_per_kwh(Side.BUY, band), band)
        assert _in_band(seller.price_micro_per_kwh(Side.SELL, band), band)
        assert buyer.margin >= 0 and seller.margin >= 0


def test_truthful_bids_the_outside_options() -> None:
    buy, sell = truthful(700, BAND), truthful(-700, BAND)
    assert buy is not None and sell is not None
    assert buy.price_micro_per_kwh == 300_000
    assert sell.price_micro_per_kwh == 80_000


def test_zero_intelligence_is_seeded_and_spreads_over_the_band() -> None:
    def prices(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        quotes = [zero_intelligence(500, BAND, rng) for _ in range(200)]
        return [q.price_micro_per_kwh for q in quotes if q is not None]

    assert prices(11) == prices(11)
    assert prices(11) != prices(12)
    spread = prices(11)
    assert min(spread) < 120_000 and max(spread) > 260_000


def test_zip_converges_on_a_repeated_clearing_price() -> None:
    buyer, seller = ZipTrader(margin=0.05), ZipTrader(margin=0.05)
    for _ in range(60):
        buyer = buyer.observe(Side.BUY, 150_000, BAND)
        seller = seller.observe(Side.SELL, 150_000, BAND)
    assert abs(buyer.price_micro_per_kwh(Side.BUY, BAND) - 150_000) <= 50
    assert abs(seller.price_micro_per_kwh(Side.SELL, BAND) - 150_000) <= 50
    assert buyer.observe(Side.BUY, None, BAND) == buyer  # no trade, nothing learned
