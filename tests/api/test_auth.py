"""Sign-In with Ethereum, tokens and rate limits, over real HTTP against a live node."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from gridledger.api._auth import (
    RateLimiter,
    TokenIssuer,
    parse_siwe,
    sign_in_message_signature,
)
from gridledger.eip712 import key_from_seed
from gridledger.errors import RateLimited, Unauthenticated
from tests.api.conftest import World
from tests.node.support import (
    Actor,
    domain_of,
    enrol,
    fast_settings,
    reading_body,
    running_node,
)


def _challenge(world: World, actor: Actor) -> str:
    response = httpx.get(f"{world.url}/v1/auth/nonce", params={"address": actor.address})
    assert response.status_code == 200
    return str(response.json()["message"])


def _token(world: World, message: str, signature: str) -> httpx.Response:
    return httpx.post(
        f"{world.url}/v1/auth/token", json={"message": message, "signature": signature}
    )


def test_sign_in_issues_a_token_with_the_registry_role(world: World) -> None:
    actor = Actor(world.victim.participant.key)
    message = _challenge(world, actor)
    parsed = parse_siwe(message)
    assert parsed.address == actor.address and parsed.chain_id == world.node.ledger.chain_id
    assert parsed.domain == world.url.removeprefix("http://")
    response = _token(world, message, sign_in_message_signature(message, actor.key))
    assert response.status_code == 200
    token = response.json()["token"]
    me = httpx.get(f"{world.url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["address"] == actor.address and me.json()["role"] == "participant"


def test_a_nonce_signs_in_once(world: World) -> None:
    actor = Actor(world.victim.participant.key)
    message = _challenge(world, actor)
    signature = sign_in_message_signature(message, actor.key)
    assert _token(world, message, signature).status_code == 200
    replay = _token(world, message, signature)
    assert replay.status_code == 401
    assert replay.headers["content-type"].startswith("application/problem+json")


def test_a_message_signed_by_another_key_is_refused(world: World) -> None:
    message = _challenge(world, Actor(world.victim.participant.key))
    forged = sign_in_message_signature(message, world.attacker.participant.key)
    assert _token(world, message, forged).status_code == 401


def test_an_altered_message_is_refused(world: World) -> None:
    actor = Actor(world.victim.participant.key)
    message = _challenge(world, actor).replace(world.url.removeprefix("http://"), "evil.example")
    assert _token(world, message, sign_in_message_signature(message, actor.key)).status_code == 401


def test_an_unregistered_address_cannot_sign_in(world: World) -> None:
    stranger = Actor(key_from_seed("never-registered"))
    message = _challenge(world, stranger)
    response = _token(world, message, sign_in_message_signature(message, stranger.key))
    assert response.status_code == 403


def test_a_tampered_or_expired_token_is_refused(world: World) -> None:
    token = world.victim.participant.token
    payload, _, mac = token.partition(".")
    tampered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + mac
    for bad in (tampered, "garbage", token + "x"):
        response = httpx.get(f"{world.url}/v1/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
    now = [1_000.0]
    issuer = TokenIssuer(b"k" * 32, lifetime_s=60, clock=lambda: now[0])
    issued, _ = issuer.issue(world.victim.participant.address, "participant")
    assert issuer.verify(issued).role == "participant"
    now[0] += 61
    with pytest.raises(Unauthenticated, match="expired"):
        issuer.verify(issued)


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, clock=lambda: now[0])
    for _ in range(60):
        limiter.take("p")
    with pytest.raises(RateLimited) as refused:
        limiter.take("p")
    assert 0.9 <= refused.value.retry_after_s <= 1.1
    now[0] += 1.0
    limiter.take("p")
    limiter.take("q")  # buckets are per key


def test_rate_limits_answer_429_with_retry_after(tmp_path: Path) -> None:
    settings = fast_settings(
        f"sqlite:///{tmp_path / 'rl.sqlite'}",
        tmp_path,
        rate_limit_meter_per_min=3,
        rate_limit_participant_per_min=5,
    )
    with running_node(settings) as (_node, url, operator):
        household = enrol(url, operator, "rate-limited")
        domain = domain_of(url)
        start = (int(time.time()) // 900 - 10) * 900
        batch = [reading_body(household, domain, start + 900 * k, 1, 0) for k in range(4)]
        refused = httpx.post(f"{url}/v1/readings", json=batch)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert httpx.post(f"{url}/v1/readings", json=batch[:3]).status_code == 200
        statuses = [
            httpx.get(f"{url}/v1/auth/me", headers=household.participant.headers).status_code
            for _ in range(8)
        ]
        assert 429 in statuses and statuses[0] == 200
