"""The HTTP meter client: a :class:`MeterClient` posting batches to ``POST /v1/readings``.

The acks are the response. Connection errors, timeouts, 5xx and 429 are retried a bounded
number of times with exponential backoff (429 waits ``Retry-After``); whatever is still
unanswered stays in the outbox for :meth:`MeterClient.resend_due` or
:meth:`HttpMeterClient.flush`. Needs ``httpx``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from gridledger.errors import ValidationError
from gridledger.metering.client import MeterClient
from gridledger.metering.reading import SignedReading, signed_reading_to_json

log = logging.getLogger(__name__)

FINAL_STATUSES = ("accepted", "duplicate", "rejected")
MAX_BATCH = 5_000  # POST /v1/readings refuses larger requests


class HttpMeterClient(MeterClient):
    """A :class:`MeterClient` posting to a gateway's ``POST /v1/readings``.

    ``max_attempts`` bounds the tries of one send; the wait before try ``n`` is
    ``backoff_s * 2**(n-1)`` capped at ``max_backoff_s``. A 4xx other than 429 means the request
    itself is wrong (it will never succeed): :class:`ValidationError`, readings kept.
    """

    def __init__(
        self,
        base_url: str,
        *,
        batch_size: int = 1_000,
        max_attempts: int = 6,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        timeout_s: float = 30.0,
        resend_after_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValidationError("batch_size", f"must be in 1..{MAX_BATCH}, got {batch_size}")
        if max_attempts < 1:
            raise ValidationError("max_attempts", f"must be at least 1, got {max_attempts}")
        super().__init__(self._post_all, resend_after_s)
        self.url = base_url.rstrip("/") + "/v1/readings"
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout_s)
        self.failed_attempts = 0  # tries that got no acks (connection error, 5xx, 429)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpMeterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def flush(self, timeout_s: float = 60.0) -> int:
        """Resend everything unacknowledged until none is left or ``timeout_s`` has passed.

        Returns how many readings are still unacknowledged (0: everything was answered).
        """
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            self._post_all(self.pending)
        return len(self.pending)

    def _post_all(self, readings: list[SignedReading]) -> None:
        for i in range(0, len(readings), self.batch_size):
            self._post(readings[i : i + self.batch_size])

    def _post(self, batch: list[SignedReading]) -> None:
        body = [signed_reading_to_json(r) for r in batch]
        for attempt in range(1, self.max_attempts + 1):
            wait_s = self._try(body)
            if wait_s is None:
                return
            self.failed_attempts += 1
            if attempt < self.max_attempts:
                self._sleep(wait_s or min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s))
        log.warning(
            "gateway unavailable after %d attempts: %d readings kept", self.max_attempts, len(batch)
        )

    def _try(self, body: list[dict[str, Any]]) -> float | None:
        """Post once: None when answered, else the wait before the next try (0: backoff)."""
        try:
            response = self._http.post(self.url, json=body)
        except httpx.TransportError as exc:
            log.info("gateway unreachable (%s): will retry", type(exc).__name__)
            return 0.0
        if response.status_code == 429:
            return min(_retry_after_s(response), self.max_backoff_s)
        if response.status_code >= 500:
            log.info("gateway answered %d: will retry", response.status_code)
            return 0.0
        if response.status_code >= 400:
            raise ValidationError("readings", f"gateway refused the request: {response.text}")
        for ack in _acks(response, len(body)):
            self.handle_ack(ack)
        return None


def _retry_after_s(response: httpx.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", "0")), 0.0)
    except ValueError:
        return 0.0


def _acks(response: httpx.Response, expected: int) -> list[dict[str, Any]]:
    acks = response.json()
    if not isinstance(acks, list) or len(acks) != expected:
        raise ValidationError("acks", f"expected a list of {expected} acks, got {acks!r:.200}")
    for ack in acks:
        if not isinstance(ack, dict) or ack.get("status") not in FINAL_STATUSES:
            raise ValidationError("acks", f"not a final acknowledgement: {ack!r:.200}")
    return acks
