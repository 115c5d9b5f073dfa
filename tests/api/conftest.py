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
    open_interval_with_time_left,
    order_body,
    running_node,
    sign_in,
)
from tests.support.trading import trade_one_interval


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
        settled = trade_one_interval(url, victim, attacker, 500, 20, require_accepted=True)
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
