"""The metering gateway: verify a batch, store it in one transaction, then acknowledge.

An outcome is final: ``accepted`` and ``duplicate`` (already stored) both mean "stored once,
stop resending"; ``rejected`` carries the reason code. Outcomes exist only after the commit, so
an acknowledgement never precedes durability.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gridledger import telemetry
from gridledger.eip712 import Domain
from gridledger.metering.reading import SignedReading
from gridledger.metering.verify import (
    PARALLEL_MIN_BATCH,
    VerifyContext,
    verify_batch,
    warm_worker,
)

if TYPE_CHECKING:
    from gridledger.store import InsertOutcome, Store

log = logging.getLogger(__name__)

OutcomeStatus = Literal["accepted", "duplicate", "rejected"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The gateway's final answer for one reading."""

    meter: str
    sequence: int
    status: OutcomeStatus
    code: str | None = None
    reason: str = ""
    reading_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The acknowledgement body: {"meter", "sequence", "status", "code"} (+ reason, id)."""
        return {
            "meter": self.meter,
            "sequence": self.sequence,
            "status": self.status,
            "code": self.code,
            "reason": self.reason,
            "readingId": self.reading_id,
        }


def wall_clock_s() -> int:
    return int(time.time())


class Gateway:
    """Verifies and stores signed readings; ``clock`` returns the current Unix time in seconds.

    ``workers`` processes verify the signatures of big batches (default: one per core; 1 keeps
    everything in this process). The pool starts with the first big batch, or with
    :meth:`start_workers`; :meth:`close` stops it.
    """

    def __init__(
        self,
        store: Store,
        domain: Domain,
        clock: Callable[[], int] = wall_clock_s,
        workers: int | None = None,
    ):
        self.store = store
        self.domain = domain
        self.clock = clock
        self.workers = max(1, os.cpu_count() or 1) if workers is None else workers
        self._pool: ProcessPoolExecutor | None = None
        self._signers: dict[str, bytes] = {}  # meter -> public key proven by a signature

    def start_workers(self) -> None:
        """Start the verification processes now (else the first big batch waits for them)."""
        if self._pool is None and self.workers > 1:
            context = multiprocessing.get_context("forkserver")  # no fork of a threaded node
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            warm = [self._pool.submit(warm_worker, 0.2) for _ in range(self.workers)]
            for future in warm:
                future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def verify(self, batch: Sequence[SignedReading], now_s: int) -> list[Outcome | None]:
        """Check every reading's structure, meter and signature (no store writes): None for a
        reading that may be stored, else its rejection."""
        context = VerifyContext(self.store.meters_by_address(s.reading.meter for s in batch), now_s)
        if len(batch) >= PARALLEL_MIN_BATCH:
            self.start_workers()
        verdicts = verify_batch(
            batch, self.domain, context, self._signers, self._pool, self.workers
        )
        return [
            None
            if verdict is None
            else _rejected(signed, verdict[0], f"{verdict[1]}: {verdict[2]}")
            for signed, verdict in zip(batch, verdicts, strict=True)
        ]

    def observe_rejected(self, outcomes: Sequence[Outcome]) -> None:
        """Items refused before :meth:`ingest` (unparseable); the node's security wrapper
        counts them as traffic, a bare gateway ignores them."""

    def ingest(self, batch: Sequence[SignedReading]) -> list[Outcome]:
        """Verify, dedupe and store ``batch`` in one transaction; one outcome per reading."""
        now_s = self.clock()
        return self.store_verified(batch, self.verify(batch, now_s), now_s)

    def store_verified(
        self, batch: Sequence[SignedReading], outcomes: Sequence[Outcome | None], now_s: int
    ) -> list[Outcome]:
        """Store the readings :meth:`verify` passed, in one transaction; acknowledge after it."""
        verified = [s for s, out in zip(batch, outcomes, strict=True) if out is None]
        stored = iter(self.store.insert_readings(verified, received_at_s=now_s))
        answered = [
            out if out is not None else _from_store(signed, next(stored))
            for out, signed in zip(outcomes, batch, strict=True)
        ]
        telemetry.count_readings(answered)
        return answered


def _rejected(signed: SignedReading, code: str, reason: str) -> Outcome:
    reading = signed.reading
    log.warning(
        "reading rejected: code=%s meter=%s sequence=%s %s",
        code,
        reading.meter,
        reading.sequence,
        reason,
    )
    return Outcome(reading.meter, reading.sequence, "rejected", code, reason)


def _from_store(signed: SignedReading, stored: InsertOutcome) -> Outcome:
    reading = signed.reading
    if stored.status == "replay":
        return _rejected(signed, "replay", f"sequence: {stored.reason}")
    if stored.status == "late":
        return _rejected(signed, "out_of_window", f"interval_start_s: {stored.reason}")
    return Outcome(
        reading.meter, reading.sequence, stored.status, None, stored.reason, stored.reading_id
    )


def ingest_json(gateway: Gateway, payload: Any) -> list[dict[str, Any]]:
    """``POST /v1/readings``: a JSON list of signed readings in, a list of acks out (in order).

    A malformed item is answered with code ``malformed`` rather than failing the whole batch.
    """
    from gridledger.errors import ValidationError
    from gridledger.metering.reading import signed_reading_from_json

    if not isinstance(payload, list):
        raise ValidationError("readings", "must be a JSON list of signed readings")
    parsed: list[SignedReading | Outcome] = []
    for item in payload:
        try:
            parsed.append(signed_reading_from_json(item))
        except ValidationError as exc:
            meter = item.get("meter") if isinstance(item, dict) else None
            sequence = item.get("sequence") if isinstance(item, dict) else None
            parsed.append(
                Outcome(
                    str(meter),
                    sequence if isinstance(sequence, int) else -1,
                    "rejected",
                    "malformed",
                    str(exc),
                )
            )
    malformed = [p for p in parsed if isinstance(p, Outcome)]
    telemetry.count_readings(malformed)
    gateway.observe_rejected(malformed)
    stored = iter(gateway.ingest([p for p in parsed if isinstance(p, SignedReading)]))
    return [(p if isinstance(p, Outcome) else next(stored)).to_json() for p in parsed]
