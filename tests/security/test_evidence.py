"""Evidence files verify against the hash committed on-chain, and only against it."""

from __future__ import annotations

import json

import pytest

from gridledger.eip712 import Domain, address_of, key_from_seed
from gridledger.errors import ValidationError
from gridledger.security.evidence import (
    EVIDENCE_WINDOW_S,
    DetectorNode,
    Evidence,
    evidence_window,
    verify_evidence_file,
)

DOMAIN = Domain("gridledger-evidence", "1", 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
AUDITOR = DetectorNode("auditor", key_from_seed("auditor"), DOMAIN)
METER = address_of(key_from_seed("meter-7"))
T = 1_700_000_123


def finding() -> tuple[Evidence, str]:
    signed = AUDITOR.evidence(
        METER, T, "meter_stream", "meter-hgb/1+abc", 0.987654321, {"level_log": -0.2231}
    )
    return signed.evidence, signed.to_file()


def test_file_verifies_against_its_onchain_hash() -> None:
    evidence, text = finding()
    verified = verify_evidence_file(text, evidence.evidence_hash, DOMAIN)
    assert verified == evidence
    assert verified.detector == AUDITOR.address
    assert verified.score_micro == 987_654
    assert verified.features_micro == (("level_log", -223_100),)
    assert evidence_window(T) == (verified.window_start_s, verified.window_end_s)


def test_hash_is_keccak_of_sorted_integer_json() -> None:
    evidence, _ = finding()
    again = Evidence.from_json(json.loads(evidence.canonical_bytes()))
    assert again.evidence_hash == evidence.evidence_hash
    assert b"." not in evidence.canonical_bytes()  # no floats: same bytes in any language


def test_tampered_record_does_not_match_the_onchain_hash() -> None:
    evidence, text = finding()
    raw = json.loads(text)
    raw["evidence"]["scoreMicro"] += 1
    with pytest.raises(ValidationError, match="on-chain evidence hash"):
        verify_evidence_file(json.dumps(raw), evidence.evidence_hash, DOMAIN)


def test_record_rehashed_but_signed_by_someone_else_is_rejected() -> None:
    evidence, text = finding()
    liar = DetectorNode("liar", key_from_seed("liar"), DOMAIN)
    forged_signature = liar.sign(
        Evidence(**{**evidence.__dict__, "detector": liar.address})
    ).signature
    raw = json.loads(text)
    raw["signature"] = "0x" + forged_signature.hex()
    with pytest.raises(ValidationError, match="signed by"):
        verify_evidence_file(json.dumps(raw), evidence.evidence_hash, DOMAIN)


def test_windows_must_be_whole_days() -> None:
    evidence, _ = finding()
    with pytest.raises(ValidationError, match="window_start_s"):
        Evidence(**{**evidence.__dict__, "window_start_s": evidence.window_start_s + 1})
    assert evidence.window_end_s - evidence.window_start_s == EVIDENCE_WINDOW_S


def test_a_node_signs_only_its_own_evidence() -> None:
    evidence, _ = finding()
    other = DetectorNode("grid operator", key_from_seed("grid-operator-detector"), DOMAIN)
    with pytest.raises(ValidationError, match="not this node"):
        other.sign(evidence)
