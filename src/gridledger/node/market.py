"""The live market a node runs: the open interval, order and reading intake, registration.

One object shared by the API threads and the scheduler thread. Three locks, always taken in
this order and with ``chain_lock`` innermost, keep the pieces consistent:

* ``book_lock``: accepting an order and closing its interval's gate never interleave, so an
  acknowledged order is always in the book it was acknowledged for;
* ``readings_lock``: a reading is either stored before its interval is closed for settlement,
  or refused as ``late``; an anchored root therefore covers every stored reading. It is held
  only to close the interval, not while it settles, so later intervals' readings keep flowing;
* ``chain_lock``: the ledger client (one nonce, one connection) is used by one thread at a time.

Nothing waits for another party while holding a lock: a settlement whose verifiers have not all
attested yet (remote verifiers need this node's API to re-execute) gives the locks back and is
tried again on a later tick (:meth:`LiveMarket.settle_due`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gridledger import telemetry
from gridledger.config import Settings
from gridledger.errors import (
    AttestationPending,
    AuthorizationError,
    ConflictError,
    GridledgerError,
    NotFoundError,
    ValidationError,
)
from gridledger.ledger import Ledger, Role
from gridledger.market import Book, ClearingResult, SignedOrder, clear
from gridledger.metering import Gateway, Outcome, SignedReading, ingest_json
from gridledger.node.clock import MarketClock, interval_start_s
from gridledger.node.events import EventHub
from gridledger.node.intake import OrderIntake, PendingOrder
from gridledger.node.interval import MarketOperator, signed_order
from gridledger.node.meta import NodeMeta
from gridledger.store import Meter, OrderRow, Participant, Store
from gridledger.verifier.faults import inflated
from gridledger.verifier.panel import AttestationSource
from gridledger.verifier.remote import known_verifier_set

# API roles: what a signed-in address may do. Registry roles map onto them; a member of the
# Registry's verifier set signs in as a verifier.
PARTICIPANT, OPERATOR, GRID_OPERATOR, AUDITOR, VERIFIER = (
    "participant",
    "operator",
    "grid_operator",
    "auditor",
    "verifier",
)
PENDING_RETRY_S = 1.0  # a settlement waiting for its quorum re-reads the chain this often

_API_ROLE = {
    Role.PROSUMER: PARTICIPANT,
    Role.CONSUMER: PARTICIPANT,
    Role.OPERATOR: OPERATOR,
    Role.GRID_OPERATOR: GRID_OPERATOR,
    Role.AUDITOR: AUDITOR,
}
REGISTRY_ROLES = {"prosumer": Role.PROSUMER, "consumer": Role.CONSUMER, "auditor": Role.AUDITOR}


class NodeOperator(MarketOperator):
    """The interval pipeline, with cancelled orders left out of the book at gate closure."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        meta: NodeMeta,
        supplier: str,
        attestations: AttestationSource,
    ) -> None:
        super().__init__(store, ledger, settings, supplier, attestations)
        self.meta = meta

    def live_orders(self, start_s: int) -> list[OrderRow]:
        cancelled = self.meta.cancelled_in_interval(start_s)
        return [r for r in self.store.orders_in_interval(start_s) if r.id not in cancelled]

    def clear_interval(self, start_s: int) -> ClearingResult:
        orders = [signed_order(r).order for r in self.live_orders(start_s)]
        return clear(Book.from_orders(orders), self.mechanism, self.settings.grid_fee_micro_per_kwh)


class TamperingNodeOperator(NodeOperator):
    """TESTS ONLY (``test_operator_tamper_traded_interval``): a node operator that inflates one
    trade of the N-th interval with trades, for the verifier end-to-end test to see disputed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tamper_nth = self.settings.test_operator_tamper_traded_interval
        self.traded: list[int] = []  # the intervals with trades, as their gates closed

    def clear_interval(self, start_s: int) -> ClearingResult:
        result = super().clear_interval(start_s)
        newest = self.traded[-1] if self.traded else -1
        if len(result.trades) and start_s > newest and len(self.traded) < self.tamper_nth:
            self.traded.append(start_s)
        if len(self.traded) == self.tamper_nth and start_s == self.traded[-1]:
            return inflated(result)
        return result


def _operator_class(settings: Settings) -> type[NodeOperator]:
    return TamperingNodeOperator if settings.test_operator_tamper_traded_interval else NodeOperator


class NodeGateway(Gateway):
    """The metering gateway on the market clock; refuses readings of intervals already settled."""

    def __init__(self, market: LiveMarket) -> None:
        super().__init__(market.store, market.ledger.domain, clock=market.clock.now_s)
        self.market = market

    def ingest(self, batch: Sequence[SignedReading]) -> list[Outcome]:
        now_s = self.clock()
        verdicts = self.verify(batch, now_s)  # signatures outside the lock: settlement never waits
        with self.market.readings_lock:
            settled_before_s = self.market.readings_closed_before_s
            late = [s.reading.interval_start_s < settled_before_s for s in batch]
            fresh = [
                (s, v) for s, v, is_late in zip(batch, verdicts, late, strict=True) if not is_late
            ]
            stored = iter(self.store_verified([s for s, _ in fresh], [v for _, v in fresh], now_s))
        outcomes = [
            _late(s, settled_before_s) if is_late else next(stored)
            for s, is_late in zip(batch, late, strict=True)
        ]
        accepted = sum(o.status == "accepted" for o in outcomes)
        if accepted:
            self.market.hub.publish("readings", {"accepted": accepted})
        return outcomes


def _late(signed: SignedReading, settled_before_s: int) -> Outcome:
    r = signed.reading
    reason = (
        f"interval {r.interval_start_s} is closed for settlement "
        f"(every interval before {settled_before_s} is)"
    )
    return Outcome(r.meter, r.sequence, "rejected", "late", reason)


@dataclass(frozen=True)
class OrderReceipt:
    row: OrderRow
    duplicate: bool  # the same signed order was already stored: acknowledged once


class LiveMarket:
    """Everything a running node shares between the API and the scheduler."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        clock: MarketClock,
        meta: NodeMeta,
        first_interval_start_s: int,
        supplier: str,
        attestations: AttestationSource,
    ) -> None:
        self.store, self.ledger, self.settings = store, ledger, settings
        self.clock, self.meta = clock, meta
        self.length_s = settings.interval_length_s
        operator_class = _operator_class(settings)
        self.operator = operator_class(store, ledger, settings, meta, supplier, attestations)
        self.hub = EventHub()
        self.book_lock = threading.Lock()
        self.readings_lock = threading.Lock()
        self.chain_lock = threading.RLock()
        self.next_gate_s = meta.get_int("next_gate_s") or first_interval_start_s
        self.next_settle_s = meta.get_int("next_settle_s") or first_interval_start_s
        self.readings_closed_before_s = self.next_settle_s  # earlier intervals' are late
        self._pending: tuple[int, float] | None = None  # (interval, monotonic s of the try)
        self.gateway = NodeGateway(self)
        self.intake = OrderIntake(self.operator, settings, self.chain_lock)
        self.last_power_flow: dict[str, Any] | None = None

    # -- the clock -----------------------------------------------------------------------
    def open_interval_start_s(self) -> int:
        """The interval taking orders: the next one to start, never one whose gate closed."""
        by_clock = interval_start_s(self.clock.now(), self.length_s) + self.length_s
        return max(by_clock, self.next_gate_s)

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        open_s = self.open_interval_start_s()
        return {
            "market_time_s": int(now),
            "speed": self.clock.speed,
            "interval_length_s": self.length_s,
            "open_interval_start_s": open_s,
            "gate_closure_in_s": round(self.clock.wall_seconds_until(open_s), 3),
            "gate_closure_in_market_s": max(open_s - int(now), 0),
            "next_settlement_interval_start_s": self.next_settle_s,
            "settle_grace_s": self.settings.settle_grace_s,
            "import_price_micro_per_kwh": self.settings.import_price_micro_per_kwh,
            "feed_in_price_micro_per_kwh": self.settings.feed_in_price_micro_per_kwh,
            "grid_fee_micro_per_kwh": self.settings.grid_fee_micro_per_kwh,
        }

    # -- settlement ----------------------------------------------------------------------
    def settle_due(self, start_s: int) -> bool:
        """Settle ``start_s`` (once), or False while its verifiers' quorum is still pending.

        The interval is closed to readings first (under the readings lock, a moment): from then
        on the store's readings of ``start_s`` are one fixed set, and the plan, the readings root
        and the settlement are computed without the readings lock. A pending quorum releases
        the chain lock, so verifiers can sign in and fetch the interval meanwhile.
        """
        if self._still_pending(start_s):
            return False
        self._close_readings(start_s)
        with self.chain_lock:
            if self.store.interval_status(start_s) != "settled":
                try:
                    self.operator.settle_interval(start_s, self.operator.clear_interval(start_s))
                except AttestationPending:
                    self._pending = (start_s, time.monotonic())
                    return False
            self.next_settle_s = start_s + self.length_s
            self.meta.put(next_settle_s=self.next_settle_s)
        return True

    def _close_readings(self, start_s: int) -> None:
        with self.readings_lock:
            closed_s = max(self.readings_closed_before_s, start_s + self.length_s)
            self.readings_closed_before_s = closed_s

    def _still_pending(self, start_s: int) -> bool:
        """True while ``start_s``, committed and waiting for its quorum, surely still waits: no
        new signature that could settle (or void) it is in the store. A store read, no lock and
        no chain call, so the scheduler may look often; the full attempt still runs every
        PENDING_RETRY_S (it re-reads the verifier set and threshold from the chain)."""
        if self._pending is None or self._pending[0] != start_s:
            return False  # not tried since this process started: the full path commits first
        if time.monotonic() - self._pending[1] >= PENDING_RETRY_S:
            return False
        ready = getattr(self.operator.attestations, "ready", None)  # NodeVerifiers.ready
        att = self.operator.planned_attestation(start_s)
        return ready is not None and att is not None and not ready(att)

    # -- orders --------------------------------------------------------------------------
    def submit_order(self, signed: SignedOrder, caller: str) -> OrderReceipt:
        """Verify and store one signed order of ``caller`` for the open interval."""
        if signed.order.participant != caller:
            raise AuthorizationError(
                f"participant: the order is for {signed.order.participant}, "
                f"but you signed in as {caller}"
            )
        (outcome,) = self.submit_orders([signed])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def submit_orders(self, batch: Sequence[SignedOrder]) -> list[OrderReceipt | GridledgerError]:
        """Verify and store signed orders for the open interval, one outcome each (a receipt,
        or the error that refused it). Each order authenticates itself (its participant's
        signature), so a batch may come from any relay: one store read, one pass under the book
        lock and one commit serve the whole batch."""
        stored = self.intake.stored_with_nonces(batch)  # a store read: not under the lock
        with self.book_lock:
            open_s = self.open_interval_start_s()
            queued = [self._queue_order(s, open_s, stored) for s in batch]
        # Acknowledged once committed, with the orders verified meanwhile (group commit).
        outcomes = [self._receipt(q) for q in queued]
        accepted = sum(isinstance(o, OrderReceipt) and not o.duplicate for o in outcomes)
        if accepted:
            self.hub.publish("orders", {"interval_start_s": open_s, "count": accepted})
        for outcome in outcomes:
            telemetry.ORDERS.labels(_order_label(outcome)).inc()
        return outcomes

    def _queue_order(
        self, signed: SignedOrder, open_s: int, stored: dict[tuple[str, int], OrderRow]
    ) -> tuple[PendingOrder, bool] | GridledgerError:
        # The intake keeps the open book's signatures and reservations and the accounts'
        # chain views (gridledger.node.intake): no chain call and no book scan per order.
        try:
            duplicate = self.intake.duplicate_of(signed, open_s, stored)
            if duplicate is not None:
                return duplicate, True
            key = (signed.order.participant, signed.order.nonce)
            return self.intake.accept(signed, open_s, key in stored), False
        except GridledgerError as exc:
            return exc

    def _receipt(
        self, queued: tuple[PendingOrder, bool] | GridledgerError
    ) -> OrderReceipt | GridledgerError:
        if isinstance(queued, GridledgerError):
            return queued
        pending, duplicate = queued
        try:
            return OrderReceipt(self.intake.stored(pending), duplicate=duplicate)
        except GridledgerError as exc:
            return exc

    def cancel_order(self, order_id: int, caller: str) -> OrderRow:
        """Withdraw an order of the open interval before its gate closes."""
        with self.book_lock:
            open_s = self.open_interval_start_s()
            row = next((r for r in self.store.orders_in_interval(open_s) if r.id == order_id), None)
            if row is None:
                raise NotFoundError(f"order_id: no order {order_id} in the open interval {open_s}")
            if row.participant != caller:
                raise AuthorizationError(f"order {order_id} belongs to another participant")
            if not self.meta.cancel(order_id, caller, open_s):
                raise ConflictError(f"order {order_id} is already cancelled")
        self.hub.publish("orders", {"interval_start_s": open_s, "cancelled": order_id})
        telemetry.ORDERS.labels("cancelled").inc()
        return row

    def orders_of(self, start_s: int, participant: str | None) -> list[dict[str, Any]]:
        cancelled = self.meta.cancelled_in_interval(start_s)
        return [
            {**_fields(r), "cancelled": r.id in cancelled}
            for r in self.store.orders_in_interval(start_s)
            if participant is None or r.participant == participant
        ]

    def book_depth(self, start_s: int) -> dict[str, Any]:
        """Aggregated volume per price level; sealed until the interval's gate has closed."""
        if start_s >= self.next_gate_s:
            raise ConflictError(
                f"interval_start_s: the book of {start_s} is sealed until its gate closes"
            )
        levels: dict[tuple[str, int], int] = {}
        for row in self.operator.live_orders(start_s):
            key = (row.side, row.price_micro_per_kwh)
            levels[key] = levels.get(key, 0) + row.energy_wh
        side_levels = {
            side: [
                {"price_micro_per_kwh": p, "energy_wh": e}
                for (s, p), e in sorted(
                    levels.items(), key=lambda kv: kv[0][1], reverse=side == "buy"
                )
                if s == side
            ]
            for side in ("buy", "sell")
        }
        return {
            "interval_start_s": start_s,
            "bids": side_levels["buy"],
            "asks": side_levels["sell"],
        }

    # -- readings ------------------------------------------------------------------------
    def ingest_readings(self, payload: Any) -> list[dict[str, Any]]:
        return ingest_json(self.gateway, payload)

    # -- participants, meters, roles -----------------------------------------------------
    def role_of(self, address: str) -> str | None:
        """The API role of ``address``, from the chain's registry (None: not registered)."""
        if address == self.ledger.operator:
            return OPERATOR
        if address in set(known_verifier_set(self.store)):  # the store's copy: no chain lock
            return VERIFIER
        # The intake's cached chain view: thousands of sign-ins read the registry in batches.
        self.intake.accounts.watch()
        view, _ = self.intake.accounts.spendable(address)
        return _API_ROLE.get(view.role)

    def register_participant(
        self, address: str, role: str, grid_node: int, label: str, deposit_micro: int
    ) -> Participant:
        if role not in REGISTRY_ROLES:
            raise ValidationError("role", f"must be one of {sorted(REGISTRY_ROLES)}, got {role!r}")
        with self.chain_lock:
            if self.ledger.participant(address).role == Role.NONE:
                self.ledger.add_participant(address, REGISTRY_ROLES[role], grid_node)
            stored = self.store.add_participant(Participant(address, role, grid_node, label))
            if deposit_micro > 0:
                self.ledger.deposit_for(address, deposit_micro)
        self.intake.forget(address)  # its first order reads its new role and escrow
        self.hub.publish("participant", {"address": address, "role": role})
        return stored

    def register_meter(self, address: str, owner: str, rated_power_w: int) -> Meter:
        self.store.participant(owner)  # NotFoundError before anything is sent
        with self.chain_lock:
            if self.ledger.meter_owner(address) is None:
                self.ledger.register_meter(address, owner)
            elif self.ledger.meter_owner(address) != owner:
                raise ConflictError(f"meter {address} is registered to another owner on chain")
            return self.store.add_meter(Meter(address, owner, rated_power_w))

    def deposit(self, address: str, amount_micro: int) -> int:
        self.store.participant(address)
        with self.chain_lock:
            self.ledger.deposit_for(address, amount_micro)
        self.intake.forget(address)  # the next order sees the deposit
        return self.escrow_micro(address)

    def escrow_micro(self, address: str) -> int:
        """Spendable escrow: claimed escrow plus the netting-root net not claimed yet."""
        with self.chain_lock:
            netting = self.operator.netting
            netting.refresh_claims()
            return self.ledger.escrow_of(address) + netting.unclaimed_micro(address)

    def meters_of(self, owner: str | None) -> list[Meter]:
        return [m for m in self.store.meters() if owner is None or m.owner == owner]


def _fields(row: OrderRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in row.__slots__}


def _order_label(outcome: OrderReceipt | GridledgerError) -> str:
    if isinstance(outcome, GridledgerError):
        return "rejected"
    return "duplicate" if outcome.duplicate else "accepted"
