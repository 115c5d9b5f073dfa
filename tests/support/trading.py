"""One interval traded and settled over a live node's HTTP API: two households cross in the
open interval, meter what they traded, and the node settles it. The steps are separate so a
test can look at the market (a dashboard, a check) between the orders and the readings."""

from __future__ import annotations

import httpx

from tests.node.support import (
    Household,
    domain_of,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
    reading_body,
    wait_for,
)

SELL_PRICE_MICRO_PER_KWH = 100_000
BUY_PRICE_MICRO_PER_KWH = 200_000  # above the ask: the two orders cross


def post_crossing_orders(url: str, seller: Household, buyer: Household, energy_wh: int) -> int:
    """A sell and a buy of ``energy_wh`` in the open interval; returns its start."""
    domain = domain_of(url)
    start = open_interval_with_time_left(url)
    for who, side, price in (
        (seller, "sell", SELL_PRICE_MICRO_PER_KWH),
        (buyer, "buy", BUY_PRICE_MICRO_PER_KWH),
    ):
        body = order_body(who, domain, side, energy_wh, price, start, 1)
        httpx.post(
            f"{url}/v1/orders", json=body, headers=who.participant.headers, timeout=60
        ).raise_for_status()
    return start


def meter_and_settle(
    url: str,
    seller: Household,
    buyer: Household,
    energy_wh: int,
    start_s: int,
    timeout_s: float = 60,
    require_accepted: bool = False,
) -> None:
    """After the interval ends, both meters report the traded energy; wait for settlement.

    ``require_accepted``: both readings must be accepted. Off by default: on a loaded machine
    they may miss the settle grace (2 wall seconds by default), and the interval settles on the
    trades alone."""
    wait_for(lambda: market(url)["market_time_s"] >= start_s + 900, timeout_s, "the interval end")
    domain = domain_of(url)
    readings = [
        reading_body(seller, domain, start_s, 0, energy_wh),
        reading_body(buyer, domain, start_s, energy_wh, 0),
    ]
    acks = httpx.post(f"{url}/v1/readings", json=readings, timeout=60)
    acks.raise_for_status()
    if require_accepted:
        assert [a["status"] for a in acks.json()] == ["accepted", "accepted"], acks.json()
    wait_for(lambda: interval_status(url, start_s) == "settled", timeout_s, "settlement")


def trade_one_interval(
    url: str,
    seller: Household,
    buyer: Household,
    energy_wh: int,
    timeout_s: float = 60,
    require_accepted: bool = False,
) -> int:
    """Orders, readings and settlement of one interval; returns its start."""
    start = post_crossing_orders(url, seller, buyer, energy_wh)
    meter_and_settle(url, seller, buyer, energy_wh, start, timeout_s, require_accepted)
    return start
