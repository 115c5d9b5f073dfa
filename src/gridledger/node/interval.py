"""The interval pipeline an operator runs: accept orders, clear at gate closure, settle on-chain.

This is an edge module: it joins the pure core (market, metering roots, settlement) to the store
and the chain. The demo (``gridledger.sim.day``) and the node both drive it, so there is one way
to run an interval. Each step is idempotent against the chain: a step that already happened
on-chain (for instance before a crash) is recorded, not sent again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gridledger.config import Settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import AttestationRefused, ConflictError, NotFoundError
from gridledger.ledger import (
    AccountView,
    Deployment,
    Ledger,
    NettingRoot,
    OnChainInterval,
    Role,
    TxResult,
    pack_entries,
)
from gridledger.market import (
    Book,
    ClearingResult,
    Order,
    ParticipantStatus,
    Side,
    SignedOrder,
    TradeLine,
    Trades,
    clear,
    escrow_required_micro,
    orders_root,
    result_lines,
    result_root,
    verify_order,
)
from gridledger.metering import readings_root
from gridledger.node.netting import NettingState
from gridledger.privacy.keys import leaf_key_of
from gridledger.settlement import (
    Delivery,
    DeliverySettlement,
    StatementLine,
    Tariffs,
    settle_with_delivery,
    trade_amount_micro,
)
from gridledger.settlement.statements import settled_trades
from gridledger.store import (
    IntervalRow,
    NettingRootRow,
    OrderRow,
    Participant,
    SettlementPlanRow,
    StatementLineRow,
    Store,
    TradeRow,
)
from gridledger.verifier.attestation import (
    IntervalAttestation,
    settlement_hash_of_entries,
    settlement_hash_of_root,
)
from gridledger.verifier.panel import AttestationSource

SUPPLIER_SEED = "grid-supplier"
VOID_PLAN_PREFIX = "interval.void_plan."  # store meta: the plan a disputed interval settles with
_MAX_ENERGY_WH = 10_000_000  # 10 MWh in one interval is far beyond any community member
_MAX_PRICE_MICRO_PER_KWH = 10_000_000


@dataclass(frozen=True)
class IntervalOutcome:
    """What happened to one interval, on-chain and in the store."""

    interval_start_s: int
    clearing_price_micro_per_kwh: int | None
    cleared_energy_wh: int
    lines: tuple[TradeLine, ...]
    settlement: DeliverySettlement
    roots: tuple[bytes, bytes, bytes]  # orders, result, readings
    commit: TxResult
    settle: TxResult


class StoreOrderContext:
    """Order verification facts from the store (nonces, reservations) and the chain (escrow)."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        open_start_s: int | None,
        unclaimed_micro: Callable[[str], int] = lambda _: 0,
    ):
        self.store, self.ledger = store, ledger
        self.unclaimed_micro = unclaimed_micro  # netting-root net not yet claimed into escrow
        self.open_interval_start_s = open_start_s
        self.max_energy_wh = _MAX_ENERGY_WH
        self.max_price_micro_per_kwh = _MAX_PRICE_MICRO_PER_KWH
        self.grid_fee_micro_per_kwh = settings.grid_fee_micro_per_kwh
        self.reserved_micro: dict[str, int] = {}
        self.accounts: dict[str, AccountView] = {}
        if open_start_s is not None:
            for row in store.orders_in_interval(open_start_s):
                if row.side == "buy":
                    self.reserve(row.participant, row.energy_wh, row.price_micro_per_kwh)

    def reserve(self, participant: str, energy_wh: int, price_micro_per_kwh: int) -> None:
        amount = escrow_required_micro(energy_wh, price_micro_per_kwh, self.grid_fee_micro_per_kwh)
        self.reserved_micro[participant] = self.reserved_micro.get(participant, 0) + amount

    def prefetch(self, addresses: Iterable[str]) -> None:
        """Read every account a batch names in one chain call (instead of three per order)."""
        missing = sorted({a for a in addresses if a not in self.accounts})
        self.accounts.update(self.ledger.accounts_view(missing))

    def participant(self, address: str) -> ParticipantStatus | None:
        self.prefetch([address])
        account = self.accounts[address]
        if account.role == Role.NONE:
            return None
        spendable = account.escrow_micro + self.unclaimed_micro(address)
        escrow = max(spendable - account.pending_withdrawal_micro, 0)
        return ParticipantStatus(account.active, escrow, self.reserved_micro.get(address, 0))

    def nonce_seen(self, address: str, nonce: int) -> bool:
        return (address, nonce) in self.store.orders_with_nonces([(address, nonce)])


def order_row(signed: SignedOrder) -> OrderRow:
    o = signed.order
    return OrderRow(
        o.interval_start_s,
        o.participant,
        o.side,
        o.energy_wh,
        o.price_micro_per_kwh,
        o.nonce,
        "0x" + signed.signature.hex(),
    )


def signed_order(row: OrderRow) -> SignedOrder:
    side: Side = "buy" if row.side == "buy" else "sell"
    order = Order(
        row.participant,
        side,
        row.energy_wh,
        row.price_micro_per_kwh,
        row.interval_start_s,
        row.nonce,
    )
    return SignedOrder(order, bytes.fromhex(row.signature.removeprefix("0x")))


@dataclass(frozen=True)
class SettlementPlan:
    """An interval's settlement fixed before anything is sent: what the chain will be given.

    Written to the store (:meth:`Store.freeze_interval`) before the commit transaction, so a
    restart sends, or only records, exactly this plan, never a recomputation against a changed
    escrow. ``root_seq``/``root`` are set on the netting-root path, ``None`` on the direct one.
    """

    roots: tuple[bytes, bytes, bytes]  # orders, result, readings
    clearing_price_micro_per_kwh: int | None
    cleared_energy_wh: int
    settlement: DeliverySettlement
    root_seq: int | None = None
    root: bytes | None = None
    account_count: int = 0

    @property
    def credits_micro(self) -> int:
        return sum(d for d in self.settlement.deltas_micro.values() if d > 0)

    def settlement_hash(self) -> bytes:
        """What the verifiers' attestations bind: the entries, or the root and its totals."""
        if self.root is None:
            return settlement_hash_of_entries(pack_entries(self.settlement.deltas_micro))
        credits = self.credits_micro
        return settlement_hash_of_root(self.root, credits, credits, self.account_count)

    def attestation(self, interval_start_s: int) -> IntervalAttestation:
        return IntervalAttestation(interval_start_s, *self.roots, self.settlement_hash())

    def to_json(self) -> str:
        s = self.settlement
        return json.dumps(
            {
                "roots": ["0x" + r.hex() for r in self.roots],
                "clearing_price_micro_per_kwh": self.clearing_price_micro_per_kwh,
                "cleared_energy_wh": self.cleared_energy_wh,
                "deltas_micro": s.deltas_micro,
                "lines": [dataclasses.astuple(line) for line in s.lines],
                "unsettled_micro": s.unsettled_micro,
                "traded_energy_wh": s.traded_energy_wh,
                "fees_micro": s.fees_micro,
                "root_seq": self.root_seq,
                "root": None if self.root is None else "0x" + self.root.hex(),
                "account_count": self.account_count,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> SettlementPlan:
        raw = json.loads(text)
        settlement = DeliverySettlement(
            {a: int(d) for a, d in raw["deltas_micro"].items()},
            tuple(StatementLine(*line) for line in raw["lines"]),
            {a: int(d) for a, d in raw["unsettled_micro"].items()},
            int(raw["traded_energy_wh"]),
            int(raw["fees_micro"]),
        )
        orders, result, readings = (bytes.fromhex(r[2:]) for r in raw["roots"])
        return cls(
            (orders, result, readings),
            raw["clearing_price_micro_per_kwh"],
            int(raw["cleared_energy_wh"]),
            settlement,
            raw["root_seq"],
            None if raw["root"] is None else bytes.fromhex(raw["root"][2:]),
            int(raw["account_count"]),
        )


class MarketOperator:
    """Runs intervals against one store and one ledger (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        supplier: str,
        attestations: AttestationSource,
        mechanism: str = "uniform",
    ) -> None:
        self.store, self.ledger, self.settings = store, ledger, settings
        self.attestations = attestations  # the verifier quorum that co-signs each settlement
        self.leaf_key = leaf_key_of(store)  # salts every order, trade and reading leaf
        self.supplier = supplier  # the grid supplier's account (see enrol_supplier)
        self.mechanism = mechanism
        self.by_root = settings.settlement_path == "root"
        self.netting = NettingState(store, ledger, settings.claim_period_intervals)
        self.tariffs = Tariffs(
            settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh
        )

    def order_context(self, open_start_s: int | None) -> StoreOrderContext:
        self.netting.refresh_claims()
        return StoreOrderContext(
            self.store, self.ledger, self.settings, open_start_s, self.netting.unclaimed_micro
        )

    def accept_orders(self, batch: Sequence[SignedOrder], open_start_s: int) -> list[Order]:
        """Verify a batch for the open interval, then store it; the first bad order raises."""
        context = self.order_context(open_start_s)
        context.prefetch(s.order.participant for s in batch)
        accepted = []
        for signed in batch:
            order = verify_order(signed, self.ledger.domain, context)
            if order.side == "buy":
                context.reserve(order.participant, order.energy_wh, order.price_micro_per_kwh)
            accepted.append(order)
        self.store.insert_orders([order_row(s) for s in batch])
        return accepted

    def clear_interval(self, start_s: int) -> ClearingResult:
        """Gate closure: clear the interval's stored orders."""
        orders = [signed_order(r).order for r in self.store.orders_in_interval(start_s)]
        return clear(Book.from_orders(orders), self.mechanism, self.settings.grid_fee_micro_per_kwh)

    def deliveries(self, start_s: int) -> dict[str, Delivery]:
        """Metered energy per participant (summed over its meters) for the interval."""
        stored = self.store.readings_in_interval(start_s)
        owners = self.store.meters_by_address({s.reading.meter for s in stored})
        totals: dict[str, list[int]] = {}
        for s in stored:
            slot = totals.setdefault(owners[s.reading.meter].owner, [0, 0])
            slot[0] += s.reading.imported_wh
            slot[1] += s.reading.exported_wh
        return {
            owner: Delivery(imported, exported) for owner, (imported, exported) in totals.items()
        }

    def settle_interval(self, start_s: int, result: ClearingResult) -> IntervalOutcome:
        """Plan the settlement, commit the roots on-chain, settle on-chain, record; claim when due.

        The one way an interval is settled, for the demo, the node and its crash recovery: the
        plan is written to the store first, then each on-chain step is sent only if the chain
        does not hold it yet (its own once-only checks back this up), so nobody is paid twice.
        """
        if self.store.interval_status(start_s) == "settled":
            raise ConflictError(f"interval_start_s: {start_s} is already settled")
        plan = self.plan(start_s, result)
        if self.void_plan(start_s) is not None:  # disputed before a restart: its trades are void
            result = dataclasses.replace(result, trades=Trades.empty())
        on_chain = self.ledger.interval(start_s)
        if on_chain.committed:
            self.check_committed(on_chain, plan.roots)
            commit = TxResult("", 0, 0)
        else:
            price = plan.clearing_price_micro_per_kwh or 0
            commit = self.ledger.commit_interval(
                start_s, *plan.roots, price, plan.cleared_energy_wh
            )
        posted = self.netting.prepare(start_s, plan.settlement.deltas_micro) if plan.root else None
        if posted is not None and posted.root != plan.root:
            raise ConflictError(
                f"interval {start_s}: the netting book gives another root than the plan; "
                "the store's roots and positions disagree"
            )
        try:
            settle = self._settle_on_chain(start_s, plan, on_chain.settled)
        except AttestationRefused:
            # The verifiers disputed it: settle it void (nothing moves, its trades are void) so
            # the intervals after it still settle in commit order (docs/trust-model.md).
            plan, posted = self.voided(start_s, plan)
            # Kept before it is sent, like every plan: a restart settles (or only records) the
            # void, never the disputed original again.
            self.store.set_meta(VOID_PLAN_PREFIX + str(start_s), plan.to_json())
            settle = self._settle_on_chain(start_s, plan, False)
            result = dataclasses.replace(result, trades=Trades.empty())
        positions = None
        if posted is not None:
            positions = self.netting.changed_positions(posted)
            self.ledger.netting.record(posted)
        self.record(start_s, result, plan, (commit, settle), posted, positions)
        if posted is not None:
            self.netting.claim_if_due()
        return IntervalOutcome(
            start_s,
            plan.clearing_price_micro_per_kwh,
            plan.cleared_energy_wh,
            result_trade_lines(result),
            plan.settlement,
            plan.roots,
            commit,
            settle,
        )

    def claim_all(self) -> list[TxResult]:
        """Claim every account's newest netting root now (the end of a demo, a shutdown)."""
        return self.netting.claim_all()

    def plan(self, start_s: int, result: ClearingResult) -> SettlementPlan:
        """The interval's frozen plan: its void plan once disputed, else the stored one, else
        computed now and stored."""
        void = self.void_plan(start_s)
        if void is not None:
            return void
        stored = self.store.settlement_plan(start_s)
        if stored is not None:
            return SettlementPlan.from_json(stored.body)
        settlement = self.settlement_of(start_s, result_trade_lines(result))
        plan = SettlementPlan(
            self.roots_of(start_s, result),
            result.clearing_price_micro_per_kwh,
            result.cleared_energy_wh,
            settlement,
        )
        if self.by_root:
            posted = self.netting.prepare(start_s, settlement.deltas_micro)
            plan = dataclasses.replace(
                plan,
                root_seq=posted.root_seq,
                root=posted.root,
                account_count=len(posted.cumulative_micro),
            )
        orders_hex, result_hex, readings_hex = ("0x" + r.hex() for r in plan.roots)
        frozen = IntervalRow(
            interval_start_s=start_s,
            status="committed",
            clearing_price_micro_per_kwh=plan.clearing_price_micro_per_kwh,
            cleared_energy_wh=plan.cleared_energy_wh,
            orders_root=orders_hex,
            result_root=result_hex,
            readings_root=readings_hex,
        )
        kept = self.store.freeze_interval(
            frozen, SettlementPlanRow(start_s, plan.root_seq, plan.to_json())
        )
        return SettlementPlan.from_json(kept.body)

    def void_plan(self, start_s: int) -> SettlementPlan | None:
        """The plan ``start_s`` settles with since its verifiers disputed it (None: not void)."""
        text = self.store.meta(VOID_PLAN_PREFIX + str(start_s))
        return None if text is None else SettlementPlan.from_json(text)

    def planned_attestation(self, start_s: int) -> IntervalAttestation | None:
        """What ``start_s`` waits to have co-signed: its void once disputed, else its plan
        (None: not planned yet)."""
        void = self.void_plan(start_s)
        if void is not None:
            return void.attestation(start_s)
        stored = self.store.settlement_plan(start_s)
        if stored is None:
            return None
        return SettlementPlan.from_json(stored.body).attestation(start_s)

    def attestation_of(self, start_s: int) -> IntervalAttestation:
        """What the verifiers co-sign for ``start_s``: its planned roots and settlement hash."""
        stored = self.store.settlement_plan(start_s)
        if stored is None:
            raise NotFoundError(f"interval {start_s} has no settlement plan yet")
        return SettlementPlan.from_json(stored.body).attestation(start_s)

    def _attestations(self, start_s: int, plan: SettlementPlan) -> list[bytes]:
        """The verifiers' signatures over the plan; AttestationRefused below the quorum."""
        signatures = self.attestations.collect(plan.attestation(start_s))
        need = self.ledger.verifier_threshold()
        if len(signatures) < need:
            raise AttestationRefused(
                f"interval {start_s}: {len(signatures)} of {need} verifiers attested"
            )
        return signatures

    def voided(
        self, start_s: int, plan: SettlementPlan
    ) -> tuple[SettlementPlan, NettingRoot | None]:
        """The plan that settles ``start_s`` with nothing moving (the verifiers disputed it)."""
        empty = DeliverySettlement({}, (), {}, 0, 0)
        if plan.root is None:
            return dataclasses.replace(plan, settlement=empty), None
        posted = self.netting.prepare(start_s, {})
        void = dataclasses.replace(
            plan, settlement=empty, root=posted.root, account_count=len(posted.cumulative_micro)
        )
        return void, posted

    def _settle_on_chain(self, start_s: int, plan: SettlementPlan, settled: bool) -> TxResult:
        """Send the planned settlement with the verifiers' attestations, or, if the chain has
        it already, check that it is the plan."""
        deltas = plan.settlement.deltas_micro
        if plan.root is None:
            if settled:
                return self._direct_settlement_on_chain(start_s, plan)
            signatures = self._attestations(start_s, plan)
            return self.ledger.settle_interval(start_s, deltas, signatures)
        assert plan.root_seq is not None
        if settled:
            held = self.ledger.settlement_root(plan.root_seq)
            if held != plan.root:
                raise ConflictError(
                    f"interval {start_s}: the chain holds netting root 0x{held.hex()} as number "
                    f"{plan.root_seq}, the plan 0x{plan.root.hex()}; resolve by hand"
                )
            return TxResult("", 0, 0)
        signatures = self._attestations(start_s, plan)
        credits = plan.credits_micro
        return self.ledger.settle_interval_root(
            start_s, plan.root, credits, credits, plan.account_count, signatures
        )

    def _direct_settlement_on_chain(self, start_s: int, plan: SettlementPlan) -> TxResult:
        """The direct batch the chain executed for ``start_s``, checked against the plan."""
        for event in reversed(self.ledger.events()):
            if event.name == "IntervalSettled" and event.args.get("intervalStartS") == start_s:
                if event.args.get("entriesHash") != "0x" + plan.settlement_hash().hex():
                    raise ConflictError(
                        f"interval {start_s}: settled on-chain with entries "
                        f"{event.args.get('entriesHash')}, not the plan's; resolve by hand"
                    )
                return TxResult(event.tx_hash, 0, event.block_number)
        raise ConflictError(f"interval {start_s}: settled on-chain but no IntervalSettled found")

    def settlement_of(self, start_s: int, lines: Sequence[TradeLine]) -> DeliverySettlement:
        """Trades and metered delivery, imbalance charges capped to the spendable escrow
        (claimed escrow plus the unclaimed netting-root net)."""
        trades = settled_trades(lines)
        deliveries = self.deliveries(start_s)
        involved = set(deliveries) | {t.buyer for t in trades} | {t.seller for t in trades}
        self.netting.refresh_claims()
        views = self.ledger.accounts_view(sorted(involved))
        escrow = {
            account: view.escrow_micro + self.netting.unclaimed_micro(account)
            for account, view in views.items()
        }
        return settle_with_delivery(
            trades,
            deliveries,
            self.tariffs,
            grid_operator=self.ledger.deployment.grid_operator,
            supplier=self.supplier,
            escrow_micro=escrow,
        )

    def roots_of(self, start_s: int, result: ClearingResult) -> tuple[bytes, bytes, bytes]:
        readings = [s.reading for s in self.store.readings_in_interval(start_s)]
        key = self.leaf_key
        return (
            orders_root(result.book.orders or (), key),
            result_root(result, key),
            readings_root(readings, key),
        )

    @staticmethod
    def check_committed(on_chain: OnChainInterval, roots: tuple[bytes, bytes, bytes]) -> None:
        committed = (on_chain.orders_root, on_chain.result_root, on_chain.readings_root)
        if committed != roots:
            raise ConflictError(
                f"interval_start_s: {on_chain.interval_start_s} was committed on-chain with other "
                "roots than the store now gives: the store changed after the commit"
            )

    def record(
        self,
        start_s: int,
        result: ClearingResult,
        plan: SettlementPlan,
        txs: tuple[TxResult, TxResult],
        posted: NettingRoot | None,
        positions: dict[str, int] | None,
    ) -> None:
        commit, settle = txs
        orders_hex, result_hex, readings_hex = ("0x" + r.hex() for r in plan.roots)
        settlement = plan.settlement
        row = IntervalRow(
            interval_start_s=start_s,
            status="settled",
            clearing_price_micro_per_kwh=plan.clearing_price_micro_per_kwh,
            cleared_energy_wh=plan.cleared_energy_wh,
            orders_root=orders_hex,
            result_root=result_hex,
            readings_root=readings_hex,
            commit_tx=commit.tx_hash or None,
            settle_tx=settle.tx_hash or None,
            gas_used=commit.gas_used + settle.gas_used,
        )
        self.store.save_trades(start_s, [trade_row(line) for line in result_trade_lines(result)])
        lines = [
            StatementLineRow(
                start_s,
                x.participant,
                x.kind,
                x.energy_wh,
                x.price_micro_per_kwh,
                x.amount_micro,
                x.counterparty,
            )
            for x in settlement.lines
        ]
        root_row = None
        if posted is not None:
            root_row = NettingRootRow(
                posted.root_seq,
                start_s,
                "0x" + posted.root.hex(),
                plan.credits_micro,
                len(posted.cumulative_micro),
                settle.tx_hash or None,
            )
        self.store.record_settlement(row, settlement.deltas_micro, lines, root_row, positions)


def result_trade_lines(result: ClearingResult) -> tuple[TradeLine, ...]:
    return tuple(result_lines(result)) if result.book.orders is not None else ()


def trade_row(line: TradeLine) -> TradeRow:
    fee_micro = trade_amount_micro(line.energy_wh, line.fee_micro_per_kwh)
    return TradeRow(
        line.interval_start_s,
        line.buyer,
        line.seller,
        line.energy_wh,
        line.price_micro_per_kwh,
        fee_micro,
        buy_nonce=line.buy_nonce,
        sell_nonce=line.sell_nonce,
        fee_micro_per_kwh=line.fee_micro_per_kwh,
    )


def enrol_supplier(ledger: Ledger, store: Store, deposit_micro: int) -> str:
    """Register the grid supplier (buyer and seller of last resort) with escrow to pay feed-in."""
    supplier = supplier_address()
    if ledger.participant(supplier).role == Role.NONE:
        ledger.add_participant(supplier, Role.OPERATOR, 0)
        ledger.deposit_for(supplier, deposit_micro)
    store.add_participant(Participant(supplier, "supplier", 0, "grid supplier"))
    return supplier


def supplier_address() -> str:
    return address_of(key_from_seed(SUPPLIER_SEED))


def save_deployment(store: Store, ledger: Ledger) -> None:
    """Remember which chain and contracts this store's intervals were settled on."""
    store.set_meta("chain", ledger.chain)
    store.set_meta("deployment", ledger.deployment.to_json())


def load_deployment(store: Store) -> tuple[str, Deployment]:
    """The chain URL and deployment saved by :func:`save_deployment`."""
    chain, text = store.meta("chain"), store.meta("deployment")
    if chain is None or text is None:
        raise NotFoundError(
            "this database records no chain deployment: run `gridledger demo` or a node on it first"
        )
    return chain, Deployment.from_json(text)
