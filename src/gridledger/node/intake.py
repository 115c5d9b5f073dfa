"""Order intake for the live node: every check of :func:`verify_order`, without a chain call
and a book scan per order.

Per order the node used to read the claims mined since its last look, the participant's escrow
(one chain call each) and the whole interval's book twice (duplicates and reservations). Here:

* the open interval's book is scanned once, when its first order arrives; from then on the
  intake keeps its signatures (duplicates) and buy reservations as it stores each order;
* each account's chain view (role, active, escrow, pending withdrawal) is read once, in
  batches, together with the claims applied to it at that moment. Its spendable escrow is
  ``escrow + cumulative root-path net - applied``: a claim moves the same amount from
  ``cumulative - applied`` into ``escrow``, so the pair stays right across claims while the
  netting book (in memory) adds every new root;
* what can change an account on-chain without the node (a deposit, a withdrawal request, a
  suspension, an exit) is seen in the chain's events, read at most every ``WATCH_S`` wall
  seconds; those accounts are read again. The node's own deposits call :meth:`forget`.

An order is therefore checked against the chain as it was at most ``WATCH_S`` ago
(``WATCH_MAX_S`` while the node's chain client is busy with a settlement, which the intake does
not wait for), which is what a per-order read gives anyway a moment later: an order and a
withdrawal request can always cross. The reservations within the interval are exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from gridledger.config import Settings
from gridledger.errors import GridledgerError
from gridledger.ledger import AccountView, Ledger, Role
from gridledger.market import ParticipantStatus, SignedOrder, escrow_required_micro, verify_order
from gridledger.node.interval import MarketOperator, order_row
from gridledger.node.netting import NettingState
from gridledger.store import OrderRow, Store

log = logging.getLogger(__name__)

WATCH_S = 0.25  # at most this long (wall seconds) between two looks at the chain's new events
WATCH_MAX_S = 2.0  # ... or this long while the chain client is busy (a settlement)
FETCH_BATCH = 1_000  # accounts read in one accountsView call
_MAX_ENERGY_WH = 10_000_000  # as StoreOrderContext: beyond any community member
_MAX_PRICE_MICRO_PER_KWH = 10_000_000
# Events that change an account's role, status, escrow or pending withdrawal behind the node.
ACCOUNT_EVENTS = frozenset(
    {
        "Deposited",
        "WithdrawalRequested",
        "Withdrawn",
        "ExitWithdrawn",
        "ParticipantAdded",
        "ParticipantSuspended",
        "ParticipantReinstated",
        "AnomalyConfirmed",
    }
)


class AccountCache:
    """Chain views of accounts, each with the claims applied when it was read (see module)."""

    def __init__(
        self, store: Store, ledger: Ledger, netting: NettingState, chain_lock: threading.RLock
    ) -> None:
        self.store, self.ledger, self.netting = store, ledger, netting
        self.chain_lock = chain_lock  # held for every chain read, never for anything else
        self.views: dict[str, tuple[AccountView, int]] = {}
        self.watched_block = ledger.block_number  # events after this block are not seen yet
        self.watched_at = time.monotonic()
        self._watching = threading.Lock()  # sign-ins (API threads) and orders both watch
        self._fetching = threading.Lock()

    def forget(self, address: str) -> None:
        self.views.pop(address, None)

    def watch(self) -> None:
        """Forget the accounts the chain's new events touched (at most every WATCH_S)."""
        since_s = time.monotonic() - self.watched_at
        if since_s < WATCH_S or not self._watching.acquire(blocking=False):
            return  # looked just now, or another thread is looking
        try:
            # A chain step in progress (a settlement) is not waited for, up to WATCH_MAX_S.
            if self.chain_lock.acquire(blocking=since_s >= WATCH_MAX_S):
                try:
                    self._forget_changed()
                finally:
                    self.chain_lock.release()
        finally:
            self._watching.release()

    def _forget_changed(self) -> None:
        head = self.ledger.block_number
        # Nothing read yet, nothing to forget: an enrolment's many events are not decoded.
        fresh = head > self.watched_block and self.views
        events = self.ledger.events(self.watched_block + 1, head) if fresh else []
        for event in events:
            if event.name in ACCOUNT_EVENTS:
                for key in ("account", "subject", "suspended"):
                    self.forget(str(event.args.get(key, "")))
        self.watched_block = max(head, self.watched_block)
        self.watched_at = time.monotonic()

    def spendable(self, address: str) -> tuple[AccountView, int]:
        """The view of ``address`` and its spendable escrow (claimed + unclaimed - pending)."""
        if address not in self.views:
            self._fetch(address)
        view, applied_micro = self.views[address]
        unclaimed = self.netting.book.cumulative_micro(address) - applied_micro
        return view, view.escrow_micro + unclaimed - view.pending_withdrawal_micro

    def warm(self) -> None:
        """Read every enrolled participant's view now (a node's start), not with the first
        orders of a busy interval."""
        try:
            with self.chain_lock:
                head = self.ledger.block_number
            first = next(iter(self.store.participants()), None)
            if first is not None:
                self.spendable(first.address)  # reads every participant
            with self._watching:
                # The views are newer than every event up to ``head`` (the enrolment's): the
                # next look decodes only later events, and forgets nobody it need not.
                self.watched_block = max(self.watched_block, head)
        except GridledgerError as exc:  # the first order reads them instead
            log.warning("intake: accounts not read at start: %s", exc)

    def _fetch(self, address: str) -> None:
        with self._fetching:  # many sign-ins at once: one of them reads everyone
            if address not in self.views:
                self._fetch_unread(address)

    def _fetch_unread(self, address: str) -> None:
        wanted = [address, *self._unread_participants(address)]
        for first in range(0, len(wanted), FETCH_BATCH):
            with self.chain_lock:
                # The claims mined up to now first: each view and its applied claims are of
                # one moment (the lock keeps the node's own claims out of between).
                self.netting.refresh_claims()
                applied = self.netting.applied_micro
                views = self.ledger.accounts_view(wanted[first : first + FETCH_BATCH])
            for account, view in views.items():
                self.views[account] = (view, applied.get(account, 0))

    def _unread_participants(self, address: str) -> Iterable[str]:
        # Read every enrolled participant with the first miss: one call per FETCH_BATCH
        # accounts instead of one per household's first order.
        return [
            p.address
            for p in self.store.participants()
            if p.address != address and p.address not in self.views
        ]


class PendingOrder:
    """A verified order until its transaction commits (``stored`` then holds its row)."""

    def __init__(self, row: OrderRow, stored: bool = False) -> None:
        self.row = row
        self.committed = threading.Event()
        self.error: Exception | None = None
        if stored:
            self.committed.set()


class IntervalBook:
    """The open interval's orders as intake needs them: signatures, nonces, reservations
    (stored ones and verified ones whose transaction is still to commit)."""

    def __init__(self, store: Store, start_s: int, grid_fee_micro_per_kwh: int) -> None:
        self.start_s = start_s
        self.grid_fee_micro_per_kwh = grid_fee_micro_per_kwh
        self.by_signature: dict[str, PendingOrder] = {}
        self.nonces: set[tuple[str, int]] = set()
        self.reserved_micro: dict[str, int] = {}
        for row in store.orders_in_interval(start_s):
            self.add(PendingOrder(row, stored=True))

    def add(self, order: PendingOrder) -> None:
        row = order.row
        self.by_signature[row.signature] = order
        self.nonces.add((row.participant, row.nonce))
        if row.side == "buy":
            amount = escrow_required_micro(
                row.energy_wh, row.price_micro_per_kwh, self.grid_fee_micro_per_kwh
            )
            self.reserved_micro[row.participant] = (
                self.reserved_micro.get(row.participant, 0) + amount
            )


class IntakeContext:
    """The :class:`~gridledger.market.OrderContext` of one order, from the caches."""

    def __init__(self, intake: OrderIntake, book: IntervalBook, nonce_stored: bool) -> None:
        self.intake, self.book = intake, book
        self.nonce_stored = nonce_stored  # read before the book lock was taken
        self.open_interval_start_s: int | None = book.start_s
        self.max_energy_wh = _MAX_ENERGY_WH
        self.max_price_micro_per_kwh = _MAX_PRICE_MICRO_PER_KWH
        self.grid_fee_micro_per_kwh = book.grid_fee_micro_per_kwh

    def participant(self, address: str) -> ParticipantStatus | None:
        view, spendable = self.intake.accounts.spendable(address)
        if view.role == Role.NONE:
            return None
        reserved = self.book.reserved_micro.get(address, 0)
        return ParticipantStatus(view.active, max(spendable, 0), reserved)

    def nonce_seen(self, address: str, nonce: int) -> bool:
        # An earlier interval's order with this nonce was read from the store before the lock
        # (those books are closed); this interval's orders, stored or queued, are in the book.
        return self.nonce_stored or (address, nonce) in self.book.nonces


class OrderIntake:
    """Verifies orders of the open interval under the book lock, then stores them with group
    commit: the orders verified while one transaction commits go in the next, together, and
    each is acknowledged only once its own transaction has committed (:meth:`stored`). The
    gate closure :meth:`flush`-es under the book lock, so an acknowledged order is always in
    the book it was acknowledged for."""

    def __init__(
        self, operator: MarketOperator, settings: Settings, chain_lock: threading.RLock
    ) -> None:
        self.store, self.ledger, self.settings = operator.store, operator.ledger, settings
        with chain_lock:
            self.accounts = AccountCache(self.store, self.ledger, operator.netting, chain_lock)
        self.book: IntervalBook | None = None
        self._queued: list[PendingOrder] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()  # one insert transaction at a time
        self._stale = False  # a transaction failed: its orders are not stored

    def forget(self, address: str) -> None:
        """The node changed ``address`` on-chain (a deposit): read it again at its next order."""
        self.accounts.forget(address)

    def duplicate_of(
        self, signed: SignedOrder, open_s: int, stored: dict[tuple[str, int], OrderRow]
    ) -> PendingOrder | None:
        """This very signed order, accepted before (resent), or None. Under the book lock;
        ``stored`` is :meth:`stored_with_nonces` of its batch."""
        wanted = order_row(signed)
        if signed.order.interval_start_s == open_s:
            known = self._book(open_s).by_signature.get(wanted.signature)
        else:  # an earlier interval's order sent again (or late): its nonce's stored row
            row = stored.get((wanted.participant, wanted.nonce))
            known = None if row is None else PendingOrder(row, stored=True)
        return known if known is not None and _same_order(known.row, wanted) else None

    def stored_with_nonces(self, batch: Sequence[SignedOrder]) -> dict[tuple[str, int], OrderRow]:
        """The stored orders using the batch's (participant, nonce) pairs: asked before the
        book lock, one read for the batch."""
        return self.store.orders_with_nonces((s.order.participant, s.order.nonce) for s in batch)

    def accept(self, signed: SignedOrder, open_s: int, nonce_stored: bool) -> PendingOrder:
        """Verify ``signed`` for the open interval and queue it for storing; OrderRejected when
        it may not enter. Under the book lock; then :meth:`stored` (outside it)."""
        book = self._book(open_s)
        self.accounts.watch()
        verify_order(signed, self.ledger.domain, IntakeContext(self, book, nonce_stored))
        order = PendingOrder(order_row(signed))
        book.add(order)
        with self._queue_lock:
            self._queued.append(order)
        return order

    def stored(self, order: PendingOrder) -> OrderRow:
        """The order's stored row, once its transaction has committed."""
        while not order.committed.is_set():
            self.flush()
        if order.error is not None:
            raise order.error
        return order.row

    def flush(self) -> None:
        """Store every queued order in one transaction (after the one in progress, if any)."""
        with self._commit_lock:
            with self._queue_lock:
                batch, self._queued = self._queued, []
            if not batch:
                return
            try:
                rows = self.store.insert_orders([o.row for o in batch])
            except Exception:
                # One bad order (a nonce stored meanwhile) must not fail the others with it:
                # each is tried alone, and a failure answers its own request only.
                for order in batch:
                    self._insert_alone(order)
                return
            for order, row in zip(batch, rows, strict=True):
                order.row = row
                order.committed.set()

    def _insert_alone(self, order: PendingOrder) -> None:
        try:
            (order.row,) = self.store.insert_orders([order.row])
        except Exception as exc:  # its request answers with it
            order.error = exc
            self._stale = True  # the book holds its reservation: read the book again
        order.committed.set()

    def _book(self, open_s: int) -> IntervalBook:
        if self.book is None or self.book.start_s != open_s or self._stale:
            self.flush()  # the previous interval's last orders (the gate flushed them already)
            # No transaction in flight meanwhile: the book is the store plus the queue.
            with self._commit_lock, self._queue_lock:
                grid_fee = self.settings.grid_fee_micro_per_kwh
                self.book = IntervalBook(self.store, open_s, grid_fee)
                for order in self._queued:
                    self.book.add(order)
                self._stale = False
        return self.book


def _same_order(row: OrderRow, wanted: OrderRow) -> bool:
    return all(
        getattr(row, name) == getattr(wanted, name) for name in row.__slots__ if name != "id"
    )
