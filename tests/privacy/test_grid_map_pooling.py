"""The public grid map shows no household's own energy: a power flow of nets pooled over
groups of at least ``grid_map_min_households`` households. The same API with pooling off
(groups of one) shows a single household's change, so the check below can fail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gridledger.api import NodeState, create_app
from gridledger.config import Settings
from gridledger.errors import ConfigError
from gridledger.iotools.simbench import load_lv_grid
from gridledger.privacy.pooling import pooled_net_wh
from gridledger.store import Meter, Participant, Store
from tests.metering.factory import T0, fleet, signed

GRID_CODE = "1-LV-rural2--0-sw"
HOUSEHOLDS = 10


def test_groups_hold_k_households_and_keep_the_total() -> None:
    net = {bus: 100 * bus for bus in range(1, 12)}  # one household per bus
    pooled = pooled_net_wh(net, dict.fromkeys(net, 1), 4)
    assert sum(pooled.values()) == sum(net.values())
    # groups 1-4, 5-8, and 9-11 joined to the one before (3 < 4 households)
    assert len({pooled[b] for b in range(1, 5)}) == 1
    assert len({pooled[b] for b in range(5, 12)}) <= 2  # whole-Wh shares of one mean
    assert pooled[1] != pooled[5]


def test_nets_with_equal_group_sums_pool_to_the_same_map() -> None:
    households = dict.fromkeys(range(10), 1)
    one = {b: 300 for b in range(10)}
    other = {**one, 0: 800, 1: -200}  # two households of one group trade places by 500 Wh
    assert pooled_net_wh(one, households, 5) == pooled_net_wh(other, households, 5)


def test_a_community_smaller_than_k_is_one_group() -> None:
    assert pooled_net_wh({3: 90, 7: 10}, {3: 1, 7: 1}, 5) == {3: 50, 7: 50}


def test_k_below_one_is_refused_with_the_setting() -> None:
    with pytest.raises(ConfigError, match="grid_map_min_households"):
        pooled_net_wh({1: 1}, {1: 1}, 0)
    with pytest.raises(ConfigError, match="grid_map_min_households"):
        Settings(grid_map_min_households=0)


def house_buses() -> list[int]:
    return sorted({int(b) for b in load_lv_grid(GRID_CODE).load["bus"]})[:HOUSEHOLDS]


def grid_state(tmp_path: Path, name: str, imported_wh: list[int], k: int) -> dict[str, Any]:
    store = Store.open(f"sqlite:///{tmp_path / name}.sqlite")
    meters = fleet(HOUSEHOLDS, "pool")
    for m, bus in zip(meters, house_buses(), strict=True):
        store.add_participant(Participant(m.owner, "prosumer", bus, ""))
        store.add_meter(Meter(m.address, m.owner, 30_000))
    readings = [signed(m, 1, 1, wh) for m, wh in zip(meters, imported_wh, strict=True)]
    store.insert_readings(readings, received_at_s=T0)
    settings = Settings(grid_code=GRID_CODE, grid_map_min_households=k)
    state = NodeState(store, lambda: {"chain": "memory"}, settings=settings)
    body: dict[str, Any] = (
        TestClient(create_app(state))
        .get("/v1/grid/state", params={"interval_start_s": T0 + 900})
        .json()
    )
    assert body["converged"] and body["readings"] == HOUSEHOLDS
    return {"lines": body["lines"], "buses": body["buses"]}


def test_the_public_map_hides_one_household_inside_its_group(tmp_path: Path) -> None:
    base = [600] * HOUSEHOLDS
    moved = [1_400, 0, 400, *base[3:]]  # the first group's sum unchanged; household 0 +800 Wh
    assert grid_state(tmp_path, "a", base, 5) == grid_state(tmp_path, "b", moved, 5)
    # Without pooling the same change is visible on the map: that was the leak.
    assert grid_state(tmp_path, "c", base, 1) != grid_state(tmp_path, "d", moved, 1)
