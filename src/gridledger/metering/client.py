"""A meter's outbox: it keeps every reading until the gateway acknowledges it, and resends.

A reading leaves the outbox only when the gateway has answered for it with a final ack
(``accepted``, ``duplicate`` or ``rejected``), and an ack exists only after the gateway's
database commit; so whatever happens to the gateway in between, resending is both necessary
and safe (the store keeps a (meter, sequence) once and answers ``duplicate``). The transport is
a ``send`` function: :class:`~gridledger.metering.httpclient.HttpMeterClient` (HTTP) and
:class:`~gridledger.metering.mqtt.MqttMeterClient` (MQTT) provide one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gridledger.metering.reading import SignedReading

ReadingKey = tuple[str, int]


def reading_key(signed: SignedReading) -> ReadingKey:
    return (signed.reading.meter, signed.reading.sequence)


class MeterClient:
    """A meter's outbox: keeps each reading until its ack arrives, and resends when overdue."""

    def __init__(
        self,
        send: Callable[[list[SignedReading]], None],
        resend_after_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self.resend_after_s = resend_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[ReadingKey, tuple[SignedReading, float]] = {}
        self.acks: dict[ReadingKey, dict[str, Any]] = {}

    def submit(self, reading: SignedReading) -> None:
        self.submit_batch([reading])

    def submit_batch(self, readings: Sequence[SignedReading]) -> None:
        """Keep the readings until acknowledged, then send them (one send for the batch)."""
        now = self._clock()
        with self._lock:
            for reading in readings:
                self._pending[reading_key(reading)] = (reading, now)
        self._send(list(readings))

    def handle_ack(self, ack: Mapping[str, Any]) -> None:
        key = (str(ack.get("meter")), int(ack.get("sequence", -1)))
        with self._lock:
            self._pending.pop(key, None)
            self.acks[key] = dict(ack)

    def resend_due(self) -> int:
        """Resend readings unacknowledged for ``resend_after_s``; returns how many."""
        now = self._clock()
        with self._lock:
            due = [r for r, sent in self._pending.values() if now - sent >= self.resend_after_s]
            for reading in due:
                self._pending[reading_key(reading)] = (reading, now)
        if due:
            self._send(due)
        return len(due)

    @property
    def pending(self) -> list[SignedReading]:
        with self._lock:
            return [r for r, _ in self._pending.values()]

    def acknowledged(self, statuses: Iterable[str] = ("accepted", "duplicate")) -> set[ReadingKey]:
        """The (meter, sequence) whose ack has one of ``statuses`` (default: stored once)."""
        wanted = set(statuses)
        with self._lock:
            return {key for key, ack in self.acks.items() if ack.get("status") in wanted}
