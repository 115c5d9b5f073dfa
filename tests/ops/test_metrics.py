"""Prometheus /metrics, /healthz, /readyz, request ids and JSON logs, against real parts."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from gridledger import telemetry
from gridledger.api import NodeState, create_app
from gridledger.ledger import Ledger
from gridledger.metering import Gateway, ingest_json, signed_reading_to_json
from gridledger.store import Store
from gridledger.verifier.panel import DEV_QUORUM, dev_verifier_addresses
from tests.metering.factory import DOMAIN, NOW_S, fleet, register, signed


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_gateway_counts_readings_by_status_and_code(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'g.sqlite'}")
    meters = fleet(2)
    register(store, meters)
    gateway = Gateway(store, DOMAIN, lambda: NOW_S)
    before = {
        key: sample("gridledger_readings_total", status=key[0], code=key[1])
        for key in (
            ("accepted", ""),
            ("duplicate", ""),
            ("rejected", "replay"),
            ("rejected", "malformed"),
        )
    }
    first = signed(meters[0], 5, interval=5)
    payload = [
        signed_reading_to_json(first),
        signed_reading_to_json(signed(meters[1], 5, interval=5)),
    ]
    ingest_json(gateway, payload)
    ingest_json(gateway, [signed_reading_to_json(first), {"meter": "nonsense"}])
    replay = signed(meters[0], 5, interval=5, imported_wh=999)  # same sequence, other content
    ingest_json(gateway, [signed_reading_to_json(replay)])
    after = {key: sample("gridledger_readings_total", status=key[0], code=key[1]) for key in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("accepted", ""): 2,
        ("duplicate", ""): 1,
        ("rejected", "replay"): 1,
        ("rejected", "malformed"): 1,
    }


def test_metrics_health_ready_and_request_ids(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'a.sqlite'}")
    ledger = Ledger.deploy("memory", verifiers=dev_verifier_addresses(), quorum=DEV_QUORUM)
    client = TestClient(create_app(NodeState(store, dict, ledger=ledger)))
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"store": "ok", "chain": "ok"}

    client.get("/v1/intervals", headers={"X-Request-ID": "abc-123"})
    answered = client.get("/v1/intervals", headers={"X-Request-ID": "bad id with spaces"})
    assert len(answered.headers["X-Request-ID"]) == 16  # replaced by a fresh one
    body = client.get("/metrics")
    assert body.headers["content-type"].startswith("text/plain")
    text = body.text
    for family in (
        "gridledger_readings_total",
        "gridledger_orders_total",
        "gridledger_interval_stage_seconds",
        "gridledger_chain_errors_total",
        "gridledger_chain_gas_used",
    ):
        assert f"# TYPE {family}" in text, family
    assert 'gridledger_http_requests_total{method="GET",route="/v1/intervals",status="200"}' in text
    deploy_gas = [
        line for line in text.splitlines() if line.startswith("gridledger_chain_gas_used{")
    ]
    assert deploy_gas and all(float(line.split()[-1]) > 0 for line in deploy_gas)

    store.close()


def test_readyz_is_503_when_the_database_is_gone(postgres_server: object, tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = postgres_server.url  # type: ignore[attr-defined]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE readyz_gone"))
    db = url.rsplit("/", 1)[0] + "/readyz_gone"
    store = Store.open(db)
    client = TestClient(create_app(NodeState(store, dict)))
    assert client.get("/readyz").status_code == 200
    store.engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text("DROP DATABASE readyz_gone WITH (FORCE)"))
    admin.dispose()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.json()["checks"]["store"].startswith("error:")


def test_json_logs_carry_the_interval_and_the_request_id() -> None:
    stream = io.StringIO()
    telemetry.configure_json_logging(stream=stream)
    try:
        log = logging.getLogger("gridledger.test")
        with telemetry.request_context("req-1"), telemetry.stage("settle", 1_700_000_100):
            log.info("settling %s", "now")
        log.warning("outside")
    finally:
        logging.getLogger().handlers.clear()
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "settling now" and first["level"] == "info"
    assert first["interval_start_s"] == 1_700_000_100 and first["request_id"] == "req-1"
    assert "interval_start_s" not in second and "request_id" not in second
    assert sample("gridledger_interval_stage_seconds_count", stage="settle") >= 1
