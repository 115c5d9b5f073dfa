"""Simulated smart meters feeding a running node: ``gridledger meter simulate``.

Meter ``i`` has the key ``key_from_seed(f"meter-{i}")`` and belongs to household ``i``
(``key_from_seed(f"household-{i}")``), as in the demo. Its energy is a real SimBench household
profile (``gridledger.sim.community``): per interval, ``importedWh = max(load - pv, 0)`` and
``exportedWh = max(pv - load, 0)``, taken at the interval's time of day. The sequence is the
interval's index since the epoch (``intervalStartS // intervalLengthS``), so it rises with the
interval and a second simulation against the same node continues it.

The meters follow the node's market clock (``GET /v1/market``): starting with the interval in
progress (or the first one not yet settled), each interval's readings are signed and sent as
soon as it ends, for ``intervals`` intervals. Readings go over HTTP (``POST /v1/readings``,
:class:`HttpMeterClient`) or MQTT (:class:`MqttMeterClient`; the node's API URL is still
needed for the clock and the EIP-712 domain). Meters must be registered: with
``operator_key`` the simulation registers the missing households and meters through the
operator endpoints (``POST /v1/participants``, ``POST /v1/meters``); without it, unregistered
meters are answered ``rejected`` / ``unknown_meter`` and counted so.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import ValidationError
from gridledger.metering.client import MeterClient
from gridledger.metering.reading import Reading, SignedReading, sign_reading

Transport = Literal["http", "mqtt"]
METER_RATED_POWER_W = 30_000
POLL_MAX_S = 1.0


@dataclass(frozen=True)
class SimulatedMeter:
    index: int
    key: bytes
    owner_key: bytes
    load_wh: tuple[int, ...]  # per profile interval (one day of 15-minute slots)
    pv_wh: tuple[int, ...]
    bus: int
    label: str

    @property
    def address(self) -> str:
        return address_of(self.key)

    @property
    def owner(self) -> str:
        return address_of(self.owner_key)

    def reading(self, start_s: int, length_s: int) -> Reading:
        slot = (start_s // length_s) % len(self.load_wh)
        net_wh = self.load_wh[slot] - self.pv_wh[slot]
        return Reading(
            self.address, start_s // length_s, start_s, length_s, max(net_wh, 0), max(-net_wh, 0)
        )


@dataclass
class SimulationReport:
    """What the gateway answered: every sent reading is accepted, duplicate or rejected."""

    meters: int
    intervals: list[int] = field(default_factory=list)
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # per reason code
    unacknowledged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "meters": self.meters,
            "intervals": self.intervals,
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "unacknowledged": self.unacknowledged,
        }


def simulated_meters(n_meters: int, seed: int = 0) -> list[SimulatedMeter]:
    """``n_meters`` households of the SimBench community (at most its number of loads)."""
    from gridledger.sim.community import build_community

    community = build_community(n_households=n_meters, seed=seed, battery_count=0)
    return [
        SimulatedMeter(
            i,
            key_from_seed(f"meter-{i}"),
            key_from_seed(f"household-{i}"),
            tuple(int(v) for v in h.load_wh),
            tuple(int(v) for v in h.pv_wh),
            h.bus,
            h.name,
        )
        for i, h in enumerate(community.households)
    ]


class NodeApi:
    """The few node endpoints the simulation needs: clock, domain, registration."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.http.get(path, **kwargs)
        response.raise_for_status()
        return response.json()

    def pages(self, path: str, limit: int = 1_000) -> list[Any]:
        """Every item of a paginated list endpoint (``{items, next_cursor}``), following
        ``next_cursor`` until it is null; ``limit`` items per request."""
        items: list[Any] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            body = self.get(path, params=params)
            items += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                return items

    def domain(self) -> Domain:
        chain = self.get("/v1/chain")
        return Domain("gridledger", "1", int(chain["chain_id"]), str(chain["market"]))

    def market(self) -> dict[str, Any]:
        return dict(self.get("/v1/market"))

    def wait_for_market_time(self, market_s: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.market()
            behind_s = market_s - int(status["market_time_s"])
            if behind_s <= 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the node's market clock did not reach {market_s}")
            time.sleep(min(max(behind_s / float(status["speed"]), 0.05), POLL_MAX_S))

    def register(self, meters: list[SimulatedMeter], operator_key: bytes) -> int:
        """Register the missing households and meters; returns how many meters were new."""
        headers = {"Authorization": f"Bearer {self._token(operator_key)}"}
        known_participants = {p["address"] for p in self.pages("/v1/participants")}
        known_meters = {m["address"] for m in self.get("/v1/meters", headers=headers)}
        added = 0
        for meter in meters:
            if meter.owner not in known_participants:
                body = {
                    "address": meter.owner,
                    "role": _role(meter),
                    "grid_node": meter.bus,
                    "label": meter.label,
                    "deposit_micro": 0,
                }
                self._post("/v1/participants", body, headers)
            if meter.address not in known_meters:
                body = {
                    "address": meter.address,
                    "owner": meter.owner,
                    "rated_power_w": METER_RATED_POWER_W,
                }
                self._post("/v1/meters", body, headers)
                added += 1
        return added

    def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
        response = self.http.post(path, json=body, headers=headers)
        if response.status_code >= 400:
            raise ValidationError(
                path, f"the node answered {response.status_code}: {response.text}"
            )
        return response.json()

    def _token(self, key: bytes) -> str:
        """Sign in with Ethereum (EIP-4361) as the holder of ``key``."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        message = self.get("/v1/auth/nonce", params={"address": address_of(key)})["message"]
        signed = Account.sign_message(encode_defunct(text=message), private_key=key)
        body = {"message": message, "signature": "0x" + bytes(signed.signature).hex()}
        return str(self._post("/v1/auth/token", body, {})["token"])


def _role(meter: SimulatedMeter) -> str:
    return "prosumer" if any(meter.pv_wh) else "consumer"


def first_reportable_interval_s(status: dict[str, Any]) -> int:
    """The interval in progress, or the first not yet settled if that is later."""
    length_s = int(status["interval_length_s"])
    in_progress = int(status["market_time_s"]) // length_s * length_s
    return max(in_progress, int(status["next_settlement_interval_start_s"]))


def simulate_meters(
    n_meters: int,
    via: Transport,
    url: str,
    *,
    intervals: int = 1,
    api_url: str | None = None,
    operator_key: bytes | None = None,
    seed: int = 0,
    timeout_s: float = 120.0,
) -> SimulationReport:
    """Run ``n_meters`` simulated meters against a node for ``intervals`` market intervals.

    ``url`` is the node's base URL (``via="http"``) or its MQTT broker (``mqtt://host:port``);
    ``api_url`` is the node's base URL when ``url`` is a broker. ``operator_key`` registers the
    missing meters first. Returns the counts of what the gateway acknowledged.
    """
    if via not in ("http", "mqtt"):
        raise ValidationError("via", f"must be 'http' or 'mqtt', got {via!r}")
    if intervals < 1:
        raise ValidationError("intervals", f"must be at least 1, got {intervals}")
    api_base = api_url or (url if via == "http" else None)
    if api_base is None:
        raise ValidationError("api_url", "MQTT meters need the node's API URL for its clock")
    meters = simulated_meters(n_meters, seed)
    api = NodeApi(api_base)
    try:
        if operator_key is not None:
            api.register(meters, operator_key)
        return _run(meters, api, _client(via, url, meters), intervals, timeout_s)
    finally:
        api.close()


def _client(via: Transport, url: str, meters: list[SimulatedMeter]) -> _Outbox:
    if via == "http":
        from gridledger.metering.httpclient import HttpMeterClient

        return _Outbox([HttpMeterClient(url)])
    from gridledger.metering.mqtt import MqttMeterClient

    return _Outbox([MqttMeterClient(url, m.address, resend_after_s=2.0).start() for m in meters])


class _Outbox:
    """One client (HTTP) or one per meter (MQTT), used alike."""

    def __init__(self, clients: list[MeterClient]) -> None:
        self.clients = clients

    def submit(self, batch: list[SignedReading]) -> None:
        if len(self.clients) == 1:
            self.clients[0].submit_batch(batch)
            return
        by_meter = {getattr(c, "meter", ""): c for c in self.clients}
        for signed in batch:
            by_meter[signed.reading.meter].submit(signed)

    def settle(self, timeout_s: float) -> int:
        """Resend until every reading is answered or ``timeout_s`` passed; how many are not."""
        deadline = time.monotonic() + timeout_s
        while any(c.pending for c in self.clients) and time.monotonic() < deadline:
            for client in self.clients:
                client.resend_due()
            time.sleep(0.1)
        return sum(len(c.pending) for c in self.clients)

    def acks(self) -> list[dict[str, Any]]:
        return [ack for c in self.clients for ack in c.acks.values()]

    def close(self) -> None:
        for client in self.clients:
            stop = getattr(client, "close", None) or getattr(client, "stop", None)
            if stop is not None:
                stop()


def _run(
    meters: list[SimulatedMeter], api: NodeApi, outbox: _Outbox, intervals: int, timeout_s: float
) -> SimulationReport:
    domain = api.domain()
    status = api.market()
    length_s = int(status["interval_length_s"])
    first = first_reportable_interval_s(status)
    report = SimulationReport(len(meters))
    try:
        for k in range(intervals):
            start_s = first + k * length_s
            api.wait_for_market_time(start_s + length_s, timeout_s)
            batch = [sign_reading(m.reading(start_s, length_s), m.key, domain) for m in meters]
            outbox.submit(batch)
            report.intervals.append(start_s)
            report.sent += len(batch)
        report.unacknowledged = outbox.settle(timeout_s)
        acks = outbox.acks()
    finally:
        outbox.close()
    statuses = Counter(str(a.get("status")) for a in acks)
    report.accepted, report.duplicate = statuses["accepted"], statuses["duplicate"]
    report.rejected = dict(Counter(str(a.get("code")) for a in acks if a["status"] == "rejected"))
    return report
