"""Pure verification of one signed reading: who signed it, may it be stored, is it physical.

Checks run cheapest-to-trust first: the structure, the meter registry, then the signature; the
window and plausibility checks only judge readings whose author is proven, so a forger cannot
get a real meter flagged as faulty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gridledger.eip712 import Domain, recover_address
from gridledger.errors import ReadingRejected, ValidationError
from gridledger.metering.reading import Reading, SignedReading, check_reading, reading_digest

RejectCode = Literal[
    "malformed",
    "bad_signature",
    "unknown_meter",
    "inactive_meter",
    "replay",
    "out_of_window",
    "implausible",
]
DEFAULT_CLOCK_SKEW_S = 60


class MeterInfo(Protocol):
    """What verification needs to know about a registered meter (``store.Meter`` fits)."""

    @property
    def active(self) -> bool: ...

    @property
    def rated_power_w(self) -> int: ...


@dataclass(frozen=True)
class VerifyContext:
    """The facts a reading is judged against.

    ``last_sequence`` may be empty: the gateway leaves the replay decision to the store, which
    makes it inside the insert transaction.
    """

    meters: Mapping[str, MeterInfo]
    now_s: int
    last_sequence: Mapping[str, int] = field(default_factory=dict)
    max_clock_skew_s: int = DEFAULT_CLOCK_SKEW_S


def verify_reading(signed: SignedReading, domain: Domain, context: VerifyContext) -> Reading:
    """Return the reading if it may be stored; raise ReadingRejected(code, field, reason)."""
    reading = signed.reading
    try:
        check_reading(reading, checksum=False)
    except ValidationError as exc:
        raise ReadingRejected("malformed", exc.field, exc.reason) from None
    meter = context.meters.get(reading.meter)
    if meter is None:
        raise ReadingRejected("unknown_meter", "meter", f"{reading.meter} is not registered")
    _check_signature(signed, domain)
    if not meter.active:
        raise ReadingRejected("inactive_meter", "meter", f"{reading.meter} is deactivated")
    _check_sequence(reading, context.last_sequence)
    _check_window(reading, context)
    _check_plausible(reading, meter.rated_power_w)
    return reading


def _check_signature(signed: SignedReading, domain: Domain) -> None:
    try:
        signer = recover_address(reading_digest(signed.reading, domain), signed.signature)
    except ValidationError as exc:
        raise ReadingRejected("bad_signature", "signature", exc.reason) from None
    if signer != signed.reading.meter:
        raise ReadingRejected(
            "bad_signature", "signature", f"signed by {signer}, not by meter {signed.reading.meter}"
        )


def _check_sequence(reading: Reading, last_sequence: Mapping[str, int]) -> None:
    last = last_sequence.get(reading.meter)
    if last is not None and reading.sequence <= last:
        raise ReadingRejected(
            "replay", "sequence", f"{reading.sequence} is not above the last accepted {last}"
        )


def _check_window(reading: Reading, context: VerifyContext) -> None:
    if reading.interval_start_s % reading.interval_length_s:
        raise ReadingRejected(
            "out_of_window",
            "interval_start_s",
            f"{reading.interval_start_s} is not a multiple of interval_length_s "
            f"{reading.interval_length_s}",
        )
    if reading.interval_end_s > context.now_s + context.max_clock_skew_s:
        raise ReadingRejected(
            "out_of_window",
            "interval_start_s",
            f"interval ends at {reading.interval_end_s}, after now ({context.now_s})",
        )


def _check_plausible(reading: Reading, rated_power_w: int) -> None:
    # energy_wh * 3600 <= power_w * seconds keeps the bound exact in integers.
    limit_wh_x3600 = rated_power_w * reading.interval_length_s
    for name in ("imported_wh", "exported_wh"):
        energy_wh = getattr(reading, name)
        if energy_wh * 3600 > limit_wh_x3600:
            raise ReadingRejected(
                "implausible",
                name,
                f"{energy_wh} Wh exceeds rated power {rated_power_w} W over "
                f"{reading.interval_length_s} s ({limit_wh_x3600 // 3600} Wh)",
            )
