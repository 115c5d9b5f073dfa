"""One trading day of a community, end to end: meters, orders, clearing, settlement, chain.

This is the orchestration layer (what ``gridledger demo`` runs); every step it calls is owned by a
domain module (see docs/ARCHITECTURE.md). Per 15-minute interval:

1. households' batteries dispatch, so each household knows its net position;
2. each household signs an order for its net position (price from its strategy), verified as a
   node would (signature, interval, nonce, escrow);
3. the uniform-price double auction clears the book;
4. each meter signs its reading, the gateway verifies and stores it;
5. settlement nets the trades to one delta per participant;
6. the operator commits the interval's roots on-chain, then settles the deltas on-chain.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gridledger.config import Settings, ensure_sqlite_dir
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ChainError, ValidationError
from gridledger.ledger import Ledger, Role
from gridledger.market import Order, SignedOrder, sign_order
from gridledger.metering import Gateway, Reading, sign_reading
from gridledger.node import IntervalOutcome, enrol_supplier, save_deployment
from gridledger.node.enrolment import Enrolment, Progress, enrol_many
from gridledger.sim.community import Community, Household, build_community
from gridledger.sim.strategies import TariffBand, zero_intelligence
from gridledger.store import Participant, Store
from gridledger.verifier.demo import DemoVerifiers
from gridledger.verifier.panel import DEV_QUORUM, DEV_VERIFIER_COUNT

DEMO_DB_URL = "sqlite:///.gridledger/demo.sqlite"
METER_RATED_POWER_W = 30_000
SUPPLIER_DEPOSIT_MICRO = (
    10_000_000_000  # 10,000 gEUR to pay feed-in  # a typical three-phase household connection
)


@dataclass(frozen=True)
class DayConfig:
    """What to simulate. Money in micro-units, energy in Wh."""

    households: int = 10
    intervals: int = 96
    first_interval: int = 0  # of the day: 48 starts at noon
    seed: int = 7
    pv_share: float = 0.5
    pv_peak_w_range: tuple[int, int] = (3_000, 7_000)  # rooftop PV, SimBench PV profiles
    battery_count: int = 1
    mechanism: str = "uniform"
    escrow_micro: int = 100_000_000  # 100 gEUR deposited per household
    fresh_db: bool = True  # start from an empty SQLite file (the demo default)
    verifiers: int = DEV_VERIFIER_COUNT  # in-process verifiers co-signing every interval
    quorum: int = DEV_QUORUM  # attestations the Market needs to settle
    fault: str | None = None  # "operator-tamper", "verifier-down" or "verifier-lying"

    def __post_init__(self) -> None:
        if self.households < 2:
            raise ValidationError("households", f"need at least 2 to trade, got {self.households}")
        if self.intervals < 1:
            raise ValidationError("intervals", f"must be at least 1, got {self.intervals}")
        if self.first_interval < 0:
            raise ValidationError(
                "first_interval", f"must not be negative, got {self.first_interval}"
            )


@dataclass
class Member:
    """A household as the market sees it: its keys and running account."""

    household: Household
    key: bytes
    meter_key: bytes
    address: str
    meter: str
    imported_wh: int = 0
    exported_wh: int = 0
    settled_micro: int = 0  # net of every on-chain movement (trades, fees, supplier)
    unsettled_micro: int = 0  # charges beyond its escrow, owed off-chain


@dataclass
class DayTotals:
    intervals: int = 0
    settled_intervals: int = 0
    trades: int = 0
    orders: int = 0
    readings: int = 0
    energy_traded_wh: int = 0
    traded_value_micro: int = 0
    fees_micro: int = 0
    prices: list[int] = field(default_factory=list)


@dataclass
class DayResult:
    """The run's summary plus the live store and ledger (for the dashboard and for tests)."""

    summary: dict[str, Any]
    store: Store
    ledger: Ledger
    settings: Settings

    def app_state(self) -> Any:
        from gridledger.api import NodeState

        return NodeState(
            self.store,
            lambda: chain_status(self.ledger),
            self.summary,
            ledger=self.ledger,
            settings=self.settings,
        )


def chain_status(ledger: Ledger) -> dict[str, Any]:
    d = ledger.deployment
    return {
        "chain": ledger.chain,
        "chain_id": d.chain_id,
        "block_number": ledger.block_number,
        "token": d.token,
        "registry": d.registry,
        "market": d.market,
        "grid_operator": d.grid_operator,
        "tx_count": ledger.stats.tx_count,
        "gas_used": ledger.stats.gas_used,
    }


def open_store(db_url: str, fresh: bool) -> Store:
    ensure_sqlite_dir(db_url)
    if fresh and db_url.startswith("sqlite:///"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return Store.open(db_url)


def day_start_s(community: Community) -> int:
    """SimBench profiles are for 2016: interval 0 of the community is that date's 00:00 UTC."""
    day = dt.date(2016, 1, 1) + dt.timedelta(days=community.start_interval // 96)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


class DayRunner:
    """Runs the intervals of one community against one ledger and one store."""

    def __init__(
        self, config: DayConfig, settings: Settings, progress: Progress | None = None
    ) -> None:
        self.config = config
        self.settings = settings
        self.band = TariffBand(
            settings.feed_in_price_micro_per_kwh, settings.import_price_micro_per_kwh
        )
        self.rng = np.random.default_rng(config.seed)
        self.community = build_community(
            n_households=config.households,
            seed=config.seed,
            pv_share=config.pv_share,
            battery_count=config.battery_count,
            n_intervals=config.first_interval + config.intervals,
            pv_peak_w_range=config.pv_peak_w_range,
            use_grid_sgens=False,
            grid_code=settings.grid_code,  # the grid's sgens are farm-sized, not rooftops
        )
        key = bytes.fromhex(settings.operator_key.removeprefix("0x")) or None
        dispute_dir = Path(settings.state_dir).parent / "disputes"
        self.verifiers = DemoVerifiers(config.verifiers, config.quorum, config.fault, dispute_dir)
        self.ledger = Ledger.deploy(
            settings.chain,
            key,
            verifiers=self.verifiers.addresses,
            quorum=config.quorum,
            confirmations=settings.chain_confirmations,
        )
        db_url = (
            DEMO_DB_URL
            if config.fresh_db and settings.db_url == Settings.db_url
            else settings.db_url
        )
        self.store = open_store(db_url, config.fresh_db)
        self.start_s = day_start_s(self.community)
        self.clock_s = self.start_s
        self.gateway = Gateway(self.store, self.ledger.domain, clock=lambda: self.clock_s)
        self.members = [self._member(i, h) for i, h in enumerate(self.community.households)]
        enrol_many(self.ledger, self.store, [self._enrolment(m) for m in self.members], progress)
        self.batteries = {m.address: m.household.battery for m in self.members}
        grid = self.ledger.deployment.grid_operator
        self.store.add_participant(Participant(grid, "grid_operator", 0, "grid operator"))
        supplier = enrol_supplier(self.ledger, self.store, SUPPLIER_DEPOSIT_MICRO)
        save_deployment(self.store, self.ledger)
        self.operator = self.verifiers.operator_class()(
            self.store, self.ledger, settings, supplier, self.verifiers, config.mechanism
        )
        self.verifiers.bind(self.operator, self.ledger)
        # Not the first interval: on the netting-root path a void needs a previous root.
        second_s = self.start_s + (config.first_interval + 1) * self.community.interval_length_s
        self.verifiers.tamper_from(self.operator, second_s)
        self.totals = DayTotals()

    @staticmethod
    def _member(index: int, household: Household) -> Member:
        key, meter_key = key_from_seed(f"household-{index}"), key_from_seed(f"meter-{index}")
        return Member(household, key, meter_key, address_of(key), address_of(meter_key))

    def _enrolment(self, member: Member) -> Enrolment:
        h = member.household
        role = Role.PROSUMER if h.has_pv or h.battery else Role.CONSUMER
        return Enrolment(
            member.address,
            role,
            h.bus,
            h.name,
            member.meter,
            METER_RATED_POWER_W,
            self.config.escrow_micro,
        )

    def run(self, on_interval: Callable[[int], None] | None = None) -> DayTotals:
        first = self.config.first_interval
        for k in range(first, first + self.config.intervals):
            self.run_interval(k)
            if on_interval is not None:
                on_interval(k + 1 - first)
        self.operator.claim_all()  # the day's claims: every escrow holds what was settled
        return self.totals

    def net_positions_wh(self, k: int) -> list[int]:
        """Each household's need (+) or surplus (-) after its battery, in Wh."""
        positions = []
        for member in self.members:
            h = member.household
            net_wh = int(h.load_wh[k]) - int(h.pv_wh[k])
            battery = self.batteries[member.address]
            if battery is not None:
                flow_wh, self.batteries[member.address] = battery.dispatch(
                    net_wh, self.community.interval_length_s
                )
                net_wh += flow_wh
            positions.append(net_wh)
        return positions

    def run_interval(self, k: int) -> None:
        start_s = self.start_s + k * self.community.interval_length_s
        positions = self.net_positions_wh(k)
        self.totals.orders += len(
            self.operator.accept_orders(self.sign_orders(start_s, k, positions), start_s)
        )
        result = self.operator.clear_interval(start_s)
        self.record_readings(start_s, k, positions)
        self.book_keep(self.operator.settle_interval(start_s, result))

    def sign_orders(self, start_s: int, k: int, positions: Sequence[int]) -> list[SignedOrder]:
        """Each household with a position signs one order for it (nonce: the interval index)."""
        signed: list[SignedOrder] = []
        for member, net_wh in zip(self.members, positions, strict=True):
            intent = zero_intelligence(net_wh, self.band, self.rng)
            if intent is None:
                continue
            order = Order(
                member.address,
                intent.side.value,
                intent.energy_wh,
                intent.price_micro_per_kwh,
                start_s,
                nonce=k,
            )
            signed.append(sign_order(order, member.key, self.ledger.domain))
        return signed

    def record_readings(self, start_s: int, k: int, positions: Sequence[int]) -> list[Reading]:
        length_s = self.community.interval_length_s
        signed = []
        for member, net_wh in zip(self.members, positions, strict=True):
            reading = Reading(
                member.meter, k + 1, start_s, length_s, max(net_wh, 0), max(-net_wh, 0)
            )
            signed.append(sign_reading(reading, member.meter_key, self.ledger.domain))
            member.imported_wh += reading.imported_wh
            member.exported_wh += reading.exported_wh
        self.clock_s = start_s + length_s  # the readings arrive once the interval is over
        outcomes = self.gateway.ingest(signed)
        refused = [o for o in outcomes if o.status not in ("accepted", "duplicate")]
        if refused:
            raise ChainError(f"the gateway refused demo readings: {refused[:3]}")
        self.totals.readings += len(signed)
        return [s.reading for s in signed]

    def book_keep(self, outcome: IntervalOutcome) -> None:
        settlement = outcome.settlement
        for member in self.members:
            member.settled_micro += settlement.deltas_micro.get(member.address, 0)
            member.unsettled_micro += settlement.unsettled_micro.get(member.address, 0)
        self.totals.energy_traded_wh += settlement.traded_energy_wh
        self.totals.traded_value_micro += sum(
            line.amount_micro for line in settlement.lines if line.kind == "trade-sell"
        )
        self.totals.fees_micro += settlement.fees_micro
        self.totals.intervals += 1
        self.totals.trades += len(outcome.lines)
        if outcome.clearing_price_micro_per_kwh is not None:
            self.totals.prices.append(outcome.clearing_price_micro_per_kwh)


def household_costs_micro(member: Member, settings: Settings) -> tuple[int, int]:
    """(cost buying everything from the grid, cost with the local market), in micro-units.

    The market cost is what actually moved on-chain (trades, grid fees and the supplier's
    imbalance settlement), plus any charge that exceeded the escrow.
    """
    imp, feed = settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh
    baseline = (member.imported_wh * imp - member.exported_wh * feed) // 1000
    return baseline, -member.settled_micro + member.unsettled_micro


def summarize(runner: DayRunner, wall_time_s: float) -> dict[str, Any]:
    totals, settings = runner.totals, runner.settings
    costs = [household_costs_micro(m, settings) for m in runner.members]
    baseline, market = sum(c[0] for c in costs), sum(c[1] for c in costs)
    # Meters see only what crosses the connection, so the demo's denominator is the households'
    # metered import, not their demand (which the scenario KPIs of sim/kpis.py use).
    imported_wh = sum(m.imported_wh for m in runner.members)
    energy = totals.energy_traded_wh
    return {
        "households": len(runner.members),
        "intervals": runner.config.intervals,
        "settled_intervals": runner.ledger.progress()[2],  # counted by the Market contract
        "unsettled_micro": sum(m.unsettled_micro for m in runner.members),
        "orders": totals.orders,
        "readings": totals.readings,
        "trades": totals.trades,
        "energy_traded_wh": energy,
        "household_import_wh": imported_wh,
        "local_share_of_import": energy / imported_wh if imported_wh else 0.0,
        "mean_local_price_micro_per_kwh": totals.traded_value_micro * 1000 // energy
        if energy
        else None,
        "import_price_micro_per_kwh": settings.import_price_micro_per_kwh,
        "feed_in_price_micro_per_kwh": settings.feed_in_price_micro_per_kwh,
        "grid_fee_micro_per_kwh": settings.grid_fee_micro_per_kwh,
        "grid_fees_micro": totals.fees_micro,
        "baseline_cost_micro": baseline,
        "market_cost_micro": market,
        "community_savings_micro": baseline - market,
        "chain": settings.chain,
        "chain_id": runner.ledger.chain_id,
        "chain_txs": runner.ledger.stats.tx_count,
        "gas_used": runner.ledger.stats.gas_used,
        "grid_code": runner.community.grid_code,
        "wall_time_s": round(wall_time_s, 2),
        **runner.verifiers.summary(),
    }


def run_day(
    config: DayConfig,
    settings: Settings,
    on_interval: Callable[[int], None] | None = None,
    on_enrol: Progress | None = None,
) -> DayResult:
    """Run ``config.intervals`` intervals; returns the summary with the live store and ledger."""
    began = time.perf_counter()
    runner = DayRunner(config, settings, on_enrol)
    runner.run(on_interval)
    summary = summarize(runner, time.perf_counter() - began)
    return DayResult(summary, runner.store, runner.ledger, runner.settings)
