"""The metering gateway: verify a batch, store it in one transaction, then acknowledge.

An outcome is final: ``accepted`` and ``duplicate`` (already stored) both mean "stored once,
stop resending"; ``rejected`` carries the reason code. Outcomes exist only after the commit, so
an acknowledgement never precedes durability.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gridledger import telemetry
from gridledger.eip712 import Domain
from gridledger.errors import ReadingRejected
from gridledger.metering.reading import SignedReading
from gridledger.metering.verify import VerifyContext, verify_reading

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
    """Verifies and stores signed readings; ``clock`` returns the current Unix time in seconds."""

    def __init__(self, store: Store, domain: Domain, clock: Callable[[], int] = wall_clock_s):
        self.store = store
        self.domain = domain
        self.clock = clock

    def ingest(self, batch: Sequence[SignedReading]) -> list[Outcome]:
        """Verify, dedupe and store ``batch`` in one transaction; one outcome per reading."""
        now_s = self.clock()
        context = VerifyContext(self.store.meters_by_address(s.reading.meter for s in batch), now_s)
        outcomes: list[Outcome | None] = []
        verified: list[SignedReading] = []
        for signed in batch:
            try:
                verify_reading(signed, self.domain, context)
            except ReadingRejected as exc:
                outcomes.append(_rejected(signed, exc.code, f"{exc.field}: {exc.reason}"))
                continue
            outcomes.append(None)
            verified.append(signed)
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
    telemetry.count_readings(p for p in parsed if isinstance(p, Outcome))
    stored = iter(gateway.ingest([p for p in parsed if isinstance(p, SignedReading)]))
    return [(p if isinstance(p, Outcome) else next(stored)).to_json() for p in parsed]
