"""The chain explorer's view: status, recent contract events (cached, fetched incrementally).

Events are kept per group, the newest ``KEEP_EVENTS`` of each, so that one busy kind cannot push
the others out: a daily ``claimMany`` of 10,000 participants emits 10,000 ``Claimed`` events, and
enrolling them as many ``ParticipantAdded``, yet the interval commits and settlements stay listed.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict
from typing import Any

from gridledger.ledger import ChainEvent, Ledger

KEEP_EVENTS = 1_000
SETTLEMENT_EVENTS = ("IntervalSettled", "IntervalSettledByRoot")
CLAIM_EVENTS = ("Claimed",)
MARKET_EVENTS = ("IntervalCommitted", *SETTLEMENT_EVENTS)
ACCOUNT_EVENTS = (
    "Deposited",
    "ParticipantAdded",
    "MeterRegistered",
    "Withdrawn",
    "WithdrawalRequested",
)
EXPLORER_EVENTS = (*MARKET_EVENTS, *CLAIM_EVENTS, *ACCOUNT_EVENTS)
_GROUPS = (MARKET_EVENTS, CLAIM_EVENTS, ACCOUNT_EVENTS)


class ChainView:
    """Reads the chain under ``lock`` (the ledger client is not thread-safe)."""

    def __init__(self, ledger: Ledger, lock: threading.RLock, from_block: int = 0) -> None:
        self.ledger, self.lock = ledger, lock
        self._next_block = from_block
        self._groups = {group: deque[ChainEvent](maxlen=KEEP_EVENTS) for group in _GROUPS}
        self._group_of = {name: group for group in _GROUPS for name in group}

    def refresh(self) -> int:
        """Fetch the events of blocks not seen yet; returns the head block number."""
        with self.lock:
            head = self.ledger.block_number
            if head >= self._next_block:
                for event in self.ledger.events(self._next_block, head):
                    group = self._group_of.get(event.name)
                    if group is not None:
                        self._groups[group].append(event)
                self._next_block = head + 1
        return head

    def events(self, limit: int, names: tuple[str, ...] = EXPLORER_EVENTS) -> list[dict[str, Any]]:
        """The newest ``limit`` kept events named in ``names``, newest first."""
        return self.newest(names)[:limit]

    def newest(self, names: tuple[str, ...] = EXPLORER_EVENTS) -> list[dict[str, Any]]:
        """Every kept event named in ``names``, newest first (block, then log index)."""
        self.refresh()
        with self.lock:
            picked = [e for group in self._groups.values() for e in group if e.name in names]
        picked.sort(key=lambda e: (e.block_number, e.log_index), reverse=True)
        return [asdict(e) for e in picked]

    def status(self) -> dict[str, Any]:
        head = self.refresh()
        d = self.ledger.deployment
        with self.lock:
            last, committed, settled = self.ledger.progress()
        return {
            "chain": self.ledger.chain,
            "chain_id": d.chain_id,
            "block_number": head,
            "token": d.token,
            "registry": d.registry,
            "market": d.market,
            "grid_operator": d.grid_operator,
            "operator": self.ledger.operator,
            "tx_count": self.ledger.stats.tx_count,
            "gas_used": self.ledger.stats.gas_used,
            "last_committed_interval_start_s": last,
            "committed_intervals": committed,
            "settled_intervals": settled,
            "recent_commits": self.events(10, ("IntervalCommitted",)),
            "recent_settlements": self.events(10, SETTLEMENT_EVENTS),
            "recent_claims": self.events(10, CLAIM_EVENTS),
        }

    def interval(self, interval_start_s: int) -> dict[str, Any]:
        with self.lock:
            on_chain = self.ledger.interval(interval_start_s)
        return {
            "interval_start_s": interval_start_s,
            "orders_root": "0x" + on_chain.orders_root.hex(),
            "result_root": "0x" + on_chain.result_root.hex(),
            "readings_root": "0x" + on_chain.readings_root.hex(),
            "price_micro_per_kwh": on_chain.price_micro_per_kwh,
            "volume_wh": on_chain.volume_wh,
            "committed": on_chain.committed,
            "settled": on_chain.settled,
        }
