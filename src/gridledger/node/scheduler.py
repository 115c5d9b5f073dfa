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

from gridledger.errors import ConflictError, GridledgerError, NotFoundError
from gridledger.ledger import TxResult
from gridledger.market import ClearingResult, orders_root, result_lines, result_root
from gridledger.metering import readings_root
from gridledger.node.market import LiveMarket
from gridledger.settlement import SettledTrade, net_interval
from gridledger.store import IntervalRow, TradeRow

log = logging.getLogger(__name__)

TICK_S = 0.2  # at most this long between two looks at the clock (wall seconds)
CLOCK_SAVE_EVERY_S = 0.5
RETRY_AFTER_ERROR_S = 1.0


def settled_trades(result: ClearingResult) -> list[SettledTrade]:
    lines = result_lines(result) if result.book.orders is not None else ()
    return [
        SettledTrade(t.buyer, t.seller, t.energy_wh, t.price_micro_per_kwh, t.fee_micro_per_kwh)
        for t in lines
    ]


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
            self.close_gate(m.next_gate_s)
            done += 1
        grace_s = m.length_s + m.settings.settle_grace_s
        while (
            m.next_settle_s < m.next_gate_s
            and m.next_settle_s + grace_s <= m.clock.now()
            and not self._stop.is_set()
        ):
            self.settle(m.next_settle_s)
            done += 1
        return done

    def close_gate(self, start_s: int) -> ClearingResult:
        m = self.market
        with m.book_lock:
            result = m.operator.clear_interval(start_s)
            existing = _interval_or_none(m, start_s)
            if existing is None or existing.status in ("open", "cleared"):
                self._save_cleared(start_s, result)
            m.next_gate_s = start_s + m.length_s
            m.meta.put(next_gate_s=m.next_gate_s, market_time_s=m.clock.now_s())
        m.hub.publish("gate_closed", {
            "interval_start_s": start_s,
            "clearing_price_micro_per_kwh": result.clearing_price_micro_per_kwh,
            "cleared_energy_wh": result.cleared_energy_wh,
            "orders": len(result.book),
        })
        return result

    def _save_cleared(self, start_s: int, result: ClearingResult) -> None:
        store = self.market.store
        store.save_interval(IntervalRow(
            interval_start_s=start_s,
            status="cleared",
            clearing_price_micro_per_kwh=result.clearing_price_micro_per_kwh,
            cleared_energy_wh=result.cleared_energy_wh,
            orders_root="0x" + orders_root(result.book.orders or ()).hex(),
            result_root="0x" + result_root(result).hex(),
        ))
        store.save_trades(start_s, [
            TradeRow(start_s, t.buyer, t.seller, t.energy_wh, t.price_micro_per_kwh, t.fee_micro)
            for t in settled_trades(result)
        ])

    def settle(self, start_s: int) -> None:
        """Commit and settle ``start_s`` on-chain exactly once, then record it."""
        m = self.market
        with m.readings_lock, m.chain_lock:
            row = _interval_or_none(m, start_s)
            if row is None or row.status != "settled":
                result = m.operator.clear_interval(start_s)
                on_chain = m.ledger.interval(start_s)
                if on_chain.settled:
                    self._record_from_chain(start_s, result)
                elif on_chain.committed:
                    self._settle_committed(start_s, result)
                else:
                    m.operator.settle_interval(start_s, result)
            m.next_settle_s = start_s + m.length_s
            m.meta.put(next_settle_s=m.next_settle_s)
        settled = m.store.interval(start_s)
        m.hub.publish("settled", {
            "interval_start_s": start_s,
            "settle_tx": settled.settle_tx,
            "clearing_price_micro_per_kwh": settled.clearing_price_micro_per_kwh,
        })

    def _roots(self, start_s: int, result: ClearingResult) -> tuple[bytes, bytes, bytes]:
        readings = [s.reading for s in self.market.store.readings_in_interval(start_s)]
        return (orders_root(result.book.orders or ()), result_root(result), readings_root(readings))

    def _settle_committed(self, start_s: int, result: ClearingResult) -> None:
        """Committed before a crash, not settled: check the roots, then settle only."""
        m = self.market
        roots = self._roots(start_s, result)
        self._check_roots(start_s, roots)
        trades = settled_trades(result)
        deltas = net_interval(trades, m.ledger.deployment.grid_operator).deltas_micro
        commit = self._tx_of(start_s, "IntervalCommitted")
        settle = m.ledger.settle_interval(start_s, deltas)
        m.operator.record(start_s, result, roots, commit, settle, trades, deltas)

    def _record_from_chain(self, start_s: int, result: ClearingResult) -> None:
        """Settled on-chain before a crash, never recorded: record it, send nothing."""
        m = self.market
        roots = self._roots(start_s, result)
        self._check_roots(start_s, roots)
        trades = settled_trades(result)
        deltas = net_interval(trades, m.ledger.deployment.grid_operator).deltas_micro
        commit, settle = self._tx_of(start_s, "IntervalCommitted"), self._tx_of(
            start_s, "IntervalSettled"
        )
        m.operator.record(start_s, result, roots, commit, settle, trades, deltas)

    def _check_roots(self, start_s: int, roots: tuple[bytes, bytes, bytes]) -> None:
        on_chain = self.market.ledger.interval(start_s)
        held = (on_chain.orders_root, on_chain.result_root, on_chain.readings_root)
        if held != roots:
            raise ConflictError(
                f"interval {start_s}: the chain holds other roots than the store recomputes "
                f"({['0x' + r.hex() for r in held]} != {['0x' + r.hex() for r in roots]})"
            )

    def _tx_of(self, start_s: int, event_name: str) -> TxResult:
        from_block = self.market.meta.get_int("deploy_block") or 0
        for event in reversed(self.market.ledger.events(from_block)):
            if event.name == event_name and event.args.get("intervalStartS") == start_s:
                return TxResult(event.tx_hash, 0, event.block_number)
        raise ConflictError(f"interval {start_s}: no {event_name} event found on-chain")

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
                self._stop.wait(RETRY_AFTER_ERROR_S)
                continue
            wall = self.market.clock.wall_s()
            if wall - saved_at >= CLOCK_SAVE_EVERY_S:
                self.market.meta.put(market_time_s=self.market.clock.now_s())
                saved_at = wall
            self._stop.wait(min(TICK_S, self._wall_until_next_step()))

    def _wall_until_next_step(self) -> float:
        m = self.market
        next_settle_at = m.next_settle_s + m.length_s + m.settings.settle_grace_s
        return min(m.clock.wall_seconds_until(m.next_gate_s),
                   m.clock.wall_seconds_until(next_settle_at))


def _interval_or_none(market: LiveMarket, start_s: int) -> IntervalRow | None:
    try:
        return market.store.interval(start_s)
    except NotFoundError:
        return None
