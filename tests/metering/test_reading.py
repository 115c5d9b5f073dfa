"""The reading format: EIP-712 digest, signing, JSON both ways, and each rejection code."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account

from gridledger.eip712 import key_from_seed
from gridledger.errors import ReadingRejected, ValidationError
from gridledger.metering import (
    READING_TYPE,
    Reading,
    SignedReading,
    VerifyContext,
    encode_reading,
    reading_digest,
    sign_reading,
    signed_reading_from_json,
    signed_reading_to_json,
    verify_reading,
)
from gridledger.store import Meter
from tests.metering.factory import DOMAIN, INTERVAL_S, NOW_S, T0, fleet, signed
from tests.support.eip712 import eth_account_message

METER = fleet(1)[0]
REGISTRY = {METER.address: Meter(METER.address, METER.owner, 10_000)}


def context(**changes: object) -> VerifyContext:
    return replace(VerifyContext(REGISTRY, NOW_S), **changes)  # type: ignore[arg-type]


def test_digest_matches_eth_account_typed_data() -> None:
    reading = Reading(METER.address, 7, T0, INTERVAL_S, 1234, 56)
    message = eth_account_message(DOMAIN, READING_TYPE, reading.values())
    ours = sign_reading(reading, METER.key, DOMAIN)
    theirs = Account.sign_message(message, METER.key)
    assert ours.signature == bytes(theirs.signature)
    assert Account.recover_message(message, signature=ours.signature) == METER.address
    assert reading_digest(reading, DOMAIN) == bytes(theirs.message_hash)


def test_fast_encoding_equals_generic_struct_encoding() -> None:
    reading = Reading(METER.address, 2**63 - 1, T0, 2**32 - 1, 0, 2**40)
    from eth_utils.crypto import keccak

    assert keccak(READING_TYPE.type_hash + encode_reading(reading)) == READING_TYPE.hash_struct(
        reading.values()
    )


def test_json_round_trip_keeps_signature_valid() -> None:
    original = signed(METER, 3, imported_wh=42, exported_wh=7)
    data = signed_reading_to_json(original)
    assert data["importedWh"] == 42 and data["signature"].startswith("0x")
    assert signed_reading_from_json(data) == original
    assert verify_reading(signed_reading_from_json(data), DOMAIN, context()) == original.reading


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"signature": "0x1234"}, "signature"),
        ({"signature": "abc"}, "signature"),
        ({"sequence": -1}, "sequence"),
        ({"importedWh": "12"}, "imported_wh"),
        ({"meter": METER.address.lower()}, "meter"),
        ({"intervalLengthS": 0}, "interval_length_s"),
    ],
)
def test_json_parse_names_the_bad_field(change: dict[str, object], field: str) -> None:
    data = {**signed_reading_to_json(signed(METER, 1)), **change}
    with pytest.raises(ValidationError) as caught:
        signed_reading_from_json(data)
    assert caught.value.field == field


def test_json_missing_field_is_named() -> None:
    data = signed_reading_to_json(signed(METER, 1))
    del data["exportedWh"]
    with pytest.raises(ValidationError, match="exportedWh: missing"):
        signed_reading_from_json(data)


def rejected_code(reading: SignedReading, ctx: VerifyContext) -> tuple[str, str]:
    with pytest.raises(ReadingRejected) as caught:
        verify_reading(reading, DOMAIN, ctx)
    return caught.value.code, caught.value.field


def test_valid_reading_passes() -> None:
    good = signed(METER, 1, interval=3, imported_wh=2500)  # exactly rated power for 15 min
    assert verify_reading(good, DOMAIN, context()) == good.reading


def test_bad_signature_wrong_key() -> None:
    forged = signed(METER, 1, key=key_from_seed("intruder"))
    assert rejected_code(forged, context()) == ("bad_signature", "signature")


def test_bad_signature_tampered_value() -> None:
    genuine = signed(METER, 1)
    tampered = SignedReading(replace(genuine.reading, imported_wh=9), genuine.signature)
    assert rejected_code(tampered, context()) == ("bad_signature", "signature")


def test_bad_signature_other_domain() -> None:
    other = replace(DOMAIN, chain_id=1)
    reading = sign_reading(signed(METER, 1).reading, METER.key, other)
    assert rejected_code(reading, context()) == ("bad_signature", "signature")


def test_bad_signature_garbage_bytes() -> None:
    genuine = signed(METER, 1)
    assert rejected_code(SignedReading(genuine.reading, b"\x01" * 65), context())[0] == (
        "bad_signature"
    )


def test_unknown_meter() -> None:
    assert rejected_code(signed(METER, 1), context(meters={})) == ("unknown_meter", "meter")


def test_inactive_meter() -> None:
    meters = {METER.address: Meter(METER.address, METER.owner, 10_000, active=False)}
    assert rejected_code(signed(METER, 1), context(meters=meters)) == ("inactive_meter", "meter")


def test_replay_when_sequence_does_not_increase() -> None:
    ctx = context(last_sequence={METER.address: 5})
    assert rejected_code(signed(METER, 5), ctx) == ("replay", "sequence")
    assert rejected_code(signed(METER, 4), ctx) == ("replay", "sequence")
    assert verify_reading(signed(METER, 6), DOMAIN, ctx).sequence == 6


def test_out_of_window_unaligned_start() -> None:
    reading = Reading(METER.address, 1, T0 + 60, INTERVAL_S, 1, 0)
    code = rejected_code(sign_reading(reading, METER.key, DOMAIN), context())
    assert code == ("out_of_window", "interval_start_s")


def test_out_of_window_future_interval() -> None:
    ctx = context(now_s=T0 + INTERVAL_S - 61)
    assert rejected_code(signed(METER, 1), ctx) == ("out_of_window", "interval_start_s")
    assert verify_reading(signed(METER, 1), DOMAIN, context(now_s=T0 + INTERVAL_S)).sequence == 1


def test_implausible_energy_above_rated_power() -> None:
    assert rejected_code(signed(METER, 1, imported_wh=2501), context()) == (
        "implausible",
        "imported_wh",
    )
    assert rejected_code(signed(METER, 1, exported_wh=2501), context()) == (
        "implausible",
        "exported_wh",
    )


def test_malformed_reading() -> None:
    bad = SignedReading(Reading(METER.address, -1, T0, INTERVAL_S, 1, 0), b"\0" * 65)
    assert rejected_code(bad, context()) == ("malformed", "sequence")
