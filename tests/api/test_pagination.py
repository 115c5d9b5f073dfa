"""Cursor pagination of the list endpoints: every page followed to the end gives every row
once, in order; a cursor that is not one of the list's own is a 422 problem naming ``cursor``.

A real SQLite store and the real app (TestClient); the caller of the trade lines holds a token
from the app's own issuer, as the sign-in route would give it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gridledger.api import NodeState, create_app
from gridledger.api._pages import encode_cursor
from gridledger.store import IntervalRow, Participant, Store, TradeRow

T0 = 1_700_000_100 // 900 * 900
PEOPLE = [f"0x{i:040x}" for i in range(1, 12)]
ANOMALIES = [
    {"subject": PEOPLE[i % 3], "window_start_s": T0 + 86_400 * (i // 3), "kind": "replay"}
    for i in range(7)
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'pages.sqlite'}")
    for i, address in enumerate(reversed(PEOPLE)):
        opened.add_participant(Participant(address, "consumer" if i % 2 else "prosumer", 1, ""))
    for k in range(5):
        opened.save_interval(IntervalRow(T0 + 900 * k, "settled", 100_000 + k, 10 * k))
    lines = [TradeRow(T0, PEOPLE[i % 4], PEOPLE[4 + i % 3], 100 + i, 120_000, 0) for i in range(9)]
    opened.save_trades(T0, lines)
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> TestClient:
    status = {"chain": "memory", "chain_id": 1}
    return TestClient(create_app(NodeState(store, lambda: status, anomalies=lambda: ANOMALIES)))


def every_page(
    client: TestClient, path: str, limit: int, headers: dict[str, str] | None = None
) -> tuple[list[Any], int]:
    """All items of ``path`` followed page by page, and how many pages that took."""
    items: list[Any] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=params, headers=headers or {})
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"} and len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def bearer(client: TestClient, address: str, role: str) -> dict[str, str]:
    token, _ = client.app.state.api.tokens.issue(address, role)  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {token}"}


def test_participants_page_through_in_address_order(client: TestClient) -> None:
    items, pages = every_page(client, "/v1/participants", 4)
    assert [p["address"] for p in items] == sorted(PEOPLE) and pages == 3
    assert set(items[0]) == {"address", "role", "active"}  # no label, no grid position
    whole = client.get("/v1/participants").json()
    assert whole == {"items": items, "next_cursor": None}


def test_intervals_page_through_newest_first(client: TestClient) -> None:
    items, pages = every_page(client, "/v1/intervals", 2)
    assert [r["interval_start_s"] for r in items] == [T0 + 900 * k for k in (4, 3, 2, 1, 0)]
    assert pages == 3  # 2 + 2 + 1
    exact, pages = every_page(client, "/v1/intervals", 5)
    assert exact == items and pages == 1  # a full last page says there is no next one


def test_trade_lines_page_through_for_an_auditor_and_a_party(
    client: TestClient, store: Store
) -> None:
    path = f"/v1/intervals/{T0}/trades"
    stored = [t.id for t in store.trades_in_interval(T0)]
    items, _ = every_page(client, path, 2, bearer(client, PEOPLE[10], "auditor"))
    assert [t["id"] for t in items] == stored and len(stored) == 9
    mine, _ = every_page(client, path, 1, bearer(client, PEOPLE[0], "consumer"))
    assert {t["buyer"] for t in mine} == {PEOPLE[0]} and len(mine) == 3


def test_anomalies_page_through_newest_day_first(client: TestClient) -> None:
    items, pages = every_page(client, "/v1/anomalies", 3)
    assert sorted(map(str, items)) == sorted(map(str, ANOMALIES)) and pages == 3
    days = [a["window_start_s"] for a in items]
    assert days == sorted(days, reverse=True)


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/participants", "not base64 json!"),
        ("/v1/participants", encode_cursor("intervals", (T0,))),  # another list's cursor
        ("/v1/intervals", encode_cursor("intervals", ("0xabc",))),  # a key of the wrong type
        ("/v1/intervals", encode_cursor("intervals", (T0, 1))),  # a key of the wrong shape
        ("/v1/intervals", encode_cursor("intervals", (1 << 64,))),  # no SQL integer is as big
        ("/v1/anomalies", "W10"),  # base64url of []
        ("/v1/intervals", "x" * 600),  # longer than any cursor the server issues
        (f"/v1/intervals/{T0}/trades", encode_cursor("trades", (T0 + 900, 1))),  # other interval
    ],
)
def test_a_foreign_cursor_is_a_problem_naming_the_cursor(
    client: TestClient, path: str, cursor: str
) -> None:
    headers = bearer(client, PEOPLE[10], "auditor")
    response = client.get(path, params={"cursor": cursor}, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["field"].split(".")[-1] == "cursor" and "cursor" in problem["detail"]
