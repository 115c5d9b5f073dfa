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
from typing import Any

from eth_utils.crypto import keccak

from gridledger import telemetry
from gridledger.errors import ConflictError, GridledgerError, NotFoundError
from gridledger.ledger import TxResult, pack_entries
from gridledger.market import ClearingResult, TradeLine, orders_root, result_lines, result_root
from gridledger.node.interval import trade_row
from gridledger.node.market import LiveMarket
from gridledger.settlement import DeliverySettlement
from gridledger.store import IntervalRow

log = logging.getLogger(__name__)

TICK_S = 0.2  # at most this long between two looks at the clock (wall seconds)
CLOCK_SAVE_EVERY_S = 0.5
RETRY_AFTER_ERROR_S = 1.0


def result_trade_lines(result: ClearingResult) -> tuple[TradeLine, ...]:
    return tuple(result_lines(result)) if result.book.orders is not None else ()


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
        m.hub.publish(
            "settled",
            {
                "interval_start_s": start_s,
                "settle_tx": settled.settle_tx,
                "clearing_price_micro_per_kwh": settled.clearing_price_micro_per_kwh,
            },
        )

    def _roots(self, start_s: int, result: ClearingResult) -> tuple[bytes, bytes, bytes]:
        return self.market.operator.roots_of(start_s, result)

    def _plan(
        self, start_s: int, result: ClearingResult
    ) -> tuple[tuple[bytes, bytes, bytes], tuple[TradeLine, ...], DeliverySettlement]:
        """The inputs MarketOperator.settle_interval computes before it sends anything."""
        op = self.market.operator
        lines = result_trade_lines(result)
        settlement = op.settlement_of(start_s, lines, cap_to_escrow=True)
        return self._roots(start_s, result), lines, settlement

    def _settle_committed(self, start_s: int, result: ClearingResult) -> None:
        """Committed before a crash, not settled: check the roots, then settle only."""
        m = self.market
        roots, lines, settlement = self._plan(start_s, result)
        self._check_roots(start_s, roots)
        commit = self._event_of(start_s, "IntervalCommitted")[0]
        settle = m.ledger.settle_interval(start_s, settlement.deltas_micro)
        m.operator.record(start_s, result, roots, (commit, settle), lines, settlement)

    def _record_from_chain(self, start_s: int, result: ClearingResult) -> None:
        """Settled on-chain before a crash, never recorded: record it, send nothing.

        The settlement is recomputed, and recorded only if its entries hash to what the
        Market contract emitted; otherwise the interval waits for a person (never re-sent).
        """
        m = self.market
        roots, lines, settlement = self._plan(start_s, result)
        self._check_roots(start_s, roots)
        commit = self._event_of(start_s, "IntervalCommitted")[0]
        settle, args = self._event_of(start_s, "IntervalSettled")
        entries_hash = "0x" + keccak(b"".join(pack_entries(settlement.deltas_micro))).hex()
        if entries_hash != args.get("entriesHash"):
            raise ConflictError(
                f"interval {start_s}: settled on-chain with entries {args.get('entriesHash')}, "
                f"the store recomputes {entries_hash}; resolve by hand"
            )
        m.operator.record(start_s, result, roots, (commit, settle), lines, settlement)

    def _check_roots(self, start_s: int, roots: tuple[bytes, bytes, bytes]) -> None:
        on_chain = self.market.ledger.interval(start_s)
        held = (on_chain.orders_root, on_chain.result_root, on_chain.readings_root)
        if held != roots:
            raise ConflictError(
                f"interval {start_s}: the chain holds other roots than the store recomputes "
                f"({['0x' + r.hex() for r in held]} != {['0x' + r.hex() for r in roots]})"
            )

    def _event_of(self, start_s: int, event_name: str) -> tuple[TxResult, dict[str, Any]]:
        from_block = self.market.meta.get_int("deploy_block") or 0
        for event in reversed(self.market.ledger.events(from_block)):
            if event.name == event_name and event.args.get("intervalStartS") == start_s:
                return TxResult(event.tx_hash, 0, event.block_number), event.args
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
                telemetry.count_step_error(exc)
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
        return min(
            m.clock.wall_seconds_until(m.next_gate_s), m.clock.wall_seconds_until(next_settle_at)
        )


def _interval_or_none(market: LiveMarket, start_s: int) -> IntervalRow | None:
    try:
        return market.store.interval(start_s)
    except NotFoundError:
        return None
