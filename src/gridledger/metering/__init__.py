"""Metering: signed meter readings, their verification, the gateway and its transports."""

from gridledger.metering.anchoring import (
    AnchorChain,
    anchor_interval,
    reading_leaf,
    reading_proofs,
    reading_salt,
    readings_root,
)
from gridledger.metering.gateway import Gateway, Outcome, ingest_json
from gridledger.metering.reading import (
    READING_TYPE,
    Reading,
    SignedReading,
    encode_reading,
    reading_digest,
    sign_reading,
    signed_reading_from_json,
    signed_reading_to_json,
)
from gridledger.metering.verify import MeterInfo, VerifyContext, verify_reading

__all__ = [
    "READING_TYPE",
    "AnchorChain",
    "Gateway",
    "MeterInfo",
    "Outcome",
    "Reading",
    "SignedReading",
    "VerifyContext",
    "anchor_interval",
    "encode_reading",
    "ingest_json",
    "reading_digest",
    "reading_leaf",
    "reading_proofs",
    "reading_salt",
    "readings_root",
    "sign_reading",
    "signed_reading_from_json",
    "signed_reading_to_json",
    "verify_reading",
]
