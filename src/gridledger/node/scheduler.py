"""The market scheduler: gate closure at each interval start, settlement after it ends.

For an interval starting at T: orders are taken during [T - length, T); the gate closes at T
and the book is cleared (price, volume and roots become public); the energy flows during
[T, T + length); at T + length + grace the interval is committed and settled on-chain with the
readings that arrived. Intervals are closed and settled strictly in order, as the Market
contract requires, and the next step of each kind is kept in the database, so a node killed at
any point resumes with the first step not known to be done. A step that reached the chain but
not the database is recognised on-chain and only recorded, never sent twice.
"""

from __future__ import annotations

import logging
import threading

from gridledger import telemetry
from gridledger.errors import GridledgerError, NotFoundError
from gridledger.market import ClearingResult, orders_root, result_root
from gridledger.node.interval import result_trade_lines, trade_row
from gridledger.node.market import LiveMarket
from gridledger.privacy.access_log import DAY_S
from gridledger.privacy.commands import commit_finished_days
from gridledger.store import IntervalRow

log = logging.getLogger(__name__)

TICK_S = 0.2  # at most this long between two looks at the clock (wall seconds)
CLOCK_SAVE_EVERY_S = 0.5
RETRY_AFTER_ERROR_S = 1.0
PENDING_POLL_S = 0.05  # how often a settlement waiting for its verifiers' quorum looks again


class Scheduler:
    """Runs the due steps of a :class:`LiveMarket`; ``tick()`` once, or ``start()`` a thread."""

    def __init__(self, market: LiveMarket) -> None:
        self.market = market
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # -- steps ---------------------------------------------------------------------------
    def tick(self) -> int:
        """Do every step that is due now; returns how many were done."""
        m = self.market
        done = 0
        while m.next_gate_s <= m.clock.now() and not self._stop.is_set():
            with telemetry.stage("clear", m.next_gate_s):
                self.close_gate(m.next_gate_s)
            done += 1
        grace_s = m.length_s + m.settings.settle_grace_s
        while (
            m.next_settle_s < m.next_gate_s
            and m.next_settle_s + grace_s <= m.clock.now()
            and not self._stop.is_set()
        ):
            with telemetry.stage("settle", m.next_settle_s):
                if not self.settle(m.next_settle_s):
                    break  # its verifiers are still attesting: again on the next tick
            done += 1
        return done

    def close_gate(self, start_s: int) -> ClearingResult:
        m = self.market
        with m.book_lock:
            m.intake.flush()  # every order verified before the gate is stored (and acknowledged)
            result = m.operator.clear_interval(start_s)
            existing = _interval_or_none(m, start_s)
            if existing is None or existing.status in ("open", "cleared"):
                self._save_cleared(start_s, result)
            m.next_gate_s = start_s + m.length_s
            m.meta.put(next_gate_s=m.next_gate_s, market_time_s=m.clock.now_s())
        m.hub.publish(
            "gate_closed",
            {
                "interval_start_s": start_s,
                "clearing_price_micro_per_kwh": result.clearing_price_micro_per_kwh,
                "cleared_energy_wh": result.cleared_energy_wh,
                "orders": len(result.book),
            },
        )
        return result

    def _save_cleared(self, start_s: int, result: ClearingResult) -> None:
        store, key = self.market.store, self.market.operator.leaf_key
        store.save_interval(
            IntervalRow(
                interval_start_s=start_s,
                status="cleared",
                clearing_price_micro_per_kwh=result.clearing_price_micro_per_kwh,
                cleared_energy_wh=result.cleared_energy_wh,
                orders_root="0x" + orders_root(result.book.orders or (), key).hex(),
                result_root="0x" + result_root(result, key).hex(),
            )
        )
        store.save_trades(start_s, [trade_row(line) for line in result_trade_lines(result)])

    def settle(self, start_s: int) -> bool:
        """Settle ``start_s`` on-chain exactly once (MarketOperator.settle_interval), then record;
        False while its verifiers' quorum is pending (LiveMarket.settle_due).

        After a crash the same call resumes: the operator's stored plan and the chain's
        once-only checks decide what is still to send; nothing is sent twice.
        """
        m = self.market
        if not m.settle_due(start_s):
            return False
        with m.chain_lock:
            if m.next_settle_s % DAY_S == 0:  # the market day's last interval: commit its log
                _commit_access_log(m)
        settled = m.store.interval(start_s)
        m.hub.publish(
            "settled",
            {
                "interval_start_s": start_s,
                "settle_tx": settled.settle_tx,
                "clearing_price_micro_per_kwh": settled.clearing_price_micro_per_kwh,
            },
        )
        return True

    # -- the thread ----------------------------------------------------------------------
    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._run, name="market-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Let the current step finish, then stop (a step is never abandoned half-way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.market.meta.put(market_time_s=self.market.clock.now_s())

    def _run(self) -> None:
        saved_at = 0.0
        while not self._stop.is_set():
            try:
                self.tick()
                self.last_error = None
            except GridledgerError as exc:
                self.last_error = str(exc)
                log.error("market step failed, retrying: %s", exc)
                telemetry.count_step_error(exc)
                self._stop.wait(RETRY_AFTER_ERROR_S)
                continue
            wall = self.market.clock.wall_s()
            if wall - saved_at >= CLOCK_SAVE_EVERY_S:
                self.market.meta.put(market_time_s=self.market.clock.now_s())
                saved_at = wall
            # At least PENDING_POLL_S: a settlement waiting for its verifiers is overdue.
            self._stop.wait(max(min(TICK_S, self._wall_until_next_step()), PENDING_POLL_S))

    def _wall_until_next_step(self) -> float:
        m = self.market
        next_settle_at = m.next_settle_s + m.length_s + m.settings.settle_grace_s
        return min(
            m.clock.wall_seconds_until(m.next_gate_s), m.clock.wall_seconds_until(next_settle_at)
        )


def _commit_access_log(m: LiveMarket) -> None:
    """Commit finished days' access logs on-chain; a failure waits for the next day's try
    (the entries stay in the store, and commit_days catches up every missed day)."""
    try:
        days = commit_finished_days(m.store, m.ledger, m.operator.leaf_key, m.clock.now_s())
    except GridledgerError as exc:
        log.error("access-log commit failed, retried after the next day: %s", exc)
        return
    for day in days:
        log.info("access log of day %d committed: %d entries", day.day_start_s, day.entry_count)


def _interval_or_none(market: LiveMarket, start_s: int) -> IntervalRow | None:
    try:
        return market.store.interval(start_s)
    except NotFoundError:
        return None
