"""HttpMeterClient against a real gateway served over HTTP (uvicorn on a free port)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from gridledger.errors import ValidationError
from gridledger.metering import Gateway, ingest_json
from gridledger.metering.client import reading_key
from gridledger.metering.httpclient import HttpMeterClient
from gridledger.store import Store
from tests.metering.factory import DOMAIN, NOW_S, fleet, register, signed
from tests.support.http import serve_app
from tests.support.services import free_port


class FlakyGateway:
    """``POST /v1/readings`` over a real gateway; the first ``fail_first`` calls answer 503."""

    def __init__(self, store: Store, fail_first: int = 0, status: int = 503) -> None:
        self.gateway = Gateway(store, DOMAIN, lambda: NOW_S)
        self.fail_first, self.status = fail_first, status
        self.calls = 0
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/v1/readings")(self.readings)

    async def readings(self, request: Request) -> Any:
        with self._lock:
            self.calls += 1
            failing = self.calls <= self.fail_first
        if failing:
            headers = {"Retry-After": "0"} if self.status == 429 else {}
            return JSONResponse({"title": "unavailable"}, self.status, headers)
        return ingest_json(self.gateway, await request.json())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'http.sqlite'}")
    yield opened
    opened.close()


def no_sleep(_s: float) -> None:
    pass


def test_acks_are_final_and_resending_answers_duplicate(store: Store) -> None:
    meters = fleet(2, prefix="http")
    register(store, meters)
    good = [signed(m, seq, interval=seq) for m in meters for seq in (1, 2, 3)]
    forged = signed(meters[0], 4, interval=4, key=meters[1].key)
    with serve_app(FlakyGateway(store).app) as url, HttpMeterClient(url) as client:
        client.submit_batch([*good, forged])
        assert client.pending == []
        assert client.acknowledged() == {reading_key(r) for r in good}
        assert client.acks[reading_key(forged)]["code"] == "bad_signature"
        client.submit_batch(good[:2])  # a resend after a lost response
        assert [client.acks[reading_key(r)]["status"] for r in good[:2]] == ["duplicate"] * 2
    assert len(store.readings_of_meter(meters[0].address)) == 3


@pytest.mark.parametrize("status", [503, 500, 429])
def test_5xx_and_429_are_retried_with_backoff(store: Store, status: int) -> None:
    meters = fleet(1, prefix=f"retry{status}")
    register(store, meters)
    waits: list[float] = []
    gateway = FlakyGateway(store, fail_first=3, status=status)
    with serve_app(gateway.app) as url:
        client = HttpMeterClient(
            url, max_attempts=5, backoff_s=0.01, max_backoff_s=0.03, sleep=waits.append
        )
        client.submit_batch([signed(meters[0], 1)])
    assert gateway.calls == 4 and client.failed_attempts == 3
    assert waits == [0.01, 0.02, 0.03]
    assert client.pending == [] and len(client.acknowledged()) == 1


def test_unreachable_gateway_keeps_readings_after_bounded_retries(store: Store) -> None:
    meters = fleet(1, prefix="down")
    register(store, meters)
    readings = [signed(meters[0], seq, interval=seq) for seq in range(1, 4)]
    waits: list[float] = []
    client = HttpMeterClient(
        f"http://127.0.0.1:{free_port()}", max_attempts=3, backoff_s=0.01, sleep=waits.append
    )
    client.submit_batch(readings)  # nobody listens: three tries, then kept
    assert client.failed_attempts == 3 and len(waits) == 2
    assert {reading_key(r) for r in client.pending} == {reading_key(r) for r in readings}
    assert client.acks == {}
    with serve_app(FlakyGateway(store).app) as url:
        client.url = url + "/v1/readings"  # the gateway came back (on another port here)
        assert client.flush(timeout_s=10) == 0
    assert client.acknowledged() == {reading_key(r) for r in readings}
    assert [s.reading.sequence for s in store.readings_of_meter(meters[0].address)] == [1, 2, 3]


def test_a_refused_request_raises_and_keeps_the_readings(store: Store) -> None:
    meters = fleet(1, prefix="refused")
    register(store, meters)
    with serve_app(FlakyGateway(store, fail_first=1, status=400).app) as url:
        client = HttpMeterClient(url, sleep=no_sleep)
        with pytest.raises(ValidationError, match="refused"):
            client.submit_batch([signed(meters[0], 1)])
        assert len(client.pending) == 1
        assert client.flush(timeout_s=10) == 0


def test_batches_are_split_to_the_batch_size(store: Store) -> None:
    meters = fleet(1, prefix="split")
    register(store, meters)
    gateway = FlakyGateway(store)
    with serve_app(gateway.app) as url, HttpMeterClient(url, batch_size=4) as client:
        client.submit_batch([signed(meters[0], seq, interval=seq) for seq in range(1, 11)])
    assert gateway.calls == 3 and len(client.acknowledged()) == 10
    with pytest.raises(ValidationError):
        HttpMeterClient("http://127.0.0.1:1", batch_size=5_001)
