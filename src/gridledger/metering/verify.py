"""Pure verification of one signed reading: who signed it, may it be stored, is it physical.

Checks run cheapest-to-trust first: the structure, the meter registry, then the signature; the
window and plausibility checks only judge readings whose author is proven, so a forger cannot
get a real meter flagged as faulty.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gridledger.eip712 import Domain, address_bytes, checksum_address, recover_public_key
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


def verify_reading(
    signed: SignedReading,
    domain: Domain,
    context: VerifyContext,
    signers: dict[str, bytes] | None = None,
) -> Reading:
    """Return the reading if it may be stored; raise ReadingRejected(code, field, reason).

    ``signers`` (meter -> public key) caches keys already proven to be a meter's, so later
    readings of that meter compare keys instead of deriving and checksumming an address."""
    reading = signed.reading
    try:
        check_reading(reading, checksum=False)
    except ValidationError as exc:
        raise ReadingRejected("malformed", exc.field, exc.reason) from None
    meter = context.meters.get(reading.meter)
    if meter is None:
        raise ReadingRejected("unknown_meter", "meter", f"{reading.meter} is not registered")
    _check_signature(signed, domain, {} if signers is None else signers)
    if not meter.active:
        raise ReadingRejected("inactive_meter", "meter", f"{reading.meter} is deactivated")
    _check_sequence(reading, context.last_sequence)
    _check_window(reading, context)
    _check_plausible(reading, meter.rated_power_w)
    return reading


def _check_signature(signed: SignedReading, domain: Domain, signers: dict[str, bytes]) -> None:
    meter = signed.reading.meter
    try:
        public = recover_public_key(reading_digest(signed.reading, domain), signed.signature)
    except ValidationError as exc:
        raise ReadingRejected("bad_signature", "signature", exc.reason) from None
    known = signers.get(meter)
    if known == public:
        return
    if known is None and address_bytes(public) == bytes.fromhex(meter[2:]):
        signers[meter] = public
        return
    signer = checksum_address(address_bytes(public))
    raise ReadingRejected("bad_signature", "signature", f"signed by {signer}, not by meter {meter}")


# -- verifying a batch on every core ---------------------------------------------------------
# A signature costs far more than everything else a gateway does with a reading, so big batches
# are split over a pool of processes (one per core); small ones are verified in-process.
PARALLEL_MIN_BATCH = 256
Rejection = tuple[str, str, str]  # (code, field, reason)
_WORKER_SIGNERS: dict[str, bytes] = {}  # each worker process's own cache of meter keys


def verify_batch(
    batch: Sequence[SignedReading],
    domain: Domain,
    context: VerifyContext,
    signers: dict[str, bytes],
    pool: Executor | None = None,
    workers: int = 1,
) -> list[Rejection | None]:
    """One verdict per reading, in batch order: None (may be stored) or the rejection."""
    if pool is None or workers < 2 or len(batch) < PARALLEL_MIN_BATCH:
        return _verdicts(batch, domain, context, signers)
    size = -(-len(batch) // workers)
    futures = [
        pool.submit(_verify_chunk, *_wire_chunk(batch[i : i + size], domain, context))
        for i in range(0, len(batch), size)
    ]
    return [verdict for future in futures for verdict in future.result()]


# Plain tuples cross the process boundary: pickling frozen dataclasses costs about a tenth of
# the verification itself.
_WireReading = tuple[str, int, int, int, int, int, bytes]
_WireDomain = tuple[str, str, int, str]


def _wire_chunk(
    chunk: Sequence[SignedReading], domain: Domain, context: VerifyContext
) -> tuple[list[_WireReading], _WireDomain, dict[str, tuple[bool, int]], int, dict[str, int], int]:
    meters = {s.reading.meter for s in chunk}
    return (
        [(*s.reading.values(), s.signature) for s in chunk],  # type: ignore[misc]
        (domain.name, domain.version, domain.chain_id, domain.verifying_contract),
        {m: (i.active, i.rated_power_w) for m, i in context.meters.items() if m in meters},
        context.now_s,
        {m: q for m, q in context.last_sequence.items() if m in meters},
        context.max_clock_skew_s,
    )


@dataclass(frozen=True)
class _WireMeter:
    active: bool
    rated_power_w: int


def _verify_chunk(
    chunk: list[_WireReading],
    domain: _WireDomain,
    meters: dict[str, tuple[bool, int]],
    now_s: int,
    last_sequence: dict[str, int],
    max_clock_skew_s: int,
) -> list[Rejection | None]:
    context = VerifyContext(
        {m: _WireMeter(*info) for m, info in meters.items()},
        now_s,
        last_sequence,
        max_clock_skew_s,
    )
    batch = [SignedReading(Reading(*fields[:6]), fields[6]) for fields in chunk]  # type: ignore[arg-type]
    return _verdicts(batch, Domain(*domain), context, _WORKER_SIGNERS)


def _verdicts(
    batch: Sequence[SignedReading],
    domain: Domain,
    context: VerifyContext,
    signers: dict[str, bytes],
) -> list[Rejection | None]:
    out: list[Rejection | None] = []
    for signed in batch:
        try:
            verify_reading(signed, domain, context, signers)
        except ReadingRejected as exc:
            out.append((exc.code, exc.field, exc.reason))
            continue
        out.append(None)
    return out


def warm_worker(delay_s: float) -> int:
    """A no-op task that imports this module in a pool worker (and holds it ``delay_s``)."""
    time.sleep(delay_s)
    return os.getpid()


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
