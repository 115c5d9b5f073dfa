"""A thread-safe, bounded feed of what the node did, for server-sent events.

The scheduler thread publishes; each SSE stream reads what is newer than its last sequence
number. Nothing blocks: a slow browser only ever misses events older than the buffer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

BUFFER_EVENTS = 256


@dataclass(frozen=True)
class NodeEvent:
    seq: int
    kind: str  # "gate_closed", "settled", "orders", "readings", "participant"
    data: dict[str, Any]
    wall_s: float


class EventHub:
    def __init__(self, buffer_events: int = BUFFER_EVENTS) -> None:
        self._lock = threading.Lock()
        self._events: deque[NodeEvent] = deque(maxlen=buffer_events)
        self._seq = 0
        self.closed = threading.Event()

    def publish(self, kind: str, data: dict[str, Any]) -> NodeEvent:
        with self._lock:
            self._seq += 1
            event = NodeEvent(self._seq, kind, data, time.time())
            self._events.append(event)
        return event

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def after(self, seq: int) -> list[NodeEvent]:
        with self._lock:
            return [e for e in self._events if e.seq > seq]
