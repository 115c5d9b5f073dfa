from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.settlement import SettledTrade, net_interval, trade_amount_micro

GRID = "0x000000000000000000000000000000000000dEaD"
ACCOUNTS = [f"0x{i:040x}" for i in range(1, 7)]


def test_amount_is_floored_to_whole_micro_units() -> None:
    assert trade_amount_micro(1, 999) == 0
    assert trade_amount_micro(1500, 200_000) == 300_000
    assert trade_amount_micro(333, 100_001) == 33_300  # 33_300.333 floored


def test_netting_pays_seller_and_grid_fee_exactly() -> None:
    trades = [SettledTrade(ACCOUNTS[0], ACCOUNTS[1], 2000, 150_000, 20_000)]
    result = net_interval(trades, GRID)
    assert result.deltas_micro == {ACCOUNTS[0]: -340_000, ACCOUNTS[1]: 300_000, GRID: 40_000}
    assert result.fees_micro == 40_000
    assert result.traded_energy_wh == 2000


def test_participant_buying_and_selling_nets_to_one_delta() -> None:
    a, b, c = ACCOUNTS[:3]
    trades = [SettledTrade(a, b, 1000, 100_000), SettledTrade(b, c, 1000, 100_000)]
    assert net_interval(trades, GRID).deltas_micro == {a: -100_000, c: 100_000}


trade_strategy = st.builds(
    SettledTrade,
    buyer=st.sampled_from(ACCOUNTS),
    seller=st.sampled_from(ACCOUNTS),
    energy_wh=st.integers(1, 10_000_000),
    price_micro_per_kwh=st.integers(0, 2_000_000),
    fee_micro_per_kwh=st.integers(0, 100_000),
)


@settings(max_examples=300)
@given(st.lists(trade_strategy, max_size=50))
def test_debits_equal_credits_whatever_the_rounding(trades: list[SettledTrade]) -> None:
    result = net_interval(trades, GRID)
    assert sum(result.deltas_micro.values()) == 0
    assert 0 not in result.deltas_micro.values()
    assert result.fees_micro == sum(t.fee_micro for t in trades)
