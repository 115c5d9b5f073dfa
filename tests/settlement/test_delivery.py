from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.settlement import Delivery, SettledTrade, Tariffs, settle_with_delivery

GRID, SUPPLIER = "0x" + "ee" * 20, "0x" + "5e" * 20
A, B, C = ("0x" + f"{i:02x}" * 20 for i in (1, 2, 3))
TARIFFS = Tariffs(import_price_micro_per_kwh=300_000, feed_in_price_micro_per_kwh=80_000)


def settle(trades: list[SettledTrade], deliveries: dict[str, Delivery], **kw: object):  # type: ignore[no-untyped-def]
    return settle_with_delivery(
        trades, deliveries, TARIFFS, grid_operator=GRID, supplier=SUPPLIER, **kw
    )  # type: ignore[arg-type]


def test_delivery_as_contracted_settles_only_the_trade() -> None:
    trade = SettledTrade(A, B, 1000, 150_000, 20_000)
    result = settle([trade], {A: Delivery(1000, 0), B: Delivery(0, 1000)})
    assert result.deltas_micro == {A: -170_000, B: 150_000, GRID: 20_000}
    assert result.unsettled_micro == {}


def test_seller_short_pays_supplier_at_import_price() -> None:
    trade = SettledTrade(A, B, 1000, 150_000)
    # B promised 1000 Wh but exported 600: the supplier covered 400 Wh at 0.30/kWh.
    result = settle([trade], {A: Delivery(1000, 0), B: Delivery(0, 600)})
    assert result.deltas_micro == {A: -150_000, B: 150_000 - 120_000, SUPPLIER: 120_000}
    assert [line.kind for line in result.lines_of(B)] == ["trade-sell", "imbalance-import"]


def test_buyer_who_took_less_is_paid_feed_in_for_the_rest() -> None:
    trade = SettledTrade(A, B, 1000, 150_000)
    result = settle([trade], {A: Delivery(700, 0), B: Delivery(0, 1000)})
    assert result.deltas_micro == {A: -150_000 + 24_000, B: 150_000, SUPPLIER: -24_000}


def test_non_trader_settles_everything_with_the_supplier() -> None:
    result = settle([], {C: Delivery(2000, 500)})
    assert result.deltas_micro == {C: -450_000, SUPPLIER: 450_000}


def test_charge_beyond_escrow_is_cut_and_reported_not_lost() -> None:
    result = settle([], {C: Delivery(10_000, 0)}, escrow_micro={C: 1_000_000})
    assert result.deltas_micro == {C: -1_000_000, SUPPLIER: 1_000_000}
    assert result.unsettled_micro == {C: 2_000_000}


parties = st.sampled_from([A, B, C])
trade_strategy = st.builds(
    SettledTrade,
    buyer=parties,
    seller=parties,
    energy_wh=st.integers(1, 50_000),
    price_micro_per_kwh=st.integers(0, 1_000_000),
    fee_micro_per_kwh=st.integers(0, 50_000),
)
delivery_strategy = st.builds(Delivery, st.integers(0, 50_000), st.integers(0, 50_000))


@settings(max_examples=300)
@given(
    st.lists(trade_strategy, max_size=20),
    st.dictionaries(parties, delivery_strategy),
    st.one_of(st.none(), st.dictionaries(parties, st.integers(0, 10_000_000))),
)
def test_debits_equal_credits_and_escrow_never_goes_negative(
    trades: list[SettledTrade], deliveries: dict[str, Delivery], escrow: dict[str, int] | None
) -> None:
    result = settle(trades, deliveries, escrow_micro=escrow)
    assert sum(result.deltas_micro.values()) == 0
    if escrow is not None:
        for party in (A, B, C):
            trade_delta = sum(
                line.amount_micro
                for line in result.lines_of(party)
                if not line.kind.startswith("imbalance")
            )
            if (
                escrow.get(party, 0) + trade_delta >= 0
            ):  # trades were covered (as the market ensures)
                assert escrow.get(party, 0) + result.deltas_micro.get(party, 0) >= 0
