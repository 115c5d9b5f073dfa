"""``gridledger node``: one process running the gateway, the market scheduler and the API.

Start-up: open the store; attach to the deployment saved in it (or deploy on the first start
and save it there and in ``<state_dir>/deployment.json``); resume the market clock and the
scheduler where the database says the last run stopped; serve the API and dashboard; start the
MQTT bridge (readings, then orders) when ``mqtt_url`` is set. SIGTERM or Ctrl-C stops the HTTP
server, lets the step in progress finish, and closes everything; a SIGKILL loses nothing either
(see scheduler.py).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from gridledger.config import Settings, ensure_sqlite_dir, load_settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConfigError, NotFoundError
from gridledger.ledger import Deployment, Ledger
from gridledger.metering.mqtt import MqttBatchBridge, ReadingHandler, TopicHandler
from gridledger.node.clock import MarketClock, interval_start_s
from gridledger.node.interval import SUPPLIER_SEED, enrol_supplier, save_deployment
from gridledger.node.market import LiveMarket
from gridledger.node.meta import NodeMeta
from gridledger.node.mqtt_orders import OrderHandler
from gridledger.node.scheduler import Scheduler
from gridledger.node.security import NodeSecurity
from gridledger.store import Participant, Store
from gridledger.verifier.panel import AttestationSource, InProcessVerifiers, dev_verifier_keys
from gridledger.verifier.sources import verifier_set

log = logging.getLogger(__name__)
MEMORY = "memory"
SUPPLIER_DEPOSIT_MICRO = 1_000_000_000_000  # the supplier's escrow pays feed-in: 1 M gEUR


def _operator_key(settings: Settings) -> bytes | None:
    if settings.operator_keystore:
        from gridledger.keys import load_key

        return load_key(settings.operator_keystore, settings.operator_passphrase_file or None)
    try:
        key = bytes.fromhex(settings.operator_key.removeprefix("0x"))
    except ValueError:
        raise ConfigError("operator_key: not a hex private key") from None
    if key and len(key) != 32:
        raise ConfigError(f"operator_key: must be 32 bytes, got {len(key)}")
    return key or None


def open_ledger(settings: Settings, meta: NodeMeta) -> Ledger:
    """Attach to the deployment the database remembers, or deploy and remember it."""
    key = _operator_key(settings)
    saved = meta.get("deployment")
    if saved is not None and settings.chain != MEMORY:
        deployment = Deployment.from_json(saved)
        ledger = Ledger.attach(
            settings.chain, deployment, key, confirmations=settings.chain_confirmations
        )
        if not ledger.code_at(deployment.market):
            raise ConfigError(
                f"the database's deployment (market {deployment.market}) is not on chain "
                f"{settings.chain}: point --chain at the chain it was deployed on, or use a "
                "fresh database"
            )
        return ledger
    if saved is not None:
        log.warning("chain 'memory' does not outlive the process: deploying afresh")
    verifiers, quorum = verifier_set(settings)
    ledger = Ledger.deploy(
        settings.chain,
        key,
        verifiers=verifiers,
        quorum=quorum,
        confirmations=settings.chain_confirmations,
    )
    meta.put(deployment=ledger.deployment.to_json(), deploy_block=0)
    _save_deployment_file(settings, ledger.deployment)
    return ledger


def attestation_source(settings: Settings, store: Store, ledger: Ledger) -> AttestationSource:
    """Who co-signs this node's intervals: the dev verifier set in this process, or (remote)
    `gridledger verifier` processes over the API (gridledger.verifier.sources)."""
    if settings.verifier_mode == "remote":
        from gridledger.verifier.sources import NodeVerifiers

        return NodeVerifiers(settings, store, ledger)
    return InProcessVerifiers(dev_verifier_keys(settings.verifier_count), domain=ledger.domain)


def _save_deployment_file(settings: Settings, deployment: Deployment) -> None:
    folder = Path(settings.state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deployment.json").write_text(deployment.to_json() + "\n")


def resume_clock(settings: Settings, meta: NodeMeta) -> MarketClock:
    """Wall time at speed 1; otherwise continue from the last saved market time."""
    length = settings.interval_length_s
    if settings.speed == 1:
        return MarketClock()
    saved = meta.get_int("market_time_s")
    next_gate = meta.get_int("next_gate_s")
    if saved is None:
        fresh = MarketClock()
        return MarketClock.starting_at(interval_start_s(fresh.now(), length), settings.speed)
    resume_at = max(saved, (next_gate - length) if next_gate is not None else saved)
    return MarketClock.starting_at(resume_at, settings.speed)


def _auth_secret(settings: Settings, meta: NodeMeta) -> str:
    """The configured secret, else one kept in the database so tokens outlive a restart."""
    if settings.auth_secret:
        return settings.auth_secret
    saved = meta.get("auth_secret")
    if saved is None:
        saved = secrets.token_hex(32)
        meta.put(auth_secret=saved)
    return saved


@dataclass
class Node:
    settings: Settings
    store: Store
    ledger: Ledger
    market: LiveMarket
    scheduler: Scheduler
    bridge: MqttBatchBridge | None = None  # readings, then orders
    security: NodeSecurity | None = None
    vtn: Any = None  # the OpenADR VTN (gridledger.openadr) when openadr_port is set

    @classmethod
    def open(cls, settings: Settings) -> Node:
        """Connect to the store and chain and prepare the market (nothing runs yet)."""
        ensure_sqlite_dir(settings.db_url)
        store = Store.open(settings.db_url)
        meta = NodeMeta(store)
        settings = settings.replace(auth_secret=_auth_secret(settings, meta))
        ledger = open_ledger(settings, meta)
        save_deployment(store, ledger)  # `consent`, `access-log --verify`, `statement --verify`
        clock = resume_clock(settings, meta)
        first = interval_start_s(clock.now(), settings.interval_length_s)
        supplier = _ensure_supplier(store, ledger)
        market = LiveMarket(
            store,
            ledger,
            settings,
            clock,
            meta,
            first + settings.interval_length_s,
            supplier,
            attestation_source(settings, store, ledger),
        )
        meta.put(
            next_gate_s=market.next_gate_s,
            next_settle_s=market.next_settle_s,
            market_time_s=clock.now_s(),
        )
        _ensure_grid_operator(store, ledger)
        return cls(settings, store, ledger, market, Scheduler(market))

    def start(self) -> Node:
        self.security = NodeSecurity.start(self)  # first: it watches the gateway and the API
        self.scheduler.start()
        if self.settings.mqtt_url:
            handlers: list[TopicHandler] = [
                ReadingHandler(self.market.gateway),
                OrderHandler(self.market),
            ]
            self.bridge = MqttBatchBridge(self.settings.mqtt_url, handlers).start()
        from gridledger.openadr.process import start_node_vtn

        self.vtn = start_node_vtn(self.settings, self.store)
        threading.Thread(
            target=_warm_grid_map, args=(self.settings.grid_code,), name="grid-map", daemon=True
        ).start()
        accounts = self.market.intake.accounts
        threading.Thread(target=accounts.warm, name="warm-accounts", daemon=True).start()
        return self

    def stop(self) -> None:
        self.market.hub.closed.set()
        if self.vtn is not None:
            self.vtn.stop()
        if self.bridge is not None:
            self.bridge.stop()
        self.scheduler.stop()
        self.market.gateway.close()
        if self.security is not None:
            self.security.stop()
        self.store.close()

    def app_state(self) -> Any:
        from gridledger.api import NodeState

        return NodeState(
            self.store,
            lambda: {},
            None,
            ledger=self.ledger,
            live=self.market,
            settings=self.settings,
            anomalies=self.security.anomalies if self.security else list,
        )

    def app(self) -> Any:
        from gridledger.api import create_app

        app = create_app(self.app_state())
        return self.security.wrap(app) if self.security else app


def _ensure_grid_operator(store: Store, ledger: Ledger) -> None:
    grid = ledger.deployment.grid_operator
    try:
        store.participant(grid)
    except NotFoundError:
        store.add_participant(Participant(grid, "grid_operator", 0, "grid operator"))


def _ensure_supplier(store: Store, ledger: Ledger) -> str:
    supplier = address_of(key_from_seed(SUPPLIER_SEED))
    try:
        store.participant(supplier)
    except NotFoundError:
        enrol_supplier(ledger, store, SUPPLIER_DEPOSIT_MICRO)
    return supplier


def _warm_grid_map(grid_code: str) -> None:
    try:
        from gridledger.api._grid import grid_geometry

        grid_geometry(grid_code)
    except Exception as exc:  # the map is optional: the dashboard shows it as unavailable
        log.warning("grid map unavailable: %s", exc)


def node_settings(
    config_path: Path | None = None,
    chain: str | None = None,
    db_url: str | None = None,
    speed: int | None = None,
    http_host: str | None = None,
    http_port: int | None = None,
) -> Settings:
    """Flags over ``GRIDLEDGER_*`` variables over the TOML file over defaults."""
    overrides = {
        "chain": chain,
        "db_url": db_url,
        "speed": speed,
        "http_host": http_host,
        "http_port": http_port,
    }
    return load_settings(overrides, config_path=config_path)


def run_node(settings: Settings, opened: Node | None = None) -> None:
    """Run until SIGTERM/SIGINT: the node, its API on http_host:http_port, the dashboard.

    ``opened``: a node already opened (``gridledger bench node`` enrols its households first).
    """
    import uvicorn

    node = (opened or Node.open(settings)).start()
    log.info(
        "node: market %s on %s, API on http://%s:%s",
        node.ledger.deployment.market,
        settings.chain,
        settings.http_host,
        settings.http_port,
    )

    class NodeServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            node.market.hub.closed.set()  # ends the event streams so shutdown is quick
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal after its shutdown, which would kill the process
            # before the scheduler finished its step; the node stops itself, then exits 0.
            with super().capture_signals():
                try:
                    yield
                finally:
                    self._captured_signals.clear()

    config = uvicorn.Config(
        node.app(),
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    try:
        NodeServer(config).run()
    finally:
        node.stop()
