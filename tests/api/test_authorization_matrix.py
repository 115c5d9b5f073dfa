"""Every operation of the OpenAPI document, called anonymously, with another participant's
token, and with the owner's: own-only data is refused to others, public data answers anyone.

The operations are read from the app's own OpenAPI document at collection time, so a new
endpoint is covered (and must declare its ``x-access``) without touching this file.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gridledger.api import NodeState, create_app
from gridledger.eip712 import address_of, key_from_seed
from gridledger.store import Store
from tests.api.conftest import World
from tests.node.support import domain_of, open_interval_with_time_left, order_body

ACCESS_LEVELS = {"public", "meter-signature", "signed-in", "own", "operator", "verifier"}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    app = create_app(NodeState(Store.open("sqlite:///:memory:"), dict))
    document = app.openapi()
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


OPERATIONS = _operations()
IDS = [f"{method} {path}" for method, path, _ in OPERATIONS]


def _fresh_victim_order(world: World, nonce: int) -> int:
    start = open_interval_with_time_left(world.url)
    body = order_body(world.victim, domain_of(world.url), "sell", 50, 95_000, start, nonce)
    response = httpx.post(
        f"{world.url}/v1/orders", json=body, headers=world.victim.participant.headers
    )
    response.raise_for_status()
    return int(response.json()["id"])


_NONCES = iter(range(1_000, 10**6))


def _request(world: World, method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    """URL, query and body aimed at the victim's data."""
    victim = world.victim
    path_values = {
        "interval_start_s": world.settled_start_s,
        "reading_id": world.victim_reading_id,
        "address": victim.participant.address,
        "order_id": world.victim_open_order_id,
    }
    if method == "DELETE" and "{order_id}" in path:
        path_values["order_id"] = _fresh_victim_order(world, next(_NONCES))
    query_values: dict[str, Any] = {
        "participant": victim.participant.address,
        "meter": victim.meter,
        "limit": 5,
        "limit_s": 0.3,
        "address": victim.participant.address,
    }
    query = {
        p["name"]: query_values[p["name"]]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p["name"] in query_values
    }
    body: Any = None
    if method == "POST":
        body = _body(world, path)
    return {
        "method": method,
        "url": world.url + path.format(**path_values),
        "params": query,
        "json": body,
    }


def _body(world: World, path: str) -> Any:
    victim = world.victim
    stranger = address_of(key_from_seed(f"stranger-{next(_NONCES)}"))
    if path == "/v1/orders":
        start = open_interval_with_time_left(world.url)
        return order_body(victim, domain_of(world.url), "sell", 10, 90_000, start, next(_NONCES))
    return {
        "/v1/readings": [],
        "/v1/participants": {"address": stranger, "role": "consumer"},
        "/v1/meters": {"address": stranger, "owner": victim.participant.address},
        "/v1/participants/{address}/deposits": {"amount_micro": 1},
        "/v1/auth/token": {"message": "not a sign-in message", "signature": "0x00"},
    }.get(path)


def _call(request: dict[str, Any], headers: dict[str, str] | None) -> httpx.Response:
    return httpx.request(**request, headers=headers, timeout=30)


def test_every_operation_declares_its_access_level() -> None:
    undeclared = [f"{m} {p}" for m, p, op in OPERATIONS if op.get("x-access") not in ACCESS_LEVELS]
    assert not undeclared
    assert len(OPERATIONS) >= 25


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=IDS)
def test_access_matrix(world: World, method: str, path: str, operation: dict[str, Any]) -> None:
    access = operation["x-access"]
    victim_address = world.victim.participant.address
    anonymous = _call(_request(world, method, path, operation), None)
    other = _call(_request(world, method, path, operation), world.attacker.participant.headers)
    for response in (anonymous, other):
        assert response.status_code < 500, response.text
    if access in ("public", "meter-signature"):
        assert anonymous.status_code not in (401, 403), anonymous.text
        assert other.status_code not in (401, 403), other.text
        return
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert "Bearer" in anonymous.headers["www-authenticate"]
    if access == "signed-in":
        assert other.status_code == 200
        return
    if path == "/v1/meters" and method == "GET":  # lists the caller's own: never the victim's
        assert other.status_code == 200
        assert victim_address not in other.text and world.victim.meter not in other.text
        return
    assert other.status_code == 403, other.text
    assert other.headers["content-type"].startswith("application/problem+json")


OWN_READS = [(m, p, op) for m, p, op in OPERATIONS if m == "GET" and op["x-access"] == "own"]


@pytest.mark.parametrize(
    ("method", "path", "operation"), OWN_READS, ids=[f"{m} {p}" for m, p, _ in OWN_READS]
)
def test_owner_and_auditor_may_read_own_data(
    world: World, method: str, path: str, operation: dict[str, Any]
) -> None:
    """The positive control: the same requests succeed for the owner and for an auditor."""
    for headers in (world.victim.participant.headers, world.auditor.headers):
        response = _call(_request(world, method, path, operation), headers)
        assert response.status_code == 200, response.text
    if path == "/v1/readings/{reading_id}/proof":
        assert response.json()["verified"] is True


def test_operator_actions_work_for_the_operator(world: World) -> None:
    stranger = address_of(key_from_seed("stranger-operator-check"))
    response = httpx.post(
        f"{world.url}/v1/participants",
        headers=world.operator.headers,
        json={"address": stranger, "role": "consumer", "deposit_micro": 5},
    )
    assert response.status_code == 201 and response.json()["escrow_micro"] == 5
