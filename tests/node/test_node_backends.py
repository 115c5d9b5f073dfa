"""The live node end to end on the netting-root path, on every backend pair.

One interval over the real HTTP API of an in-process node: two households enrol, trade,
meter and are settled through the netting root; then the claims move the escrow. Run on the
embedded EVM and anvil, SQLite and PostgreSQL (the ``chain_url`` x ``db_url`` fixtures). The
node as an OS process (kill -9, restart) is tests/node/test_node_restart.py and the load test
test_bench_node.py; the operator's crash points on every backend are test_interval_pipeline.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from gridledger.ledger.transport import ANVIL_DEV_KEY
from gridledger.node.intake import WATCH_MAX_S, WATCH_S
from tests.node.support import (
    DEPOSIT_MICRO,
    domain_of,
    enrol,
    fast_settings,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
    reading_body,
    running_node,
    wait_for,
)


def test_node_settles_by_netting_root_and_claims(
    chain_url: str, db_url: str, tmp_path: Path
) -> None:
    operator_key = "" if chain_url == "memory" else "0x" + ANVIL_DEV_KEY.hex()
    settings = fast_settings(db_url, tmp_path, chain=chain_url, operator_key=operator_key)
    with running_node(settings) as (node, url, operator):
        seller, buyer = enrol(url, operator, "root-seller"), enrol(url, operator, "root-buyer")
        domain = domain_of(url)
        start = open_interval_with_time_left(url)
        for who, side, energy_wh, price in (
            (seller, "sell", 1000, 100_000),
            (buyer, "buy", 800, 200_000),
        ):
            body = order_body(who, domain, side, energy_wh, price, start, 1)
            response = httpx.post(f"{url}/v1/orders", json=body, headers=who.participant.headers)
            assert response.status_code == 201, response.text
        wait_for(lambda: market(url)["market_time_s"] >= start + 900, 20, "the interval to end")
        readings = [
            reading_body(seller, domain, start, 0, 1000),
            reading_body(buyer, domain, start, 800, 0),
        ]
        acks = httpx.post(f"{url}/v1/readings", json=readings).json()
        assert [a["status"] for a in acks] == ["accepted", "accepted"], acks
        wait_for(lambda: interval_status(url, start) == "settled", 30, "settlement")

        store, ledger = node.store, node.ledger
        trades = store.trades_in_interval(start)
        assert [(t.energy_wh, t.price_micro_per_kwh) for t in trades] == [(800, 140_000)]
        deltas = {s.participant: s.delta_micro for s in store.settlements_in_interval(start)}
        assert sum(deltas.values()) == 0 and deltas[seller.participant.address] > 0
        assert deltas[buyer.participant.address] < 0
        root = store.netting_root_of_interval(start)
        assert root is not None
        with node.market.chain_lock:
            assert "0x" + ledger.settlement_root(root.root_seq).hex() == root.root
            settled = [
                e.name
                for e in ledger.events()
                if e.name in ("IntervalSettled", "IntervalSettledByRoot")
                and e.args["intervalStartS"] == start
            ]
            assert settled == ["IntervalSettledByRoot"]  # once, and on the root path
            # Nothing moved yet (daily claims); the claim then moves exactly the settled net.
            assert ledger.escrow_of(seller.participant.address) == DEPOSIT_MICRO
            node.market.operator.claim_all()
            for household in (seller, buyer):
                address = household.participant.address
                assert ledger.escrow_of(address) == DEPOSIT_MICRO + deltas[address]
        statement = httpx.get(
            f"{url}/v1/participants/{seller.participant.address}/statement",
            headers=seller.participant.headers,
        ).json()
        assert start in {s["interval_start_s"] for s in statement["settlements"]}


def test_order_intake_keeps_every_escrow_check_without_a_chain_call_per_order(
    tmp_path: Path,
) -> None:
    """The intake caches the accounts' chain views and the open book (gridledger.node.intake);
    a reservation, a deposit through the node, a withdrawal request and a suspension sent to the
    chain behind the node's back are all seen by the next order."""
    settings = fast_settings(f"sqlite:///{tmp_path / 'intake.sqlite'}", tmp_path, speed=30)
    with running_node(settings) as (node, url, operator):
        buyer = enrol(url, operator, "intake-buyer", deposit_micro=1_000_000)  # 1 gEUR
        domain = domain_of(url)
        start = open_interval_with_time_left(url, min_wall_s=10)
        fee = node.settings.grid_fee_micro_per_kwh
        energy_wh = 1_000_000 // (200_000 + fee) * 1000 // 2  # about half the escrow

        def post(nonce: int, wh: int = energy_wh) -> httpx.Response:
            body = order_body(buyer, domain, "buy", wh, 200_000, start, nonce)
            return httpx.post(f"{url}/v1/orders", json=body, headers=buyer.participant.headers)

        def code(response: httpx.Response) -> str:
            return str(response.json().get("code"))  # the problem document's rejection code

        first = post(1)
        assert first.status_code == 201, first.text
        assert post(1).status_code == 200  # the same signed order again: acknowledged once
        assert post(2).status_code == 201
        refused = post(3)  # the two reservations leave less than this order needs
        assert refused.status_code == 422 and code(refused) == "insufficient_escrow", refused.text
        # A deposit through the node: the very next order sees it.
        httpx.post(
            f"{url}/v1/participants/{buyer.participant.address}/deposits",
            json={"amount_micro": 1_000_000},
            headers=operator.headers,
        ).raise_for_status()
        assert post(3).status_code == 201
        # Behind the node's back: the participant asks to withdraw everything on-chain.
        with node.market.chain_lock:
            node.ledger.fund_eth(buyer.participant.address, 10**18)
            me = node.ledger.participant_client(buyer.participant.key)
            me.request_withdrawal(node.ledger.escrow_of(buyer.participant.address))
        time.sleep(WATCH_MAX_S + WATCH_S)  # seen even while the node settles
        refused = post(4, 1)
        assert refused.status_code == 422 and code(refused) == "insufficient_escrow", refused.text
        with node.market.chain_lock:
            node.ledger.suspend(buyer.participant.address)
        time.sleep(WATCH_MAX_S + WATCH_S)  # seen even while the node settles
        body = order_body(buyer, domain, "sell", 10, 100_000, start, 5)
        suspended = httpx.post(f"{url}/v1/orders", json=body, headers=buyer.participant.headers)
        assert code(suspended) == "suspended_participant", suspended.text
        assert len(node.store.orders_in_interval(start)) == 3
