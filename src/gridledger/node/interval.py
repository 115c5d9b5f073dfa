"""The interval pipeline an operator runs: accept orders, clear at gate closure, settle on-chain.

This is an edge module: it joins the pure core (market, metering roots, settlement) to the store
and the chain. The demo (``gridledger.sim.day``) and the node both drive it, so there is one way
to run an interval. Each step is idempotent against the chain: a step that already happened
on-chain (for instance before a crash) is recorded, not sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gridledger.config import Settings
from gridledger.eip712 import address_of, key_from_seed
from gridledger.errors import ConflictError, NotFoundError
from gridledger.ledger import AccountView, Deployment, Ledger, OnChainInterval, Role, TxResult
from gridledger.market import (
    Book,
    ClearingResult,
    Order,
    ParticipantStatus,
    Side,
    SignedOrder,
    TradeLine,
    clear,
    escrow_required_micro,
    orders_root,
    result_lines,
    result_root,
    verify_order,
)
from gridledger.metering import readings_root
from gridledger.privacy.keys import leaf_key_of
from gridledger.settlement import (
    Delivery,
    DeliverySettlement,
    Tariffs,
    settle_with_delivery,
    trade_amount_micro,
)
from gridledger.settlement.statements import settled_trades
from gridledger.store import IntervalRow, OrderRow, Participant, StatementLineRow, Store, TradeRow

SUPPLIER_SEED = "grid-supplier"
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

    def __init__(self, store: Store, ledger: Ledger, settings: Settings, open_start_s: int | None):
        self.store, self.ledger = store, ledger
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
        escrow = max(account.escrow_micro - account.pending_withdrawal_micro, 0)
        return ParticipantStatus(account.active, escrow, self.reserved_micro.get(address, 0))

    def nonce_seen(self, address: str, nonce: int) -> bool:
        return self.store.order_nonce_used(address, nonce)


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


class MarketOperator:
    """Runs intervals against one store and one ledger (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        supplier: str,
        mechanism: str = "uniform",
    ) -> None:
        self.store, self.ledger, self.settings = store, ledger, settings
        self.leaf_key = leaf_key_of(store)  # salts every order, trade and reading leaf
        self.supplier = supplier  # the grid supplier's account (see enrol_supplier)
        self.mechanism = mechanism
        self.tariffs = Tariffs(
            settings.import_price_micro_per_kwh, settings.feed_in_price_micro_per_kwh
        )

    def order_context(self, open_start_s: int | None) -> StoreOrderContext:
        return StoreOrderContext(self.store, self.ledger, self.settings, open_start_s)

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
        """Settle trades and metered delivery, commit the roots on-chain, then settle on-chain.

        Safe to call again after a crash: a commit or settlement the chain already holds is not
        sent twice (the chain's own once-only checks back this up), so nobody is paid twice.
        """
        if self.store.interval_status(start_s) == "settled":
            raise ConflictError(f"interval_start_s: {start_s} is already settled")
        lines = result_lines(result) if result.book.orders is not None else ()
        on_chain = self.ledger.interval(start_s)
        settlement = self.settlement_of(start_s, lines, cap_to_escrow=not on_chain.settled)
        roots = self.roots_of(start_s, result)
        price = result.clearing_price_micro_per_kwh
        if on_chain.committed:
            self.check_committed(on_chain, roots)
            commit = TxResult("", 0, 0)
        else:
            commit = self.ledger.commit_interval(
                start_s, *roots, price or 0, result.cleared_energy_wh
            )
        if on_chain.settled:
            settle = TxResult("", 0, 0)
        else:
            settle = self.ledger.settle_interval(start_s, settlement.deltas_micro)
        self.record(start_s, result, roots, (commit, settle), lines, settlement)
        return IntervalOutcome(
            start_s,
            price,
            result.cleared_energy_wh,
            tuple(lines),
            settlement,
            roots,
            commit,
            settle,
        )

    def settlement_of(
        self, start_s: int, lines: Sequence[TradeLine], cap_to_escrow: bool
    ) -> DeliverySettlement:
        trades = settled_trades(lines)
        deliveries = self.deliveries(start_s)
        involved = set(deliveries) | {t.buyer for t in trades} | {t.seller for t in trades}
        escrow = None
        if cap_to_escrow:
            views = self.ledger.accounts_view(sorted(involved))
            escrow = {account: view.escrow_micro for account, view in views.items()}
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
        roots: tuple[bytes, bytes, bytes],
        txs: tuple[TxResult, TxResult],
        lines: Sequence[TradeLine],
        settlement: DeliverySettlement,
    ) -> None:
        commit, settle = txs
        orders_hex, result_hex, readings_hex = ("0x" + r.hex() for r in roots)
        self.store.save_interval(
            IntervalRow(
                interval_start_s=start_s,
                status="committed",
                clearing_price_micro_per_kwh=result.clearing_price_micro_per_kwh,
                cleared_energy_wh=result.cleared_energy_wh,
                orders_root=orders_hex,
                result_root=result_hex,
                readings_root=readings_hex,
                commit_tx=commit.tx_hash,
                gas_used=commit.gas_used + settle.gas_used,
            )
        )
        self.store.save_trades(start_s, [trade_row(line) for line in lines])
        self.store.save_statement_lines(
            [
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
        )
        self.store.save_settlement(start_s, settlement.deltas_micro, settle.tx_hash)


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
