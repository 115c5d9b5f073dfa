"""Operations: Prometheus metrics and structured JSON logs, for every gridledger process.

The counters live here, in a module that imports nothing of gridledger, so the places where
events happen (the metering gateway, the live market, the scheduler) count them with one call
and the API only exposes them at ``/metrics``. Values that already exist elsewhere (gas from the
ledger's transaction totals, queue depths from the store) are read when Prometheus scrapes.

Logs: :func:`configure_json_logging` writes one JSON object per line with the time, level,
logger, message, and the interval and request id when the code that logged was working on one
(:func:`interval_context`, :func:`request_context`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Histogram

READINGS = Counter(
    "gridledger_readings_total",
    "Meter readings answered by the gateway, by status and rejection code.",
    ["status", "code"],
)
ORDERS = Counter(
    "gridledger_orders_total",
    "Signed orders answered by the live market: accepted, duplicate, rejected, cancelled.",
    ["status"],
)
STAGE_SECONDS = Histogram(
    "gridledger_interval_stage_seconds",
    "Wall seconds of each interval stage: clear (gate closure), settle (commit and settle).",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
STEP_ERRORS = Counter(
    "gridledger_step_errors_total",
    "Market steps that failed and will be retried, by error class.",
    ["error"],
)
CHAIN_ERRORS = Counter(
    "gridledger_chain_errors_total",
    "Chain calls that failed (node unreachable, revert, rejected transaction), by error class.",
    ["error"],
)
HTTP_REQUESTS = Counter(
    "gridledger_http_requests_total",
    "API requests by route template, method and status code.",
    ["route", "method", "status"],
)

_interval: contextvars.ContextVar[int | None] = contextvars.ContextVar("interval", default=None)
_request: contextvars.ContextVar[str | None] = contextvars.ContextVar("request", default=None)


def count_readings(outcomes: Iterable[Any]) -> None:
    """Count gateway outcomes (anything with ``status`` and ``code``)."""
    for outcome in outcomes:
        READINGS.labels(outcome.status, outcome.code or "").inc()


def count_step_error(exc: BaseException) -> None:
    """A failed scheduler step; chain errors are also counted on their own."""
    name = type(exc).__name__
    STEP_ERRORS.labels(name).inc()
    if any(c.__name__ == "ChainError" for c in type(exc).__mro__):
        CHAIN_ERRORS.labels(name).inc()


@contextmanager
def stage(name: str, interval_start_s: int) -> Iterator[None]:
    """Time one interval stage and tag the logs written meanwhile with the interval."""
    began = time.perf_counter()
    token = _interval.set(interval_start_s)
    try:
        yield
    finally:
        _interval.reset(token)
        STAGE_SECONDS.labels(name).observe(time.perf_counter() - began)


@contextmanager
def interval_context(interval_start_s: int) -> Iterator[None]:
    token = _interval.set(interval_start_s)
    try:
        yield
    finally:
        _interval.reset(token)


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    token = _request.set(request_id)
    try:
        yield
    finally:
        _request.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, interval_start_s, request_id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        interval = getattr(record, "interval_start_s", None) or _interval.get()
        if interval is not None:
            entry["interval_start_s"] = interval
        request = getattr(record, "request_id", None) or _request.get()
        if request is not None:
            entry["request_id"] = request
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, separators=(",", ":"))


def configure_json_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Send every log record of the process to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
