"""Load generator for ``gridledger bench node``: many households and meters in one OS process.

Household ``i`` has the key ``key_from_seed(f"bench-household-{i}")`` and one meter
``key_from_seed(f"bench-meter-{i}")``. Its energy is SimBench household profile ``i % P`` of
the community (``P`` = the grid's loads), scaled by a fixed per-household factor, so 10,000
households are 10,000 different (if related) series. Per interval it sends one signed order
(buy its net need or sell its surplus, at a price inside the tariff band) while the interval
is open, and one signed reading as soon as it has ended, as :mod:`gridledger.metering.simulate`
does for a single meter.

With ``via = "mqtt"`` the orders and readings go over MQTT (each order authenticates itself
by its signature: no sign-in), published by one client per process for all its households.

A process is started with a JSON config naming its slice of households and the intervals to
run. It signs in every household (HTTP) and pre-signs every order and reading (the warm-up, before
the timed run), prints ``ready``, waits for ``go`` on stdin and then follows the node's market
clock, writing what the node answered to its result file. Progress goes to stdout as
``progress <step> <done> <total>`` lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.market import Order, sign_order, signed_order_to_json
from gridledger.metering import Reading, sign_reading, signed_reading_to_json
from gridledger.node.mqtt_orders import ORDER_ACKS_TOPIC, ORDERS_TOPIC

METER_RATED_POWER_W = 30_000
READING_BATCH = 500
ORDER_CONCURRENCY = 32
READING_CONCURRENCY = 4
# Households reach the node from their own addresses (127.G.x.y here), not all from one: the
# node's traffic detector (300 requests a minute per source) would report one as an attack.
SOURCES_PER_GENERATOR = 128
MAX_TRIES = 4
SELL_PRICE_MICRO_PER_KWH = (60_000, 160_000)  # a seller's ask: feed-in tariff and above
BUY_PRICE_MICRO_PER_KWH = (120_000, 280_000)  # a buyer's bid (includes the grid fee)


def household_key(i: int) -> bytes:
    return key_from_seed(f"bench-household-{i}")


def meter_key(i: int) -> bytes:
    return key_from_seed(f"bench-meter-{i}")


def scale_percent(i: int) -> int:
    """A fixed 80..119 % factor per household: tiled profiles are not identical copies."""
    return 80 + (i * 2_654_435_761 >> 7) % 40


@dataclass(frozen=True)
class Profile:
    """One SimBench household's day (Wh per 15-minute slot) and its grid bus."""

    load_wh: tuple[int, ...]
    pv_wh: tuple[int, ...]
    bus: int

    def net_wh(self, i: int, slot: int) -> int:
        """Household ``i``'s need (+) or surplus (-) in ``slot``, scaled by its factor."""
        slot %= len(self.load_wh)
        return (self.load_wh[slot] - self.pv_wh[slot]) * scale_percent(i) // 100


def build_profiles(n_households: int, grid_code: str, seed: int = 0) -> list[Profile]:
    """Up to one profile per load of the SimBench grid (fewer if fewer households)."""
    from gridledger.iotools.simbench import load_lv_grid
    from gridledger.sim.community import build_community

    n_profiles = min(n_households, len(load_lv_grid(grid_code).load))
    community = build_community(
        n_households=n_profiles,
        seed=seed,
        battery_count=0,
        grid_code=grid_code,
        use_grid_sgens=False,  # rooftop-sized PV, as in the demo
    )
    return [
        Profile(tuple(int(v) for v in h.load_wh), tuple(int(v) for v in h.pv_wh), int(h.bus))
        for h in community.households
    ]


def profiles_to_json(profiles: list[Profile]) -> list[dict[str, Any]]:
    return [{"load_wh": p.load_wh, "pv_wh": p.pv_wh, "bus": p.bus} for p in profiles]


def profiles_from_json(raw: list[dict[str, Any]]) -> list[Profile]:
    return [Profile(tuple(p["load_wh"]), tuple(p["pv_wh"]), int(p["bus"])) for p in raw]


def order_for(i: int, profile: Profile, start_s: int, length_s: int) -> Order:
    """Household ``i``'s order for the interval starting at ``start_s``."""
    k = start_s // length_s
    net = profile.net_wh(i, k)
    spread = (i * 7_919 + k * 104_729) % 1_000 / 1_000
    if net > 0:
        low, high = BUY_PRICE_MICRO_PER_KWH
        side = "buy"
    else:
        low, high = SELL_PRICE_MICRO_PER_KWH
        side = "sell"
    price = int(low + (high - low) * spread)
    return Order(address_of(household_key(i)), side, max(abs(net), 1), price, start_s, k)  # type: ignore[arg-type]


def reading_for(i: int, profile: Profile, meter: str, start_s: int, length_s: int) -> Reading:
    k = start_s // length_s
    net = profile.net_wh(i, k)
    return Reading(meter, k, start_s, length_s, max(net, 0), max(-net, 0))


@dataclass
class Tally:
    """What the node answered to one burst (one interval's orders, or its readings)."""

    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    skipped_after_gate: int = 0  # orders not sent: the gate had closed before their turn
    began_wall_s: float = 0.0
    ended_wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": dict(self.rejected),
            "unanswered": self.unanswered,
            "skipped_after_gate": self.skipped_after_gate,
            "began_wall_s": self.began_wall_s,
            "ended_wall_s": self.ended_wall_s,
        }


@dataclass
class Household:
    index: int
    key: bytes
    meter_key: bytes
    profile: Profile
    token: str = ""

    @property
    def address(self) -> str:
        return address_of(self.key)

    @property
    def meter(self) -> str:
        return address_of(self.meter_key)


def _say(*words: object) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


class LoadGenerator:
    """One process's households against one node (see the module docstring)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.base_url = str(config["base_url"]).rstrip("/")
        self.length_s = int(config["interval_length_s"])
        self.starts = [
            int(config["first_interval_s"]) + k * self.length_s
            for k in range(int(config["intervals"]))
        ]
        profiles = profiles_from_json(config["profiles"])
        self.households = [
            Household(i, household_key(i), meter_key(i), profiles[i % len(profiles)])
            for i in range(int(config["first_household"]), int(config["end_household"]))
        ]
        chain = config["domain"]
        self.domain = Domain("gridledger", "1", int(chain["chain_id"]), str(chain["market"]))
        self.via = str(config.get("via", "http"))
        # Households send their orders evenly over this share of the order window (0: all at
        # its opening, the worst case); readings always go in one burst when an interval ends.
        self.order_spread = float(config.get("order_spread", 0.0))
        self.orders: dict[int, list[tuple[Household, dict[str, Any]]]] = {}
        self.readings: dict[int, list[dict[str, Any]]] = {}
        self.clock = (0.0, 0.0, 1.0)  # (market s, wall s, speed) at "go"
        self.sources: list[httpx.AsyncClient] = []  # one client per source address

    # -- warm-up -----------------------------------------------------------------------------
    async def sign_in_all(self, http: httpx.AsyncClient) -> None:
        done = 0
        gate = asyncio.Semaphore(ORDER_CONCURRENCY)

        async def one(h: Household) -> None:
            nonlocal done
            async with gate:
                h.token = await _sign_in(self.source_of(h, http), h)
            done += 1
            if done % 200 == 0 or done == len(self.households):
                _say("progress", "sign-in", done, len(self.households))

        await asyncio.gather(*(one(h) for h in self.households))

    def presign(self) -> None:
        total, done = len(self.starts) * len(self.households), 0
        for start_s in self.starts:
            self.orders[start_s], self.readings[start_s] = [], []
            for h in self.households:
                signed = sign_order(
                    order_for(h.index, h.profile, start_s, self.length_s), h.key, self.domain
                )
                body = signed_order_to_json(signed)
                self.orders[start_s].append((h, body))
                reading = reading_for(h.index, h.profile, h.meter, start_s, self.length_s)
                signed_reading = sign_reading(reading, h.meter_key, self.domain)
                self.readings[start_s].append(signed_reading_to_json(signed_reading))
                done += 1
            _say("progress", "pre-sign", done, total)

    # -- the timed run -----------------------------------------------------------------------
    async def send_orders(self, http: httpx.AsyncClient, start_s: int) -> Tally:
        tally = Tally(began_wall_s=time.time())
        gate = asyncio.Semaphore(ORDER_CONCURRENCY)

        spread_s = self.order_spread * self.length_s / self.clock[2]  # wall seconds

        async def one(h: Household, body: dict[str, Any], offset_s: float) -> None:
            await asyncio.sleep(offset_s)
            async with gate:
                if _wall_until(self.clock, start_s) <= 0:
                    # A household does not send an order for an interval whose gate has closed.
                    tally.skipped_after_gate += 1
                    return
                headers = {"Authorization": f"Bearer {h.token}"}
                try:
                    response = await _request(
                        self.source_of(h, http), "POST", "/v1/orders", body=body, headers=headers
                    )
                except httpx.HTTPError:
                    tally.unanswered += 1
                    return
            if response.status_code == 201:
                tally.accepted += 1
            elif response.status_code == 200:
                tally.duplicate += 1
            else:
                tally.rejected[_problem_code(response)] += 1

        batch = self.orders[start_s]
        tally.sent = len(batch)
        if self.via == "mqtt":
            bodies = [body for _, body in batch]
            url = str(self.config["mqtt_url"])
            await asyncio.to_thread(_send_mqtt_orders, url, bodies, tally, spread_s)
        else:
            n = len(batch)
            await asyncio.gather(*(one(h, b, spread_s * j / n) for j, (h, b) in enumerate(batch)))
        tally.ended_wall_s = time.time()
        return tally

    async def send_readings(self, http: httpx.AsyncClient, start_s: int) -> Tally:
        tally = Tally(began_wall_s=time.time())
        readings = self.readings[start_s]
        tally.sent = len(readings)
        if self.via == "mqtt":
            await asyncio.to_thread(_send_mqtt, str(self.config["mqtt_url"]), readings, tally)
            tally.ended_wall_s = time.time()
            return tally
        gate = asyncio.Semaphore(READING_CONCURRENCY)

        async def one(batch: list[dict[str, Any]]) -> None:
            async with gate:
                try:
                    response = await _request(http, "POST", "/v1/readings", body=batch)
                except httpx.HTTPError:
                    tally.unanswered += len(batch)
                    return
            if response.status_code != 200:
                tally.rejected[_problem_code(response)] += len(batch)
                return
            _count_acks(response.json(), tally)

        chunks = [readings[i : i + READING_BATCH] for i in range(0, len(readings), READING_BATCH)]
        await asyncio.gather(*(one(c) for c in chunks))
        tally.ended_wall_s = time.time()
        return tally

    def source_of(self, h: Household, default: httpx.AsyncClient) -> httpx.AsyncClient:
        return self.sources[h.index % len(self.sources)] if self.sources else default

    def _open_sources(self) -> list[httpx.AsyncClient]:
        generator = int(self.config.get("generator", 0)) % 250 + 1
        count = min(SOURCES_PER_GENERATOR, len(self.households))
        return [
            httpx.AsyncClient(
                base_url=self.base_url,
                timeout=120,
                transport=httpx.AsyncHTTPTransport(
                    local_address=f"127.{generator}.{c // 250}.{c % 250 + 1}",
                    limits=httpx.Limits(max_connections=2),
                ),
            )
            for c in range(count)
        ]

    async def run(self) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=ORDER_CONCURRENCY + READING_CONCURRENCY)
        self.sources = self._open_sources()
        try:
            return await self._run(limits)
        finally:
            for client in self.sources:
                await client.aclose()

    async def _run(self, limits: httpx.Limits) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=120, limits=limits) as http:
            if self.via == "http":  # an order over MQTT authenticates itself: no sign-in
                await self.sign_in_all(http)
            await asyncio.to_thread(self.presign)
            _say("ready")
            await asyncio.to_thread(sys.stdin.readline)  # "go"
            status = (await http.get("/v1/market")).json()
            self.clock = clock = (
                float(status["market_time_s"]),
                time.time(),
                float(status["speed"]),
            )
            steps = sorted(
                [(s - self.length_s, "orders", s) for s in self.starts]
                + [(s + self.length_s, "readings", s) for s in self.starts]
            )
            tasks: list[asyncio.Task[tuple[str, int, Tally]]] = []
            for at_market_s, kind, start_s in steps:
                await asyncio.sleep(max(_wall_until(clock, at_market_s), 0.0))
                tasks.append(asyncio.create_task(self._burst(http, kind, start_s)))
            results = await asyncio.gather(*tasks)
        out: dict[str, Any] = {"orders": {}, "readings": {}}
        for kind, start_s, tally in results:
            out[kind][str(start_s)] = tally.to_json()
        return out

    async def _burst(
        self, http: httpx.AsyncClient, kind: str, start_s: int
    ) -> tuple[str, int, Tally]:
        if kind == "orders":
            return kind, start_s, await self.send_orders(http, start_s)
        return kind, start_s, await self.send_readings(http, start_s)


async def _sign_in(http: httpx.AsyncClient, h: Household) -> str:
    """A bearer token for ``h``. A failed try starts again from a new nonce: a token request
    the node answered with an error may have used its nonce up already."""
    for attempt in range(1, MAX_TRIES + 1):
        challenge = await _request(http, "GET", "/v1/auth/nonce", {"address": h.address})
        message = challenge.json()["message"]
        body = {"message": message, "signature": sign_in_message_signature(message, h.key)}
        try:
            response = await http.post("/v1/auth/token", json=body)
        except httpx.TransportError as exc:
            failure = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return str(response.json()["token"])
            failure = f"HTTP {response.status_code} {response.text[:300]}"
        if attempt == MAX_TRIES:
            raise RuntimeError(f"sign-in of {h.address}: {failure}")
        await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def sign_in_message_signature(text: str, private_key: bytes) -> str:
    """What a wallet does with the EIP-4361 message (personal_sign)."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    signed = Account.sign_message(encode_defunct(text=text), private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


def _wall_until(clock: tuple[float, float, float], market_s: float) -> float:
    market_at, wall_at, speed = clock
    return wall_at + (market_s - market_at) / speed + 0.02 - time.time()


async def _request(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    params: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One request; a lost connection or a 5xx/429 is tried again a few times (as a meter)."""
    for attempt in range(1, MAX_TRIES + 1):
        try:
            response = await http.request(method, path, params=params, json=body, headers=headers)
        except httpx.TransportError:
            if attempt == MAX_TRIES:
                raise
            await asyncio.sleep(0.2 * attempt)
            continue
        if response.status_code in (429, 502, 503) and attempt < MAX_TRIES:
            await asyncio.sleep(0.2 * attempt)
            continue
        return response
    raise AssertionError("unreachable")


def _problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}"
    if isinstance(body, dict):
        if body.get("code"):
            return str(body["code"])
        if body.get("type"):
            return str(body["type"]).rsplit("/", 1)[-1]
    return f"http_{response.status_code}"


def _count_acks(acks: list[dict[str, Any]], tally: Tally) -> None:
    for ack in acks:
        if ack.get("status") == "accepted":
            tally.accepted += 1
        elif ack.get("status") == "duplicate":
            tally.duplicate += 1
        else:
            tally.rejected[str(ack.get("code"))] += 1


def _send_mqtt(broker_url: str, readings: list[dict[str, Any]], tally: Tally) -> None:
    """Publish every reading on its meter's topic from one client; wait for the node's acks."""
    from gridledger.metering.mqtt import ACKS_TOPIC, READINGS_TOPIC, publish_and_collect

    messages = [(READINGS_TOPIC + r["meter"], r) for r in readings]
    expected: set[Hashable] = {(r["meter"], int(r["sequence"])) for r in readings}
    acks = publish_and_collect(
        broker_url, messages, ACKS_TOPIC + "+", lambda a: (a["meter"], a["sequence"]), expected
    )
    _count_acks(list(acks.values()), tally)
    tally.unanswered += len(expected) - len(acks)


def _send_mqtt_orders(
    broker_url: str, bodies: list[dict[str, Any]], tally: Tally, spread_s: float
) -> None:
    """Publish every order on its participant's topic from one client; wait for the acks."""
    from gridledger.metering.mqtt import publish_and_collect

    messages = [(ORDERS_TOPIC + b["participant"], b) for b in bodies]
    expected: set[Hashable] = {(b["participant"], int(b["nonce"])) for b in bodies}
    acks = publish_and_collect(
        broker_url,
        messages,
        ORDER_ACKS_TOPIC + "+",
        lambda a: (a["participant"], a["nonce"]),
        expected,
        spread_s=spread_s,
    )
    _count_acks(list(acks.values()), tally)
    tally.unanswered += len(expected) - len(acks)


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    result = asyncio.run(LoadGenerator(config).run())
    Path(config["result_path"]).write_text(json.dumps(result))
    _say("done")


if __name__ == "__main__":
    main(sys.argv[1])
