"""A live node (embedded EVM, SQLite) with two households that traded and settled one interval,
an auditor, and one open order of the victim: the world the authorization tests probe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gridledger.eip712 import key_from_seed
from gridledger.node.runner import Node
from tests.node.support import (
    Actor,
    Household,
    domain_of,
    enrol,
    fast_settings,
    interval_status,
    market,
    open_interval_with_time_left,
    order_body,
    reading_body,
    running_node,
    sign_in,
    wait_for,
)


@dataclass
class World:
    node: Node
    url: str
    operator: Actor
    victim: Household
    attacker: Household
    auditor: Actor
    settled_start_s: int
    victim_reading_id: int
    victim_open_order_id: int
    open_start_s: int


def _settle_one_interval(url: str, victim: Household, attacker: Household) -> int:
    domain = domain_of(url)
    start = open_interval_with_time_left(url)
    for who, side, price in ((victim, "sell", 100_000), (attacker, "buy", 200_000)):
        body = order_body(who, domain, side, 500, price, start, 1)
        httpx.post(
            f"{url}/v1/orders", json=body, headers=who.participant.headers
        ).raise_for_status()
    wait_for(lambda: market(url)["market_time_s"] >= start + 900, 20, "the interval to end")
    readings = [
        reading_body(victim, domain, start, 0, 500),
        reading_body(attacker, domain, start, 500, 0),
    ]
    acks = httpx.post(f"{url}/v1/readings", json=readings).json()
    assert [a["status"] for a in acks] == ["accepted", "accepted"], acks
    wait_for(lambda: interval_status(url, start) == "settled", 20, "settlement")
    return start


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("api-live")
    settings = fast_settings(f"sqlite:///{tmp / 'live.sqlite'}", tmp)
    with running_node(settings) as (node, url, operator):
        victim, attacker = enrol(url, operator, "victim"), enrol(url, operator, "attacker")
        auditor = Actor(key_from_seed("test-auditor"))
        httpx.post(
            f"{url}/v1/participants",
            headers=operator.headers,
            json={"address": auditor.address, "role": "auditor"},
        ).raise_for_status()
        sign_in(url, auditor)
        settled = _settle_one_interval(url, victim, attacker)
        statement = httpx.get(
            f"{url}/v1/participants/{victim.participant.address}/statement",
            headers=victim.participant.headers,
        ).json()
        reading_id = statement["readings"][0]["id"]
        open_start = open_interval_with_time_left(url, min_wall_s=3.0)
        body = order_body(victim, domain_of(url), "sell", 100, 90_000, open_start, 2)
        order = httpx.post(f"{url}/v1/orders", json=body, headers=victim.participant.headers)
        order.raise_for_status()
        yield World(
            node,
            url,
            operator,
            victim,
            attacker,
            auditor,
            settled,
            reading_id,
            order.json()["id"],
            open_start,
        )


def stored_node_db(world: World) -> Path:
    return Path(world.node.store.url.removeprefix("sqlite:///"))
